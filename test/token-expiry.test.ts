/**
 * Tokens end connections, end to end through the local gateway with the real JWT authorizer on every store: a
 * connection whose token has expired is told `TokenExpired` and closed (1000, through DELETE @connections) at its
 * next message, and, when idle, by the token sweep the gateway runs on a timer (the deployed schedule's stand-in).
 * Connections with a valid token, or without auth, are left alone.
 */
import { expect } from "chai";
import { sweepExpiredTokens, TOKEN_EXPIRES_AT, tokenExpiryMs } from "../chat/token-expiry";
import { connect } from "../handlers/connect";
import { sweepTokens } from "../handlers/token-sweeper";
import { connectEvent, newConnectionId } from "../local/events";
import { MemoryConnectionStore } from "../stores/memory";
import { type AuthGateway, startAuthGateway } from "./support/auth-gateway";
import type { TestClient } from "./support/gateway";
import { testDeps } from "./support/handler-deps";
import { startTestIdp, type TestIdp } from "./support/jwks";
import { startManagementServer } from "./support/management-server";
import { forEachStore } from "./support/store-matrix";

const whoami = JSON.stringify({ action: "whoami" });
const sleep = (ms: number) => new Promise((resolve) => setTimeout(resolve, ms));

describe("token expiry through the local gateway (auth jwt)", function () {
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
    const open = async (sub: string, expiresIn: number) => {
      const client = await gw!.connect(sub, expiresIn);
      clients.push(client);
      return client;
    };

    it("closes a connection at its next message once its token has expired, with TokenExpired first", async () => {
      gw = await startAuthGateway(await newStore(), idp, {});
      // `exp` is in whole seconds: a token for 2 s expires 1-2 s from now.
      const short = await open("erin", 2);
      const long = await open("frank", 600);
      await short.send(whoami);
      expect(await short.nextJson()).to.include({ type: "whoami", userId: "erin" });
      await sleep(2_100);
      await short.send(whoami);
      const frame = await short.nextJson();
      expect(frame).to.include({ type: "error", code: "TokenExpired", reconnect: true });
      expect(frame.expiredAt).to.be.a("number").below(Date.now());
      expect(await short.closed).to.deep.include({ code: 1000 });
      // The valid one goes on.
      await long.send(whoami);
      expect(await long.nextJson()).to.include({ type: "whoami", userId: "frank" });
    });

    it("closes idle connections whose token has expired by the timed sweep, and only those", async () => {
      const store = await newStore();
      gw = await startAuthGateway(store, idp, {}, { tokenSweepMs: 200, sweep: (deps) => sweepTokens(deps) });
      const idle = await open("gina", 2);
      const fresh = await open("hank", 600);
      const frame = await idle.nextJson(6_000);
      expect(frame).to.include({ code: "TokenExpired" });
      expect(await idle.closed).to.deep.include({ code: 1000 });
      expect(await fresh.quiet(400)).to.deep.equal([]);
      await fresh.send(whoami);
      expect(await fresh.nextJson()).to.include({ type: "whoami", userId: "hank" });
      const sweeps = gw.deps.logs.filter((l) => l.message === "token sweep");
      expect(sweeps.some((l) => l.closed === 1)).to.equal(true);
    });
  });
});

describe("token expiry: the stored and the event forms", () => {
  it("reads tokenExpiresAt as epoch seconds, a number or its string (API Gateway stringifies the context)", () => {
    expect(tokenExpiryMs(1_700_000_000)).to.equal(1_700_000_000_000);
    expect(tokenExpiryMs("1700000000")).to.equal(1_700_000_000_000);
    for (const bad of [undefined, "", "soon", 0, -5]) expect(tokenExpiryMs(bad), String(bad)).to.equal(undefined);
  });

  it("leaves connections without a token alone (auth none), and counts what it swept", async () => {
    const server = await startManagementServer("test");
    try {
      const store = new MemoryConnectionStore();
      const deps = testDeps(store, server.endpoint);
      const ctx = (authorizer?: Record<string, unknown>) => ({
        connectionId: newConnectionId(),
        connectedAt: Date.now(),
        stage: "test",
        apiId: "local",
        domainName: "localhost",
        sourceIp: "127.0.0.1",
        ...(authorizer ? { authorizer } : {}),
      });
      const anonymous = ctx();
      const expired = ctx({ userId: "ivy", [TOKEN_EXPIRES_AT]: String(Math.floor(Date.now() / 1000) - 10) });
      for (const c of [anonymous, expired]) {
        const event = connectEvent(c, { headers: {} });
        await connect(
          c.authorizer ? { ...event, requestContext: { ...event.requestContext, authorizer: c.authorizer } } : event,
          deps,
        );
      }
      const summary = await sweepTokens(deps);
      expect(summary).to.deep.equal({ scanned: 2, expired: 1, closed: 1, gone: 0, failed: 0, complete: true });
      expect(server.deleted).to.deep.equal([expired.connectionId]);
      expect(JSON.parse(server.postsTo(expired.connectionId)[0]!)).to.include({ code: "TokenExpired" });

      // A sweep whose time is up stops and says so (the next one starts over) rather than being cut off silently.
      expect(await sweepExpiredTokens(deps, deps.log, Date.now(), Date.now() - 1)).to.deep.include({
        scanned: 0,
        complete: false,
      });
    } finally {
      await server.close();
    }
  });
});
