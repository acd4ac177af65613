/**
 * A rate limit that holds, end to end through the local gateway with the real handlers and the real JWT
 * authorizer, on every store: the per-user message limit (shared by a user's connections, not reset by a
 * reconnect), the separate budget of room-less broadcasts, and the cap on connections per user at `$connect`
 * (429, freed by `$disconnect`).
 */
import { expect } from "chai";
import { type AuthGateway, startAuthGateway } from "./support/auth-gateway";
import { type TestClient, waitFor } from "./support/gateway";
import { startTestIdp, type TestIdp } from "./support/jwks";
import { forEachStore } from "./support/store-matrix";

const DAY_S = 86_400;

const send = (data: string, room?: string) =>
  JSON.stringify({ action: "sendmessage", data, ...(room ? { room } : {}) });
const whoami = JSON.stringify({ action: "whoami" });

describe("user limits through the local gateway (auth jwt)", function () {
  this.timeout(30_000);
  let idp: TestIdp;
  before(async () => {
    idp = await startTestIdp();
  });
  after(async () => {
    await idp.close();
  });

  forEachStore((newStore) => {
    let gw: AuthGateway | undefined;
    const clients: TestClient[] = [];
    afterEach(async () => {
      for (const client of clients.splice(0)) client.ws.terminate();
      await gw?.stop();
      gw = undefined;
    });
    const open = async (sub: string) => {
      const client = await gw!.connect(sub);
      clients.push(client);
      return client;
    };

    it("counts a user's messages over all its connections, and room-less broadcasts apart", async () => {
      gw = await startAuthGateway(await newStore(), idp, {
        messages: 100,
        userMessages: 4,
        broadcasts: 2,
        windowSeconds: DAY_S,
      });
      const [a1, a2, bob] = [await open("alice"), await open("alice"), await open("bob")];
      await a1.send(send("b1"));
      await a2.send(send("b2"));
      for (const client of [a1, a2, bob])
        expect([await client.next(), await client.next()].sort()).to.deep.equal(["b1", "b2"]);

      // A third room-less broadcast of alice: over the broadcast budget (per user), nobody gets it.
      await a1.send(send("b3"));
      const broadcastLimited = await a1.nextJson();
      expect(broadcastLimited).to.include({ type: "error", code: "RateLimited", scope: "broadcast", limit: 2 });
      // Alice's fourth message (whoami, from her other connection) is within the user limit; her fifth is not.
      await a2.send(whoami);
      expect(await a2.nextJson()).to.include({ type: "whoami", userId: "alice" });
      await a2.send(whoami);
      expect(await a2.nextJson()).to.include({ code: "RateLimited", scope: "user", limit: 4, windowSeconds: DAY_S });

      // A reconnect does not reset it.
      a1.ws.close();
      await waitFor(() => gw!.events.find((e) => e.routeKey === "$disconnect"), 5_000, "alice's $disconnect");
      const a3 = await open("alice");
      await a3.send(whoami);
      expect(await a3.nextJson()).to.include({ code: "RateLimited", scope: "user" });

      // Bob has budgets of his own.
      await bob.send(send("from bob"));
      expect(await a2.next()).to.equal("from bob");
      expect(await bob.next()).to.equal("from bob");
      expect(await bob.quiet(100)).to.deep.equal([]);
    });

    it("caps a user's live connections at $connect with 429, and $disconnect frees a slot", async () => {
      const store = await newStore();
      gw = await startAuthGateway(store, idp, { connectionsPerUser: 2 });
      const a1 = await open("carol");
      await open("carol");
      let refused: unknown;
      try {
        await open("carol");
      } catch (error) {
        refused = error;
      }
      expect(refused).to.have.property("statusCode", 429);
      // Another user is not affected.
      await open("dave");

      a1.ws.close();
      const gone = a1.connectionId!;
      await waitFor(
        () => gw!.events.find((e) => e.routeKey === "$disconnect" && e.event.requestContext.connectionId === gone),
        5_000,
        "carol's $disconnect",
      );
      // $disconnect may still be releasing when its event is recorded: retry briefly.
      let third: TestClient | undefined;
      for (let i = 0; i < 20 && !third; i++) {
        third = await open("carol").catch(async () => {
          await new Promise((resolve) => setTimeout(resolve, 50));
          return undefined;
        });
      }
      expect(third, "a slot was freed").to.not.equal(undefined);
      const log = gw.deps.logs.find((l) => l.outcome === "too-many-connections");
      expect(log).to.include({ live: 2, max: 2 });
    });
  });
});
