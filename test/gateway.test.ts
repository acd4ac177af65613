import type { Socket } from "node:net";
import { expect } from "chai";
import { WebSocket } from "ws";
import { type LocalGateway, startLocalGateway } from "../local/gateway";
import { gatewayErrorFrame } from "../local/gateway-frames";
import type { RouteHandlers } from "../local/route-handlers";
import { evaluateSelectionExpression, selectRoute } from "../local/route-selection";
import { MemoryConnectionStore } from "../stores/memory";
import {
  type ChatGateway,
  openChatClient,
  openClient,
  recording,
  signedHeaders,
  startChatGateway,
  type TestClient,
  waitFor,
} from "./support/gateway";

const CONNECTION_ID = /^[A-Za-z0-9_-]{15}=$/;
const CLF = /^\d{2}\/[A-Z][a-z]{2}\/\d{4}:\d{2}:\d{2}:\d{2} \+0000$/;

const chat = (data: unknown) => JSON.stringify({ action: "sendmessage", data });

/** An exact gateway frame for `connectionId`, with whatever requestId it carries. */
function gatewayFrameRegex(message: string, connectionId: string): RegExp {
  const escaped = gatewayErrorFrame(message as "Forbidden", connectionId, "RID").replace(/[.*+?^${}()|[\]\\]/g, "\\$&");
  return new RegExp(`^${escaped.replace('"RID"', '"([A-Za-z0-9_-]{15}=)"')}$`);
}

describe("local gateway", function () {
  this.timeout(10_000);

  describe("chat over real sockets (memory store, real handlers)", () => {
    let store: MemoryConnectionStore;
    let gw: ChatGateway;
    const clients: TestClient[] = [];

    beforeEach(async () => {
      store = new MemoryConnectionStore();
      gw = await startChatGateway(store);
    });
    afterEach(async () => {
      for (const c of clients.splice(0)) c.ws.terminate();
      await gw.stop();
    });

    async function join(n: number, options = {}): Promise<TestClient[]> {
      const joined: TestClient[] = [];
      for (let i = 0; i < n; i++) joined.push(await openChatClient(gw, options));
      clients.push(...joined);
      return joined;
    }

    it("delivers every message to all three clients exactly once, data as given", async () => {
      const [a, b, c] = await join(3);
      expect(new Set([a!.connectionId, b!.connectionId, c!.connectionId]).size).to.equal(3);
      await a!.send(chat("hello from a"));
      await b!.send(chat({ from: "b", n: 2 }));
      await c!.send(chat(["c", 3]));
      const expected = ["hello from a", '{"from":"b","n":2}', '["c",3]'].sort();
      for (const client of [a!, b!, c!]) {
        const got = [await client.next(), await client.next(), await client.next()];
        expect(got.sort()).to.deep.equal(expected);
        expect(await client.quiet(200)).to.deep.equal([], "no duplicates");
      }
    });

    it("builds CONNECT, MESSAGE and DISCONNECT events as API Gateway does", async () => {
      const client = await openClient(`${gw.gateway.url}?token=abc&x=1&x=2`, { headers: { "User-Agent": "mocha-ua" } });
      clients.push(client);
      const connectRecord = await waitFor(() => gw.events.find((e) => e.routeKey === "$connect"));
      const connect = connectRecord.event;
      const id = connect.requestContext.connectionId;
      expect(id).to.match(CONNECTION_ID);
      expect(connect.headers).to.include({
        "User-Agent": "mocha-ua",
        "X-Forwarded-For": "127.0.0.1",
        "X-Forwarded-Proto": "http",
      });
      expect(connect.headers!.Host).to.equal(`localhost:${gw.gateway.port}`);
      expect(connect.headers!["Sec-WebSocket-Key"]).to.match(/==$/);
      expect(connect.headers!["X-Amzn-Trace-Id"]).to.match(/^Root=1-[0-9a-f]{8}-[0-9a-f]{24}$/);
      expect(Object.keys(connect.headers!).map((h) => h.toLowerCase())).to.not.include.members([
        "connection",
        "upgrade",
      ]);
      expect(connect.multiValueHeaders!["User-Agent"]).to.deep.equal(["mocha-ua"]);
      expect(connect.queryStringParameters).to.deep.equal({ token: "abc", x: "2" });
      expect(connect.multiValueQueryStringParameters).to.deep.equal({ token: ["abc"], x: ["1", "2"] });
      expect(connect.isBase64Encoded).to.equal(false);
      expect(connect).to.not.have.property("body");
      const rc = connect.requestContext;
      expect(rc).to.include({
        routeKey: "$connect",
        eventType: "CONNECT",
        messageDirection: "IN",
        stage: "dev",
        apiId: "local",
      });
      expect(rc).to.not.have.property("messageId");
      expect(rc.requestId).to.equal(rc.extendedRequestId);
      expect(rc.requestTime).to.match(CLF);
      expect(rc.requestTimeEpoch).to.be.a("number").and.to.be.at.least(rc.connectedAt);
      expect(rc.identity).to.deep.equal({ sourceIp: "127.0.0.1", userAgent: "mocha-ua" });
      expect(rc.domainName).to.equal(`localhost:${gw.gateway.port}`);

      await client.send(chat("x"));
      expect(await client.next()).to.equal("x");
      const message = gw.events.find((e) => e.routeKey === "sendmessage")!.event;
      expect(message).to.not.have.property("headers");
      expect(message).to.not.have.property("queryStringParameters");
      expect(message.body).to.equal(chat("x"));
      expect(message.isBase64Encoded).to.equal(false);
      expect(message.requestContext).to.include({
        eventType: "MESSAGE",
        routeKey: "sendmessage",
        connectionId: id,
        connectedAt: rc.connectedAt,
      });
      expect(message.requestContext.messageId).to.match(CONNECTION_ID);
      expect(message.requestContext.requestId).to.not.equal(rc.requestId);

      await client.close();
      const disconnect = await gw.disconnectOf(id);
      expect(disconnect.headers).to.deep.equal({
        Host: `localhost:${gw.gateway.port}`,
        "x-api-key": "",
        "X-Forwarded-For": "",
        "x-restapi": "",
      });
      expect(disconnect.multiValueHeaders).to.deep.equal({
        Host: [`localhost:${gw.gateway.port}`],
        "x-api-key": [""],
        "X-Forwarded-For": [""],
        "x-restapi": [""],
      });
      expect(disconnect.requestContext).to.include({
        eventType: "DISCONNECT",
        routeKey: "$disconnect",
        connectedAt: rc.connectedAt,
        disconnectStatusCode: 1005,
        disconnectReason: "Client-side close frame status not set",
      });
      expect(disconnect.requestContext).to.not.have.property("messageId");
      expect(disconnect).to.not.have.property("queryStringParameters");
    });

    it("leaves queryStringParameters out when the URL has no query string", async () => {
      clients.push(await openClient(gw.gateway.url));
      const connect = await waitFor(() => gw.events.find((e) => e.routeKey === "$connect"));
      expect(connect.event).to.not.have.property("queryStringParameters");
      expect(connect.event).to.not.have.property("multiValueQueryStringParameters");
      expect(connect.event.requestContext.identity).to.not.have.property("userAgent");
    });

    it("answers an unknown action, non-JSON and a missing data field with our error frames, and stays usable", async () => {
      const [a, b] = await join(2);
      await a!.send(JSON.stringify({ action: "shout", data: "x" }));
      expect(await a!.nextJson()).to.deep.equal({
        type: "error",
        code: "UnknownAction",
        message: 'Unknown action "shout".',
        action: "shout",
        availableActions: ["sendmessage", "join", "leave", "whoami", "sendto", "history", "ping"],
        retryable: false,
      });
      await a!.send("hello?");
      expect(await a!.nextJson()).to.include({ type: "error", code: "InvalidJson" });
      await a!.send(JSON.stringify({ action: "sendmessage" }));
      expect(await a!.nextJson()).to.include({ type: "error", code: "MissingData" });
      await a!.send(JSON.stringify({ data: "no action" }));
      expect(await a!.nextJson()).to.include({ type: "error", code: "MissingAction" });
      expect(await b!.quiet(100)).to.deep.equal([], "errors go to the sender only");

      await a!.send(chat("still here"));
      expect(await a!.next()).to.equal("still here");
      expect(await b!.next()).to.equal("still here");
      expect(a!.ws.readyState).to.equal(WebSocket.OPEN);
    });

    it("fires $disconnect (1006) when a client vanishes without a close handshake; the others go on", async () => {
      const [a, b, c] = await join(3);
      (a!.ws as unknown as { _socket: Socket })._socket.destroy();
      const disconnect = await gw.disconnectOf(a!.connectionId!);
      expect(disconnect.requestContext.disconnectStatusCode).to.equal(1006);
      expect(await store.get(a!.connectionId!)).to.equal(undefined, "$disconnect removed it");
      await b!.send(chat("after a left"));
      expect(await b!.next()).to.equal("after a left");
      expect(await c!.next()).to.equal("after a left");
      expect(gw.gateway.openConnectionIds().sort()).to.deep.equal([b!.connectionId, c!.connectionId].sort());
    });

    it("reports the client's close code and reason in $disconnect", async () => {
      const [a, b] = await join(2);
      await a!.close(4001, "bye now");
      await b!.close(1001);
      expect((await gw.disconnectOf(a!.connectionId!)).requestContext).to.include({
        disconnectStatusCode: 4001,
        disconnectReason: "bye now",
      });
      expect((await gw.disconnectOf(b!.connectionId!)).requestContext).to.include({
        disconnectStatusCode: 1001,
        disconnectReason: "",
      });
    });

    it("removes a stale id (410 from @connections) during the next broadcast while everyone else receives", async () => {
      const [a, b] = await join(2);
      const stale = "STALEstaleSTAL=";
      await store.add({ connectionId: stale, connectedAt: Date.now() - 5 * 60_000, expiresAt: Date.now() + 60_000 });
      expect(await store.get(stale)).to.not.equal(undefined);
      await a!.send(chat("sweep"));
      expect(await a!.next()).to.equal("sweep");
      expect(await b!.next()).to.equal("sweep");
      const broadcast = await waitFor(() => gw.deps.logs.find((l) => l.message === "broadcast"));
      expect(broadcast).to.include({ targets: 3, delivered: 2, gone: 1 });
      expect(await store.get(stale)).to.equal(undefined, "the 410 removed the stale record");
    });
  });

  describe("route selection ($request.body.action)", () => {
    const routes = ["$connect", "$disconnect", "$default", "sendmessage", "1", "true", "[a, b]"];
    const pick = (body: string, keys = routes) => selectRoute("$request.body.action", body, keys);

    it("matches the action exactly and case-sensitively", () => {
      expect(pick('{"action":"sendmessage"}')).to.equal("sendmessage");
      expect(pick('{"action":"SendMessage"}')).to.equal("$default");
      expect(pick('{"action":"sendmessage "}')).to.equal("$default");
    });
    it("stringifies numbers, booleans and arrays", () => {
      expect(pick('{"action":1}')).to.equal("1");
      expect(pick('{"action":1.0}')).to.equal("1");
      expect(pick('{"action":true}')).to.equal("true");
      expect(pick('{"action":["a","b"]}')).to.equal("[a, b]");
      expect(evaluateSelectionExpression("$request.body.action", '{"action":[1,[2,"x"]]}')).to.equal("[1, [2, x]]");
    });
    it("sends non-JSON, non-object JSON, a missing key and null to $default", () => {
      for (const body of [
        "hello",
        "",
        "{",
        '"sendmessage"',
        "42",
        '["sendmessage"]',
        "null",
        "{}",
        '{"action":null}',
        '{"Action":"sendmessage"}',
      ]) {
        expect(pick(body), body).to.equal("$default");
      }
      expect(evaluateSelectionExpression("$request.body.action", "{}")).to.equal("");
      expect(evaluateSelectionExpression("$request.body.action", "nope")).to.equal(undefined);
    });
    it("never selects $connect or $disconnect from a message", () => {
      expect(pick('{"action":"$connect"}')).to.equal("$default");
      expect(pick('{"action":"$disconnect"}')).to.equal("$default");
      expect(pick('{"action":"$connect"}', ["$connect", "sendmessage"])).to.equal(undefined);
    });
    it("follows nested paths and templates; an absent nested path is empty", () => {
      expect(evaluateSelectionExpression("$request.body.meta.kind", '{"meta":{"kind":"join"}}')).to.equal("join");
      expect(evaluateSelectionExpression("$request.body.meta.kind", '{"meta":"flat"}')).to.equal("");
      expect(evaluateSelectionExpression("$request.body.meta.kind", '{"meta":{}}')).to.equal("");
      expect(
        evaluateSelectionExpression(
          "${request.body.service}/${request.body.action}",
          '{"service":"chat","action":"join"}',
        ),
      ).to.equal("chat/join");
      expect(
        evaluateSelectionExpression("${request.body.action}-${request.body.invalidPath}", '{"action":"join"}'),
      ).to.equal("join-");
      expect(evaluateSelectionExpression("$request.body.action", '{"action":{"x":1}}')).to.equal('{"x":1}');
      expect(pick('{"action":{"x":1}}')).to.equal("$default");
    });
    it("returns undefined when nothing matches and there is no $default", () => {
      expect(pick('{"action":"nope"}', ["$connect", "sendmessage"])).to.equal(undefined);
      expect(pick("not json", ["sendmessage"])).to.equal(undefined);
    });
  });

  describe("API Gateway's own frames and handshake outcomes (injected handlers)", () => {
    let gateway: LocalGateway | undefined;
    let clients: TestClient[] = [];
    afterEach(async () => {
      for (const c of clients) c.ws.terminate();
      clients = [];
      await gateway?.stop();
      gateway = undefined;
    });

    async function start(handlers: RouteHandlers, limits = {}) {
      const recorded = recording(handlers);
      gateway = await startLocalGateway({ port: 0, handlers: recorded.handlers, limits, log: () => {} });
      return recorded.events;
    }
    async function client(url = gateway!.url, options = {}) {
      const c = await openClient(url, options);
      clients.push(c);
      return c;
    }
    /** The id of the only open connection. */
    const onlyId = () => {
      const ids = gateway!.openConnectionIds();
      expect(ids).to.have.length(1);
      return ids[0]!;
    };

    it("sends the exact Forbidden frame when no route matches and there is no $default; the connection stays open", async () => {
      const handled: string[] = [];
      const _events = await start({
        $connect: () => ({ statusCode: 200 }),
        sendmessage: (e) => {
          handled.push(e.body!);
          return { statusCode: 200 };
        },
      });
      const c = await client();
      const id = onlyId();
      await c.send("hi");
      const frame = await c.next();
      expect(frame).to.match(gatewayFrameRegex("Forbidden", id));
      expect(frame.startsWith(`{"message": "Forbidden", "connectionId":"${id}", "requestId":"`)).to.equal(true);
      await c.send(JSON.stringify({ action: "other" }));
      expect(await c.next()).to.match(gatewayFrameRegex("Forbidden", id));
      await c.send(JSON.stringify({ action: "sendmessage" }));
      await waitFor(() => (handled.length === 1 ? true : undefined));
      expect(c.ws.readyState).to.equal(WebSocket.OPEN);
    });

    it("sends the Internal server error frame when a handler throws, with that invocation's requestId; the connection stays open", async () => {
      let calls = 0;
      const events = await start({
        $default: () => {
          calls++;
          if (calls === 1) throw new Error("boom");
          return Promise.reject(new TypeError("async boom"));
        },
        ok: () => ({ statusCode: 200 }),
      });
      const c = await client();
      const id = onlyId();
      await c.send("anything");
      const frame = await c.next();
      expect(frame).to.match(gatewayFrameRegex("Internal server error", id));
      const requestId = JSON.parse(frame).requestId as string;
      expect(events.find((e) => e.routeKey === "$default")!.event.requestContext.requestId).to.equal(requestId);
      await c.send("again");
      expect(await c.next()).to.match(gatewayFrameRegex("Internal server error", id));
      expect(c.ws.readyState).to.equal(WebSocket.OPEN);
    });

    it("sends the Endpoint request timed out frame after the integration timeout; a late result sends nothing", async () => {
      let finished = false;
      const events = await start(
        {
          $default: async () => {
            await new Promise((resolve) => setTimeout(resolve, 400));
            finished = true;
            return { statusCode: 200, body: "late" };
          },
        },
        { integrationTimeoutMs: 100 },
      );
      const c = await client();
      const started = Date.now();
      await c.send("slow");
      const frame = await c.next();
      expect(Date.now() - started).to.be.within(80, 390);
      expect(frame).to.match(gatewayFrameRegex("Endpoint request timed out", onlyId()));
      expect(JSON.parse(frame).requestId).to.equal(
        events.find((e) => e.routeKey === "$default")!.event.requestContext.requestId,
      );
      await waitFor(() => (finished ? true : undefined));
      expect(await c.quiet(100)).to.deep.equal([]);
      expect(c.ws.readyState).to.equal(WebSocket.OPEN);
    });

    it("runs the handlers of one connection's messages concurrently", async () => {
      let release!: () => void;
      const gate = new Promise<void>((resolve) => (release = resolve));
      const done: string[] = [];
      await start(
        {
          first: async () => {
            await gate;
            done.push("first");
            return { statusCode: 200 };
          },
          second: () => {
            release();
            done.push("second");
            return { statusCode: 200 };
          },
        },
        { integrationTimeoutMs: 2000 },
      );
      const c = await client();
      await c.send(JSON.stringify({ action: "first" }));
      await c.send(JSON.stringify({ action: "second" }));
      await waitFor(() => (done.length === 2 ? true : undefined), 1000, "both handlers");
      expect(done).to.deep.equal(["second", "first"]);
      expect(c.received).to.deep.equal([]);
    });

    it("refuses the handshake with $connect's non-2xx status and fires no $disconnect", async () => {
      const events = await start({
        $connect: () => ({ statusCode: 401, body: "no" }),
        $disconnect: () => ({ statusCode: 200 }),
      });
      const error = await openClient(gateway!.url).then(
        () => expect.fail("handshake should be refused"),
        (e: { statusCode?: number }) => e,
      );
      expect(error.statusCode).to.equal(401);
      await new Promise((resolve) => setTimeout(resolve, 100));
      expect(events.map((e) => e.routeKey)).to.deep.equal(["$connect"]);
      expect(gateway!.openConnectionIds()).to.deep.equal([]);
    });

    it("refuses the handshake with 502 when $connect throws (or returns no status code)", async () => {
      let mode = "throw";
      const events = await start({
        $connect: () => {
          if (mode === "throw") throw new Error("connect crashed");
          return {} as never;
        },
        $disconnect: () => ({ statusCode: 200 }),
      });
      for (const m of ["throw", "malformed"]) {
        mode = m;
        const error = await openClient(gateway!.url).then(
          () => expect.fail("handshake should be refused"),
          (e: { statusCode?: number }) => e,
        );
        expect(error.statusCode, m).to.equal(502);
      }
      expect(events.filter((e) => e.routeKey === "$disconnect")).to.have.length(0);
    });

    it("applies $connect's headers to the 101 response, including the subprotocol it picked", async () => {
      await start({
        $connect: (e) => ({
          statusCode: 200,
          headers: {
            "Sec-WebSocket-Protocol": e.headers!["Sec-WebSocket-Protocol"]!.split(",")[1]!.trim(),
            "X-Custom": "yes",
          },
        }),
      });
      const upgradeHeaders = new Promise<Record<string, unknown>>((resolve) => {
        const ws = new WebSocket(gateway!.url, ["chat.v1", "chat.v2"]);
        ws.once("upgrade", (res) => resolve(res.headers));
        ws.once("open", () => {
          expect(ws.protocol).to.equal("chat.v2");
          ws.close();
        });
      });
      expect(await upgradeHeaders).to.include({ "x-custom": "yes", "sec-websocket-protocol": "chat.v2" });
    });

    it("accepts connections when there is no $connect route", async () => {
      await start({ $default: () => ({ statusCode: 200 }) });
      const c = await client();
      expect(c.ws.readyState).to.equal(WebSocket.OPEN);
      expect(gateway!.openConnectionIds()).to.have.length(1);
    });

    it("refuses a handshake on another path or stage with 403, without running $connect", async () => {
      const events = await start({ $connect: () => ({ statusCode: 200 }) });
      for (const path of ["/prod", "/", "/dev/extra", `/@connections`]) {
        const error = await openClient(`ws://127.0.0.1:${gateway!.port}${path}`).then(
          () => expect.fail(`handshake on ${path} should be refused`),
          (e: { statusCode?: number }) => e,
        );
        expect(error.statusCode, path).to.equal(403);
      }
      expect(events).to.have.length(0);
      const c = await client(`ws://127.0.0.1:${gateway!.port}/dev/`);
      expect(c.ws.readyState).to.equal(WebSocket.OPEN);
    });
  });

  describe("limits", () => {
    let gateway: LocalGateway | undefined;
    let clients: TestClient[] = [];
    afterEach(async () => {
      for (const c of clients) c.ws.terminate();
      clients = [];
      await gateway?.stop();
      gateway = undefined;
    });

    async function start(limits = {}) {
      const bodies: string[] = [];
      const recorded = recording({
        $connect: () => ({ statusCode: 200 }),
        $disconnect: () => ({ statusCode: 200 }),
        $default: (e) => {
          bodies.push(e.body!);
          return { statusCode: 200 };
        },
      });
      gateway = await startLocalGateway({ port: 0, handlers: recorded.handlers, limits, log: () => {} });
      const c = await openClient(gateway.url);
      clients.push(c);
      const disconnect = () =>
        waitFor(
          () => recorded.events.find((e) => e.routeKey === "$disconnect")?.event.requestContext,
          3000,
          "$disconnect",
        );
      return { c, bodies, disconnect, events: recorded.events };
    }

    /** Sends `total` bytes of text as fragments of `fragment` bytes each. */
    async function sendFragmented(c: TestClient, total: number, fragment: number): Promise<void> {
      for (let sent = 0; sent < total; sent += fragment) {
        const size = Math.min(fragment, total - sent);
        await new Promise<void>((resolve, reject) =>
          c.ws.send("y".repeat(size), { fin: sent + size >= total }, (error) => (error ? reject(error) : resolve())),
        );
      }
    }

    it("closes with 1009 when one frame exceeds 32 KB, and fires $disconnect with 1009", async () => {
      const { c, bodies, disconnect } = await start();
      await c.send("x".repeat(32 * 1024));
      await waitFor(() => (bodies.length === 1 ? true : undefined));
      expect(bodies[0]).to.have.length(32 * 1024, "a 32 KB frame is allowed");
      c.ws.send("x".repeat(32 * 1024 + 1));
      expect((await c.closed).code).to.equal(1009);
      expect(await disconnect()).to.include({ disconnectStatusCode: 1009, disconnectReason: "Message too big" });
      expect(bodies).to.have.length(1, "the oversized frame never reached a handler");
    });

    it("accepts a 96 KB message sent as 32 KB frames, and closes with 1009 over 128 KB", async () => {
      const { c, bodies, disconnect } = await start();
      await sendFragmented(c, 96 * 1024, 32 * 1024);
      await waitFor(() => (bodies.length === 1 ? true : undefined));
      expect(bodies[0]).to.have.length(96 * 1024);
      await sendFragmented(c, 128 * 1024, 32 * 1024);
      await waitFor(() => (bodies.length === 2 ? true : undefined));
      await sendFragmented(c, 128 * 1024 + 1, 32 * 1024).catch(() => undefined);
      expect((await c.closed).code).to.equal(1009);
      expect((await disconnect()).disconnectStatusCode).to.equal(1009);
      expect(bodies).to.have.length(2);
    });

    it("closes with 1003 on a binary frame, and fires $disconnect with 1003", async () => {
      const { c, bodies, disconnect } = await start();
      c.ws.send(Buffer.from([1, 2, 3]), { binary: true });
      expect((await c.closed).code).to.equal(1003);
      expect((await disconnect()).disconnectStatusCode).to.equal(1003);
      expect(bodies).to.deep.equal([]);
    });

    it("closes an idle connection with 1001 Going away; traffic either way keeps it open", async () => {
      const { c, disconnect } = await start({ idleTimeoutMs: 300 });
      const opened = Date.now();
      for (let i = 0; i < 5; i++) {
        await new Promise((resolve) => setTimeout(resolve, 150));
        await c.send("keep-alive");
      }
      expect(c.ws.readyState).to.equal(WebSocket.OPEN, "messages reset the idle timer");
      const lastActivity = Date.now();
      const closed = await c.closed;
      expect(closed).to.deep.equal({ code: 1001, reason: "Going away" });
      expect(Date.now() - lastActivity).to.be.within(250, 1000);
      expect(Date.now() - opened).to.be.greaterThan(900);
      expect(await disconnect()).to.include({ disconnectStatusCode: 1001, disconnectReason: "Going away" });
    });

    it("counts server-to-client posts as activity for the idle timeout", async () => {
      // Node loads its fetch implementation on first use, which can take longer than the idle window below.
      await fetch("data:,warm-up");
      const { c, disconnect } = await start({ idleTimeoutMs: 300 });
      const id = gateway!.openConnectionIds()[0]!;
      for (let i = 0; i < 5; i++) {
        await new Promise((resolve) => setTimeout(resolve, 150));
        const path = `/dev/@connections/${encodeURIComponent(id)}`;
        const res = await fetch(`${gateway!.callbackUrl}/@connections/${encodeURIComponent(id)}`, {
          method: "POST",
          body: `ping ${i}`,
          headers: signedHeaders(gateway!.port, "POST", path, `ping ${i}`),
        });
        expect(res.status).to.equal(200);
      }
      expect(c.received).to.deep.equal(["ping 0", "ping 1", "ping 2", "ping 3", "ping 4"]);
      expect(c.ws.readyState).to.equal(WebSocket.OPEN, "posts reset the idle timer");
      expect((await c.closed).code).to.equal(1001);
      expect((await disconnect()).disconnectStatusCode).to.equal(1001);
    });

    it("stop() closes every connection with 1001 Going away and fires $disconnect for each", async () => {
      const { c, events } = await start();
      const other = await openClient(gateway!.url);
      clients.push(other);
      const ids = gateway!.openConnectionIds();
      expect(ids).to.have.length(2);
      const stopping = gateway!.stop();
      expect(await c.closed).to.deep.equal({ code: 1001, reason: "Going away" });
      expect(await other.closed).to.deep.equal({ code: 1001, reason: "Going away" });
      await stopping;
      const disconnects = events.filter((e) => e.routeKey === "$disconnect").map((e) => e.event.requestContext);
      expect(disconnects.map((d) => d.connectionId).sort()).to.deep.equal(
        [...ids].sort(),
        "stop() waited for every $disconnect",
      );
      for (const d of disconnects) expect(d).to.include({ disconnectStatusCode: 1001, disconnectReason: "Going away" });
      const refused = await openClient(gateway!.url).then(
        () => "connected",
        (e: Error) => e.message,
      );
      expect(refused).to.match(/ECONNREFUSED/);
    });

    it("closes with 1001 at the maximum connection duration whatever the traffic", async () => {
      const { c, disconnect } = await start({ maxConnectionMs: 400 });
      const opened = Date.now();
      const chatter = setInterval(() => c.ws.readyState === WebSocket.OPEN && c.ws.send("busy"), 50);
      const closed = await c.closed;
      clearInterval(chatter);
      expect(closed.code).to.equal(1001);
      expect(Date.now() - opened).to.be.within(350, 1500);
      expect((await disconnect()).disconnectStatusCode).to.equal(1001);
    });
  });
});
