/**
 * Hostile frames the local gateway must survive, one by one (the fuzz test throws thousands): text that is not
 * UTF-8 (close 1007, `$disconnect` with 1007), JSON nested too deeply to stringify as `action` or `data`, and
 * actions that name Object.prototype members.
 */
import { expect } from "chai";
import { MemoryConnectionStore } from "../stores/memory";
import { type ChatGateway, openChatClient, startChatGateway, waitFor } from "./support/gateway";

describe("local gateway: hostile frames", function () {
  this.timeout(20_000);
  let gw: ChatGateway;
  beforeEach(async () => {
    gw = await startChatGateway(new MemoryConnectionStore());
  });
  afterEach(async () => {
    await gw.stop();
  });

  it("closes with 1007 on a text frame that is not UTF-8, and fires $disconnect with 1007", async () => {
    const client = await openChatClient(gw);
    client.ws.send(Buffer.from([0x7b, 0xff, 0x7d]), { binary: false });
    expect((await client.closed).code).to.equal(1007);
    const disconnect = await gw.disconnectOf(client.connectionId!);
    expect(disconnect.requestContext).to.include({
      disconnectStatusCode: 1007,
      disconnectReason: "Invalid UTF-8 in text frame",
    });
    expect(gw.gateway.openConnectionIds()).to.deep.equal([]);
  });

  it("answers 10,000-deep JSON as action or data with our error frames, not Internal server error", async () => {
    const client = await openChatClient(gw);
    const deep = `${"[".repeat(10_000)}${"]".repeat(10_000)}`;
    await client.send(`{"action":${deep}}`);
    expect(await client.nextJson()).to.include({ type: "error", code: "UnknownAction" });
    await client.send(`{"action":"sendmessage","data":${deep}}`);
    expect(await client.nextJson()).to.include({ type: "error", code: "InvalidBody" });
    await client.close();
  });

  it("logs a client's mistake as answered (200, the error frame in-band), as API Gateway's IntegrationError sees it", async () => {
    const lines: string[] = [];
    const logged = await startChatGateway(new MemoryConnectionStore(), { log: (line) => lines.push(line) });
    try {
      const client = await openChatClient(logged);
      for (const frame of ["hello", '{"action":"join"}', '{"action":"sendmessage"}']) {
        await client.send(frame);
        expect(await client.nextJson(), frame).to.include({ type: "error" });
      }
      const statuses = () =>
        lines.flatMap((line) => {
          const m = /MESSAGE\s+(\S+)\s+\S+\s+(\S+) \d+ms/.exec(line);
          return m ? [`${m[1]} ${m[2]}`] : [];
        });
      await waitFor(() => (statuses().length === 3 ? true : undefined), 3000, "three MESSAGE lines");
      expect(statuses()).to.deep.equal(["$default 200", "join 200", "sendmessage 200"]);
      await client.close();
    } finally {
      await logged.stop();
    }
  });

  it("routes actions named after Object.prototype members to $default without touching prototypes", async () => {
    const client = await openChatClient(gw);
    for (const action of ["__proto__", "constructor", "toString", "hasOwnProperty"]) {
      await client.send(JSON.stringify({ action, data: "x" }));
      expect(await client.nextJson(), action).to.include({ type: "error", code: "UnknownAction", action });
    }
    await client.send('{"__proto__":{"polluted":"yes"},"action":"sendmessage","data":"ok"}');
    expect(await client.next()).to.equal("ok");
    expect(({} as Record<string, unknown>).polluted).to.equal(undefined);
    const routes = gw.events.filter((e) => e.routeKey !== "$connect").map((e) => e.routeKey);
    expect(routes).to.deep.equal(["$default", "$default", "$default", "$default", "sendmessage"]);
    await client.close();
  });
});
