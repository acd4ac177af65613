/**
 * Hot reload through `npm start`, run from a scratch copy of the project that the test edits: a handler edited
 * during a live chat is reloaded and the open connections keep chatting on the new code; a store edited keeps the
 * memory store's data (room memberships); a syntax error, and a module that throws while loading, keep the
 * previous code running and say where the error is.
 */
import { appendFileSync, readFileSync, writeFileSync } from "node:fs";
import { join } from "node:path";
import { expect } from "chai";
import { WebSocket } from "ws";
import { bannerOf, type CliRun, cleanEnv, killCli, lineMatching, projectCopy, runCli } from "./support/cli-run";
import { openClient, type TestClient } from "./support/gateway";

describe("npm start: hot reload", function () {
  this.timeout(60_000);
  let copy: ReturnType<typeof projectCopy>;
  let cli: CliRun;
  const clients: TestClient[] = [];

  beforeEach(() => {
    copy = projectCopy();
  });
  afterEach(async () => {
    for (const c of clients.splice(0)) c.ws.terminate();
    if (cli) await killCli(cli);
    copy.remove();
  });

  function edit(file: string, change: (source: string) => string): void {
    const path = join(copy.dir, file);
    const before = readFileSync(path, "utf8");
    const after = change(before);
    expect(after, `the edit of ${file} changed nothing`).to.not.equal(before);
    writeFileSync(path, after);
  }

  /** The next frame of `type`, skipping presence frames. */
  async function nextOfType(c: TestClient, type: string): Promise<Record<string, unknown>> {
    for (;;) {
      const frame = (await c.nextJson(5000)) as Record<string, unknown>;
      if (frame.type === type) return frame;
    }
  }

  async function open(url: string): Promise<TestClient> {
    const c = await openClient(url);
    clients.push(c);
    return c;
  }

  it("reloads an edited handler within a second, one console line, while the open connections keep chatting", async () => {
    cli = runCli(["--port", "0"], copy.dir, cleanEnv());
    const { url } = await bannerOf(cli);
    expect(cli.stdout).to.match(/Reload: +on/);
    const a = await open(url);
    const b = await open(url);
    await a.send(JSON.stringify({ action: "sendmessage", data: "before" }));
    expect(await a.next(5000)).to.equal("before");
    expect(await b.next(5000)).to.equal("before");

    const mark = cli.stdout.length;
    const edited = Date.now();
    edit("handlers/send-message.ts", (source) =>
      source.replace(
        "const { data, wire } = admittedData;",
        'const { data, wire: sent } = admittedData;\n  const wire = typeof sent === "string" ? `edited: ${sent}` : sent;',
      ),
    );
    const line = await lineMatching(cli, /reloaded handlers\/send-message\.ts/, mark);
    expect(Date.now() - edited, "noticed and reloaded within a second or so").to.be.below(3000);
    expect(line).to.match(/^reloaded handlers\/send-message\.ts \(\+\d+ modules\) in (\d+) ms$/);
    expect(Number(/in (\d+) ms/.exec(line)![1])).to.be.below(1000);
    expect(cli.stdout.slice(mark).match(/reloaded/g), "one line").to.have.length(1);

    await b.send(JSON.stringify({ action: "sendmessage", data: "after" }));
    expect(await a.next(5000)).to.equal("edited: after");
    expect(await b.next(5000)).to.equal("edited: after");
    expect(a.ws.readyState).to.equal(WebSocket.OPEN);
    expect(b.ws.readyState).to.equal(WebSocket.OPEN);
    expect(cli.stdout, "no connection was closed").to.not.match(/DISCONNECT|CLOSE/);
  });

  it("keeps the previous code on a syntax error or a module that throws, saying file:line; the next good edit loads", async () => {
    cli = runCli(["--port", "0"], copy.dir, cleanEnv());
    const { url } = await bannerOf(cli);
    const a = await open(url);

    let mark = cli.stdout.length;
    appendFileSync(join(copy.dir, "chat/reply.ts"), "\nexport const broken = ;\n");
    const lines = readFileSync(join(copy.dir, "chat/reply.ts"), "utf8").split("\n").length;
    const syntax = await lineMatching(cli, /reload of chat\/reply\.ts failed/, mark);
    expect(syntax).to.equal(
      `reload of chat/reply.ts failed: chat/reply.ts:${lines - 1}:23: Unexpected ";" (the previous code keeps running)`,
    );
    await a.send(JSON.stringify({ action: "sendmessage", data: "still works" }));
    expect(await a.next(5000)).to.equal("still works");

    mark = cli.stdout.length;
    edit("chat/reply.ts", (source) =>
      source.replace("export const broken = ;", 'throw new Error("boom while loading");'),
    );
    const thrown = await lineMatching(cli, /reload of chat\/reply\.ts failed/, mark);
    expect(thrown).to.match(
      /^reload of chat\/reply\.ts failed: chat\/reply\.ts:\d+:\d+: Error: boom while loading \(the previous code keeps running\)$/,
    );
    await a.send("not json");
    expect(await a.nextJson(5000), "chat/reply.ts's previous code answers").to.include({ code: "InvalidJson" });

    mark = cli.stdout.length;
    edit("chat/reply.ts", (source) => source.replace('throw new Error("boom while loading");', ""));
    expect(await lineMatching(cli, /reloaded chat\/reply\.ts/, mark)).to.match(/\(\+[1-9]\d* modules\)/);
    await a.send(JSON.stringify({ action: "sendmessage", data: "fixed" }));
    expect(await a.next(5000)).to.equal("fixed");
    expect(a.ws.readyState).to.equal(WebSocket.OPEN);
  });

  it("reloads an edited store: the new code runs and the memory store keeps its connections and rooms", async () => {
    cli = runCli(["--port", "0"], copy.dir, cleanEnv());
    const { url } = await bannerOf(cli);
    const a = await open(url);
    const b = await open(url);
    for (const c of [a, b]) {
      await c.send(JSON.stringify({ action: "join", room: "lobby" }));
      // b may hear a's `joined` first: a's announcement can list the room after b's join.
      await nextOfType(c, "members");
    }
    const mark = cli.stdout.length;
    edit("stores/memory.ts", (source) =>
      source.replace(
        "  async roomsOf(connectionId: string): Promise<string[]> {\n",
        '  async roomsOf(connectionId: string): Promise<string[]> {\n    console.log("reloaded memory store in use");\n',
      ),
    );
    await lineMatching(cli, /reloaded stores\/memory\.ts \(\+\d+ modules\)/, mark);
    await b.send(JSON.stringify({ action: "sendmessage", room: "lobby", data: "still a member" }));
    for (const c of [a, b]) expect(await nextOfType(c, "message")).to.include({ data: "still a member" });
    await lineMatching(cli, /^reloaded memory store in use$/, mark);
    await a.send(JSON.stringify({ action: "whoami" }));
    expect(await nextOfType(a, "whoami")).to.deep.include({ rooms: ["lobby"] });
  });

  it("with the handlers in a worker: rooms joined while a store reload runs are kept, and a route added is served", async () => {
    cli = runCli(["--port", "0", "--workers", "1"], copy.dir, cleanEnv());
    const { url } = await bannerOf(cli);
    const mark = cli.stdout.length;
    edit("stores/memory.ts", (source) => `${source}\n// touched\n`);
    // Clients join a room all through the reload (the new worker loads for a few hundred ms).
    const joined: TestClient[] = [];
    while (!/reloaded stores\/memory\.ts/.test(cli.stdout.slice(mark))) {
      const c = await open(url);
      await c.send(JSON.stringify({ action: "join", room: "during" }));
      await nextOfType(c, "members");
      joined.push(c);
      if (joined.length > 200) throw new Error("the reload line never came");
    }
    expect(joined.length, "clients joined while it reloaded").to.be.at.least(2);
    for (const c of joined) {
      await c.send(JSON.stringify({ action: "whoami" }));
      expect(await nextOfType(c, "whoami"), "still a member after the reload").to.deep.include({ rooms: ["during"] });
    }

    const again = cli.stdout.length;
    edit("contract/routes.ts", (source) =>
      source.replace(
        '  {\n    routeKey: "ping",\n    name: "ping",',
        '  {\n    routeKey: "ping2",\n    name: "ping2",\n    module: "ping",\n    storeAccess: ["meter", "lookup", "touch", "write"],\n    manageConnections: true,\n    disconnectConnections: true,\n  },\n  {\n    routeKey: "ping",\n    name: "ping",',
      ),
    );
    await lineMatching(cli, /reloaded contract\/routes\.ts/, again);
    const a = joined[0]!;
    await a.send(JSON.stringify({ action: "ping2" }));
    // a has presence frames of the later joiners still unread.
    expect(await nextOfType(a, "pong"), "the new route runs").to.include({ type: "pong" });
  });
});
