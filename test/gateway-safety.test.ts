/**
 * The local gateway is safe on a developer's machine: a web page from another origin cannot open a WebSocket
 * (cross-site WebSocket hijacking) and cannot inject frames through `@connections` (a browser's simple POST
 * carries no SigV4 signature), while wscat-style clients, the gateway's own page and the real SDK client work.
 */
import { request } from "node:http";
import {
  ApiGatewayManagementApiServiceException,
  PostToConnectionCommand,
} from "@aws-sdk/client-apigatewaymanagementapi";
import { expect } from "chai";
import { type LocalGateway, startLocalGateway } from "../local/gateway";
import { signingSecrets } from "../local/handler-env";
import { OriginPolicy } from "../local/origin-policy";
import { SigV4Signer, sha256Hex } from "../runtime/sigv4";
import {
  openClient,
  type RecordedEvent,
  recording,
  managementClient as sdk,
  signedHeaders,
  type TestClient,
  waitFor,
} from "./support/gateway";

interface RawResponse {
  readonly status: number;
  readonly headers: Record<string, string | string[] | undefined>;
  readonly body: string;
}

function raw(
  port: number,
  method: string,
  path: string,
  headers: Record<string, string>,
  body = "",
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

describe("local gateway: safe by default", function () {
  this.timeout(10_000);
  let gateway: LocalGateway;
  let events: RecordedEvent[];
  const clients: TestClient[] = [];

  async function start(allowedOrigins?: string[]): Promise<void> {
    const recorded = recording({
      $connect: () => ({ statusCode: 200 }),
      $disconnect: () => ({ statusCode: 200 }),
      $default: () => ({ statusCode: 200 }),
    });
    events = recorded.events;
    gateway = await startLocalGateway({ port: 0, handlers: recorded.handlers, log: () => {}, allowedOrigins });
  }

  async function open(origin?: string): Promise<TestClient> {
    const c = await openClient(gateway.url, origin === undefined ? {} : { origin });
    clients.push(c);
    return c;
  }

  /** The handshake's HTTP status: 101 when accepted, else what the refusal said. */
  async function handshakeStatus(origin?: string): Promise<number> {
    try {
      await open(origin);
      return 101;
    } catch (error) {
      const status = /(?:Unexpected server response|handshake refused): (\d+)/.exec((error as Error).message)?.[1];
      if (!status) throw error;
      return Number(status);
    }
  }

  afterEach(async () => {
    for (const c of clients.splice(0)) c.ws.terminate();
    await gateway?.stop();
  });

  describe("WebSocket handshakes and Origin", () => {
    it("refuses a foreign Origin with 403 before $connect runs", async () => {
      await start();
      for (const origin of [
        "https://evil.example",
        "http://localhost:1",
        `http://evil.example:${gateway.port}`,
        "null",
        `https://localhost:${gateway.port}`,
      ]) {
        expect(await handshakeStatus(origin), origin).to.equal(403);
      }
      expect(
        events.filter((e) => e.routeKey === "$connect"),
        "$connect never ran",
      ).to.have.length(0);
      expect(gateway.tracked.connections).to.equal(0);
    });

    it("accepts the gateway's own page (localhost, 127.0.0.1, [::1] on its port) and clients with no Origin", async () => {
      await start();
      const port = gateway.port;
      for (const origin of [
        undefined,
        `http://localhost:${port}`,
        `http://127.0.0.1:${port}`,
        `http://[::1]:${port}`,
      ]) {
        expect(await handshakeStatus(origin), String(origin)).to.equal(101);
      }
      expect(events.filter((e) => e.routeKey === "$connect")).to.have.length(4);
    });

    it("accepts the origins allowed with allowedOrigins (--allow-origin), and any with *", async () => {
      await start(["http://localhost:5173", "null"]);
      expect(await handshakeStatus("http://localhost:5173")).to.equal(101);
      expect(await handshakeStatus("null")).to.equal(101);
      expect(await handshakeStatus("http://localhost:5174")).to.equal(403);
      await gateway.stop();
      await start(["*"]);
      expect(await handshakeStatus("https://anything.example")).to.equal(101);
    });

    it("rejects --allow-origin values that are not origins", () => {
      for (const bad of ["localhost:5173", "http://localhost:5173/", "http://x/path", "ftp//"]) {
        expect(() => new OriginPolicy({ host: "127.0.0.1", port: 1 }, [bad]), bad).to.throw(
          RangeError,
          /--allow-origin/,
        );
      }
    });
  });

  describe("@connections requires a SigV4 signature", () => {
    async function connected(): Promise<{ c: TestClient; id: string; path: string }> {
      await start();
      const c = await open();
      const id = await waitFor(() => gateway.openConnectionIds()[0]);
      return { c, id, path: `/dev/@connections/${encodeURIComponent(id)}` };
    }

    it("refuses a browser's simple POST (text/plain, no Authorization) with 403 MissingAuthenticationTokenException; nothing is sent", async () => {
      const { c, path } = await connected();
      const res = await raw(
        gateway.port,
        "POST",
        path,
        { "content-type": "text/plain", origin: "https://evil.example" },
        "injected",
      );
      expect(res.status).to.equal(403);
      expect(res.headers["x-amzn-errortype"]).to.equal("MissingAuthenticationTokenException");
      expect(JSON.parse(res.body)).to.deep.equal({ message: "Missing Authentication Token" });
      expect(res.headers["access-control-allow-origin"], "no CORS grant").to.equal(undefined);
      for (const method of ["GET", "DELETE"]) {
        expect((await raw(gateway.port, method, path, {})).status, method).to.equal(403);
      }
      await new Promise((resolve) => setTimeout(resolve, 100));
      expect(c.received).to.deep.equal([]);
      expect(gateway.openConnectionIds()).to.have.length(1, "DELETE did not close it");
    });

    it("accepts the well-known secret `local` only while no AWS_SECRET_ACCESS_KEY is set", () => {
      expect(signingSecrets({})).to.deep.equal(["local"]);
      // A developer who set a secret (before binding beyond loopback, say) must not be reachable with `local`.
      expect(signingSecrets({ AWS_SECRET_ACCESS_KEY: "s3cr3t" })).to.deep.equal(["s3cr3t"]);
    });

    it("refuses a wrong secret, a tampered body, an old X-Amz-Date and another service's scope with 403 InvalidSignatureException", async () => {
      const { c, path } = await connected();
      const port = gateway.port;
      const wrongSecret = signedHeaders(port, "POST", path, "a", { accessKeyId: "local", secretAccessKey: "guess" });
      const tampered = signedHeaders(port, "POST", path, "a");
      const cases: [string, Record<string, string>, string][] = [
        ["wrong secret", wrongSecret, "a"],
        ["tampered body", tampered, "b"],
        ["tampered body, undeclared hash", { ...tampered, "x-amz-content-sha256": "" }, "b"],
        ["malformed", { authorization: "Bearer x" }, "a"],
        [
          "other service",
          { ...tampered, authorization: tampered.authorization!.replace("/execute-api/", "/lambda/") },
          "a",
        ],
      ];
      for (const [what, headers, body] of cases) {
        const res = await raw(port, "POST", path, headers, body);
        expect(res.status, what).to.equal(403);
        expect(res.headers["x-amzn-errortype"], what).to.equal("InvalidSignatureException");
        expect(JSON.parse(res.body).message, what).to.be.a("string");
      }
      // Signed 10 minutes ago: AWS's window is 5 minutes.
      const hash = sha256Hex("a");
      const old = new SigV4Signer("us-east-1", "execute-api").sign(
        { method: "POST", host: `127.0.0.1:${port}`, path, payloadHash: hash },
        { accessKeyId: "local", secretAccessKey: "local" },
        Date.now() - 10 * 60 * 1000,
      );
      const expired = await raw(port, "POST", path, old, "a");
      expect(expired.status).to.equal(403);
      expect(JSON.parse(expired.body).message).to.match(/^Signature expired/);
      await new Promise((resolve) => setTimeout(resolve, 100));
      expect(c.received).to.deep.equal([]);
    });

    it("refuses a correctly signed request whose Host is not the gateway's (DNS rebinding) with 403", async () => {
      const { c, path } = await connected();
      const host = `rebound.example:${gateway.port}`;
      const headers = new SigV4Signer("us-east-1", "execute-api").sign(
        { method: "POST", host, path, payloadHash: sha256Hex("x") },
        { accessKeyId: "local", secretAccessKey: "local" },
      );
      const res = await raw(gateway.port, "POST", path, { ...headers, host }, "x");
      expect(res.status).to.equal(403);
      expect(res.headers["x-amzn-errortype"]).to.equal("ForbiddenException");
      expect(c.received).to.deep.equal([]);
    });

    it("lets the real SDK client post with local credentials, any access key id; a wrong secret surfaces as a 403", async () => {
      const { c, id } = await connected();
      for (const accessKeyId of ["local", "AKIAIOSFODNN7EXAMPLE"]) {
        const client = sdk(gateway.callbackUrl, "local", accessKeyId);
        try {
          await client.send(
            new PostToConnectionCommand({ ConnectionId: id, Data: Buffer.from(`from ${accessKeyId}`) }),
          );
        } finally {
          client.destroy();
        }
        expect(await c.next()).to.equal(`from ${accessKeyId}`);
      }
      const wrong = sdk(gateway.callbackUrl, "not-the-gateways");
      try {
        const error = await wrong.send(new PostToConnectionCommand({ ConnectionId: id, Data: Buffer.from("x") })).then(
          () => expect.fail("a wrong secret must fail"),
          (e: unknown) => e as ApiGatewayManagementApiServiceException,
        );
        expect(error).to.be.instanceOf(ApiGatewayManagementApiServiceException);
        expect(error.name).to.equal("InvalidSignatureException");
        expect(error.$metadata.httpStatusCode).to.equal(403);
      } finally {
        wrong.destroy();
      }
    });
  });
});
