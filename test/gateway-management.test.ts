/** The gateway's `@connections` API through the real `@aws-sdk/client-apigatewaymanagementapi` client. */

import { request } from "node:http";
import {
  type ApiGatewayManagementApiClient,
  DeleteConnectionCommand,
  ForbiddenException,
  GetConnectionCommand,
  GoneException,
  PayloadTooLargeException,
  PostToConnectionCommand,
} from "@aws-sdk/client-apigatewaymanagementapi";
import { expect } from "chai";
import { WebSocket } from "ws";
import { type LocalGateway, startLocalGateway } from "../local/gateway";
import {
  openClient,
  type RecordedEvent,
  recording,
  managementClient as sdk,
  signedHeaders,
  type TestClient,
  waitFor,
} from "./support/gateway";

/** Resolves with the SDK error a command fails with (fails the test if it succeeds). */
async function failure(
  promise: Promise<unknown>,
): Promise<Error & { $metadata?: { httpStatusCode?: number }; $fault?: string }> {
  try {
    await promise;
  } catch (error) {
    return error as Error;
  }
  return expect.fail("the call should have failed");
}

interface RawResponse {
  status: number;
  headers: Record<string, string | string[] | undefined>;
  body: string;
}

/** A raw HTTP call, SigV4-signed unless `headers` are given (the gateway refuses unsigned calls). */
function raw(
  port: number,
  method: string,
  path: string,
  body?: string,
  headers: Record<string, string> = signedHeaders(port, method, path, body),
): Promise<RawResponse> {
  return new Promise((resolve, reject) => {
    const req = request({ host: "127.0.0.1", port, method, path, headers }, (res) => {
      let text = "";
      res.on("data", (chunk: Buffer) => (text += chunk.toString()));
      res.on("end", () => resolve({ status: res.statusCode!, headers: res.headers, body: text }));
    });
    req.on("error", reject);
    req.end(body);
  });
}

describe("local gateway: @connections through the real SDK client", function () {
  this.timeout(10_000);
  let gateway: LocalGateway;
  let events: RecordedEvent[];
  let client: ApiGatewayManagementApiClient;
  let clients: TestClient[] = [];
  /** `$connect` waits on this when set. */
  let connectGate: Promise<void> | undefined;

  beforeEach(async () => {
    connectGate = undefined;
    const recorded = recording({
      $connect: async () => {
        await connectGate;
        return { statusCode: 200 };
      },
      $disconnect: () => ({ statusCode: 200 }),
      $default: () => ({ statusCode: 200 }),
    });
    events = recorded.events;
    gateway = await startLocalGateway({ port: 0, handlers: recorded.handlers, log: () => {} });
    client = sdk(gateway.callbackUrl);
  });
  afterEach(async () => {
    for (const c of clients) c.ws.terminate();
    clients = [];
    client.destroy();
    await gateway.stop();
  });

  async function connected(options = {}): Promise<{ c: TestClient; id: string }> {
    const before = new Set(gateway.openConnectionIds());
    const c = await openClient(gateway.url, options);
    clients.push(c);
    const id = gateway.openConnectionIds().find((x) => !before.has(x))!;
    expect(id).to.be.a("string");
    return { c, id };
  }

  it("uses http://127.0.0.1:PORT/{stage} as the callback URL", () => {
    expect(gateway.callbackUrl).to.equal(`http://127.0.0.1:${gateway.port}/dev`);
    expect(gateway.url).to.equal(`ws://localhost:${gateway.port}/dev`);
  });

  it("PostToConnection delivers the raw bytes as one text frame (200)", async () => {
    const { c, id } = await connected();
    const out = await client.send(
      new PostToConnectionCommand({ ConnectionId: id, Data: Buffer.from('{"not":"wrapped"} é') }),
    );
    expect(out.$metadata.httpStatusCode).to.equal(200);
    expect(out.$metadata.requestId).to.match(/^[0-9a-f-]{36}$/);
    expect(await c.next()).to.equal('{"not":"wrapped"} é');
    const exactly = "z".repeat(131_072);
    await client.send(new PostToConnectionCommand({ ConnectionId: id, Data: Buffer.from(exactly) }));
    expect(await c.next()).to.equal(exactly, "131072 bytes is still allowed");
  });

  it("GetConnection returns connectedAt, identity and lastActiveAt (the SDK maps the camelCase JSON)", async () => {
    const { c, id } = await connected({ headers: { "User-Agent": "mocha-sdk-test" } });
    const first = await client.send(new GetConnectionCommand({ ConnectionId: id }));
    expect(first.ConnectedAt).to.be.instanceOf(Date);
    expect(first.Identity).to.deep.equal({ SourceIp: "127.0.0.1", UserAgent: "mocha-sdk-test" });
    expect(first.LastActiveAt!.getTime()).to.equal(first.ConnectedAt!.getTime());
    const connectEvent = events.find((e) => e.routeKey === "$connect")!.event;
    expect(first.ConnectedAt!.getTime()).to.equal(connectEvent.requestContext.connectedAt);

    await new Promise((resolve) => setTimeout(resolve, 20));
    await c.send("activity");
    await waitFor(() => events.find((e) => e.routeKey === "$default"));
    const second = await client.send(new GetConnectionCommand({ ConnectionId: id }));
    expect(second.LastActiveAt!.getTime()).to.be.greaterThan(first.LastActiveAt!.getTime());
  });

  it("GetConnection answers userAgent null when the client sent none", async () => {
    const { id } = await connected();
    const res = await raw(gateway.port, "GET", `/dev/@connections/${encodeURIComponent(id)}`);
    expect(res.status).to.equal(200);
    expect(res.headers["content-type"]).to.equal("application/json");
    const body = JSON.parse(res.body) as Record<string, unknown>;
    expect(Object.keys(body)).to.deep.equal(["connectedAt", "identity", "lastActiveAt"]);
    expect(body.identity).to.deep.equal({ sourceIp: "127.0.0.1", userAgent: null });
    expect(body.connectedAt).to.match(/^\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d\.\d{3}Z$/);
  });

  it("DeleteConnection closes with 1000 Connection Closed Normally (204), then $disconnect fires with 1000", async () => {
    const { c, id } = await connected();
    const out = await client.send(new DeleteConnectionCommand({ ConnectionId: id }));
    expect(out.$metadata.httpStatusCode).to.equal(204);
    expect(await c.closed).to.deep.equal({ code: 1000, reason: "Connection Closed Normally" });
    const disconnect = await waitFor(() => events.find((e) => e.routeKey === "$disconnect"));
    expect(disconnect.event.requestContext).to.include({
      connectionId: id,
      disconnectStatusCode: 1000,
      disconnectReason: "Connection Closed Normally",
    });
    const gone = await failure(
      client.send(new PostToConnectionCommand({ ConnectionId: id, Data: Buffer.from("late") })),
    );
    expect(gone).to.be.instanceOf(GoneException);
    expect(events.filter((e) => e.routeKey === "$disconnect")).to.have.length(1);
  });

  it("raises GoneException (410) for an id that never existed, for all three operations", async () => {
    for (const command of [
      new PostToConnectionCommand({ ConnectionId: "NoSuchConnect=", Data: Buffer.from("x") }),
      new GetConnectionCommand({ ConnectionId: "NoSuchConnect=" }),
      new DeleteConnectionCommand({ ConnectionId: "NoSuchConnect=" }),
    ]) {
      const error = await failure(client.send(command as PostToConnectionCommand));
      expect(error, command.constructor.name).to.be.instanceOf(GoneException);
      expect(error.name).to.equal("GoneException");
      expect(error.$metadata?.httpStatusCode).to.equal(410);
      expect(error.$fault).to.equal("client");
    }
  });

  it("raises GoneException while $connect is still running, and delivers once the handshake is done", async () => {
    let release!: () => void;
    connectGate = new Promise((resolve) => (release = resolve));
    const opening = openClient(gateway.url);
    const connect = await waitFor(() => events.find((e) => e.routeKey === "$connect"));
    const id = connect.event.requestContext.connectionId;
    for (const command of [
      new PostToConnectionCommand({ ConnectionId: id, Data: Buffer.from("too early") }),
      new GetConnectionCommand({ ConnectionId: id }),
      new DeleteConnectionCommand({ ConnectionId: id }),
    ]) {
      expect(await failure(client.send(command as PostToConnectionCommand)), command.constructor.name).to.be.instanceOf(
        GoneException,
      );
    }
    release();
    const c = await opening;
    clients.push(c);
    await client.send(new PostToConnectionCommand({ ConnectionId: id, Data: Buffer.from("now") }));
    expect(await c.next()).to.equal("now");
    expect(c.received).to.deep.equal(["now"], "nothing from the early post");
  });

  it("raises GoneException once the client has closed", async () => {
    const { c, id } = await connected();
    await c.close();
    const error = await failure(client.send(new GetConnectionCommand({ ConnectionId: id })));
    expect(error).to.be.instanceOf(GoneException);
  });

  it("raises PayloadTooLargeException (413) over 131072 bytes and sends nothing", async () => {
    const { c, id } = await connected();
    const error = await failure(
      client.send(new PostToConnectionCommand({ ConnectionId: id, Data: Buffer.alloc(131_073, 97) })),
    );
    expect(error).to.be.instanceOf(PayloadTooLargeException);
    expect(error.$metadata?.httpStatusCode).to.equal(413);
    expect(error.message).to.match(/131072/);
    expect(await c.quiet(100)).to.deep.equal([]);
    expect(c.ws.readyState).to.equal(WebSocket.OPEN);
  });

  it("raises ForbiddenException (403) for a wrong stage", async () => {
    const { c, id } = await connected();
    const wrong = sdk(`http://127.0.0.1:${gateway.port}/prod`);
    try {
      const error = await failure(
        wrong.send(new PostToConnectionCommand({ ConnectionId: id, Data: Buffer.from("x") })),
      );
      expect(error).to.be.instanceOf(ForbiddenException);
      expect(error.message).to.equal("Forbidden");
      expect(error.$metadata?.httpStatusCode).to.equal(403);
    } finally {
      wrong.destroy();
    }
    expect(await c.quiet(100)).to.deep.equal([]);
  });

  it("accepts /@connections/{id} without the stage (endpoint http://127.0.0.1:PORT) and %40connections", async () => {
    const { c, id } = await connected();
    const stageless = sdk(`http://127.0.0.1:${gateway.port}`);
    try {
      await stageless.send(new PostToConnectionCommand({ ConnectionId: id, Data: Buffer.from("no stage") }));
    } finally {
      stageless.destroy();
    }
    expect(await c.next()).to.equal("no stage");
    const res = await raw(gateway.port, "POST", `/dev/%40connections/${encodeURIComponent(id)}`, "encoded at");
    expect(res.status).to.equal(200);
    expect(await c.next()).to.equal("encoded at");
  });

  it("sends API Gateway's headers: x-amzn-RequestId always, x-amzn-ErrorType on errors, empty 410 body", async () => {
    const gone = await raw(gateway.port, "POST", "/dev/@connections/NoSuchConnect%3D", "x");
    expect(gone.status).to.equal(410);
    expect(gone.headers["x-amzn-errortype"]).to.equal("GoneException");
    expect(gone.headers["x-amzn-requestid"]).to.match(/^[0-9a-f-]{36}$/);
    expect(gone.body).to.equal("");
    expect(gone.headers["content-length"]).to.equal("0");

    // `GET /` is the web client (test/web-client.test.ts); every other path is API Gateway's 403.
    for (const path of [
      "/dev",
      "/index.htm",
      "/prod/@connections/abc",
      "/dev/@connections",
      "/dev/connections/abc",
      "/dev/@connections/a/b",
    ]) {
      const res = await raw(gateway.port, "GET", path);
      expect(res.status, path).to.equal(403);
      expect(res.headers["x-amzn-errortype"], path).to.equal("ForbiddenException");
      expect(res.headers["x-amzn-requestid"], path).to.match(/^[0-9a-f-]{36}$/);
      expect(JSON.parse(res.body), path).to.deep.equal({ message: "Forbidden" });
    }
    const put = await raw(gateway.port, "PUT", "/dev/@connections/abc", "x");
    expect(put.status).to.equal(403);
  });
});
