/**
 * The `$connect` authorizer in the local gateway, end to end over real sockets: handshake statuses exactly as API
 * Gateway gives them (401 without invoking anything when the identity source is missing, 401 for a bad token,
 * 403 for a denying policy, 500 for a broken authorizer, 101 for a good token), the REQUEST event the authorizer
 * receives, and its context reaching `$connect` (which stores it), every message and `$disconnect`.
 */

import { randomBytes } from "node:crypto";
import { request } from "node:http";
import { expect } from "chai";
import type { AuthSettings } from "../contract/auth-settings";
import { type AuthorizerEvent, authorize, createVerifier } from "../handlers/authorizer";
import type { AuthorizerHandler } from "../local/authorizer";
import { arnMatches, evaluatePolicy, parseIdentitySources } from "../local/authorizer";
import { Logger } from "../runtime/logger";
import { MemoryConnectionStore } from "../stores/memory";
import { type ChatGateway, openClient, startChatGateway, waitFor } from "./support/gateway";
import { startTestIdp, type TestIdp, tamper } from "./support/jwks";

/** The raw handshake: status, headers and body of a refusal (101 when it upgraded). */
function handshake(
  url: string,
  headers: Record<string, string> = {},
): Promise<{ status: number; body: string; headers: Record<string, unknown> }> {
  const target = new URL(url);
  return new Promise((resolve, reject) => {
    const req = request({
      host: target.hostname === "localhost" ? "127.0.0.1" : target.hostname,
      port: target.port,
      path: `${target.pathname}${target.search}`,
      headers: {
        Connection: "Upgrade",
        Upgrade: "websocket",
        "Sec-WebSocket-Version": "13",
        "Sec-WebSocket-Key": randomBytes(16).toString("base64"),
        ...headers,
      },
    });
    req.on("upgrade", (res, socket) => {
      socket.destroy();
      resolve({ status: res.statusCode ?? 0, body: "", headers: res.headers });
    });
    req.on("response", (res) => {
      let body = "";
      res.on("data", (c: Buffer) => (body += c.toString()));
      res.on("end", () => resolve({ status: res.statusCode ?? 0, body, headers: res.headers }));
    });
    req.on("error", reject);
    req.end();
  });
}

describe("local gateway: $connect authorizer", function () {
  this.timeout(30_000);
  let idp: TestIdp;
  let store: MemoryConnectionStore;
  let gw: ChatGateway;
  let authorizerEvents: Record<string, unknown>[];
  /** Replaced per test to simulate broken authorizers; by default the real JWT authorizer. */
  let behaviour: AuthorizerHandler | undefined;

  const start = async (identitySources: string[], settings: Partial<AuthSettings> = {}, timeoutMs?: number) => {
    const verifier = createVerifier(idp.settings(settings));
    const log = new Logger({}, "error", () => {});
    gw = await startChatGateway(store, {
      authorizer: {
        identitySources,
        timeoutMs,
        handler: (event) => {
          authorizerEvents.push(event);
          return behaviour ? behaviour(event) : authorize(event as unknown as AuthorizerEvent, verifier, log);
        },
      },
    });
  };
  const connects = () => gw.events.filter((e) => e.routeKey === "$connect");

  before(async () => {
    idp = await startTestIdp();
  });
  after(async () => {
    await idp?.close();
  });
  beforeEach(() => {
    store = new MemoryConnectionStore();
    authorizerEvents = [];
    behaviour = undefined;
    idp.mode = "ok";
  });
  afterEach(async () => {
    await gw?.stop();
  });

  describe("token in the query string (identity source route.request.querystring.token)", () => {
    beforeEach(() => start(["route.request.querystring.token"]));

    it("answers 401 without invoking the authorizer or $connect when the token is missing or empty", async () => {
      for (const suffix of ["", "?", "?token=", "?other=1", "?token=%20"]) {
        const res = await handshake(`${gw.gateway.url}${suffix}`);
        expect(res.status, suffix).to.equal(401);
        expect(res.body).to.equal('{"message":"Unauthorized"}');
        expect(res.headers["x-amzn-errortype"]).to.equal("UnauthorizedException");
      }
      // "%20" decodes to a blank value: API Gateway's "empty" check (UNVERIFIED for whitespace) refuses it here.
      expect(authorizerEvents).to.deep.equal([]);
      expect(connects()).to.deep.equal([]);
    });

    it("answers 401 for expired, wrong-audience, wrong-issuer, unsigned, HS256-with-public-key and tampered tokens, never running $connect", async () => {
      const bad = [
        await idp.token({ exp: Math.floor(Date.now() / 1000) - 60 }),
        await idp.token({ aud: "other" }),
        await idp.token({ iss: "https://evil.test/" }),
        idp.unsigned(),
        await idp.hs256WithPublicKey(),
        tamper(await idp.token()),
      ];
      for (const token of bad) {
        const res = await handshake(`${gw.gateway.url}?token=${encodeURIComponent(token)}`);
        expect(res.status).to.equal(401);
      }
      expect(authorizerEvents).to.have.length(bad.length);
      expect(connects()).to.deep.equal([]);
      expect(gw.gateway.tracked.connections).to.equal(0);
    });

    it("completes the handshake (101) for a valid token and hands the authorizer context to $connect, which stores it", async () => {
      const token = await idp.token({ sub: "alice", scope: "chat" });
      const client = await openClient(`${gw.gateway.url}?token=${encodeURIComponent(token)}`);
      const connect = await waitFor(() => connects()[0]);
      const { authorizer, connectionId } = connect.event.requestContext;
      expect(authorizer).to.include({ principalId: "alice", userId: "alice", scope: "chat" });
      // Context values arrive stringified; integrationLatency is a number.
      expect(authorizer!.tokenExpiresAt).to.be.a("string").and.match(/^\d+$/);
      expect(authorizer!.integrationLatency).to.be.a("number");
      const stored = await store.get(connectionId);
      expect(stored?.attributes).to.deep.equal({
        principalId: "alice",
        userId: "alice",
        scope: "chat",
        tokenExpiresAt: authorizer!.tokenExpiresAt,
      });

      // Every later event of the connection carries the same authorizer object.
      await client.send(JSON.stringify({ action: "sendmessage", data: "hi" }));
      expect(await client.next()).to.equal("hi");
      const message = gw.events.find((e) => e.routeKey === "sendmessage")!;
      expect(message.event.requestContext.authorizer).to.deep.equal(authorizer);
      await client.close();
      const disconnect = await gw.disconnectOf(connectionId);
      expect(disconnect.requestContext.authorizer).to.deep.equal(authorizer);
    });

    it("sends the authorizer the REQUEST event of §3.2", async () => {
      const token = await idp.token();
      const client = await openClient(`${gw.gateway.url}?token=${encodeURIComponent(token)}&x=1&x=2`, {
        headers: { "User-Agent": "mocha-auth" },
      });
      const event = authorizerEvents[0] as Record<string, any>;
      expect(event.type).to.equal("REQUEST");
      expect(event.methodArn).to.equal("arn:aws:execute-api:us-east-1:000000000000:local/dev/$connect");
      expect(event.headers).to.include({
        Connection: "Upgrade",
        Upgrade: "websocket",
        "content-length": "0",
        "User-Agent": "mocha-auth",
      });
      expect(event.multiValueHeaders.Upgrade).to.deep.equal(["websocket"]);
      expect(event.queryStringParameters).to.deep.equal({ token, x: "2" });
      expect(event.multiValueQueryStringParameters).to.deep.equal({ token: [token], x: ["1", "2"] });
      expect(event.stageVariables).to.deep.equal({});
      const ctx = event.requestContext;
      expect(ctx).to.include({
        routeKey: "$connect",
        eventType: "CONNECT",
        stage: "dev",
        apiId: "local",
        messageDirection: "IN",
      });
      expect(ctx).to.not.have.property("authorizer");
      expect(ctx).to.not.have.property("messageId");
      expect(ctx.identity).to.deep.equal({ sourceIp: "127.0.0.1", userAgent: "mocha-auth" });
      // The same connection id as the connection it authorizes.
      const connect = await waitFor(() => connects()[0]);
      expect(connect.event.requestContext.connectionId).to.equal(ctx.connectionId);
      // The integration event still lacks the upgrade headers (§1.1).
      expect(connect.event.headers).to.not.have.property("Connection");
      await client.close();
    });

    it("answers 500 when the key set cannot be fetched (an authorizer error other than Unauthorized)", async () => {
      idp.mode = "down";
      const res = await handshake(`${gw.gateway.url}?token=${encodeURIComponent(await idp.token())}`);
      expect(res.status).to.equal(500);
      expect(res.headers["x-amzn-errortype"]).to.equal("AuthorizerConfigurationException");
      expect(connects()).to.deep.equal([]);
    });

    const policyCases: [string, unknown, number][] = [
      ["an explicit Deny", { Statement: [{ Effect: "Deny", Action: "execute-api:Invoke", Resource: "*" }] }, 403],
      [
        "an Allow of a REST-style resource (…/dev/*/*) that does not match …/dev/$connect",
        {
          Statement: [
            {
              Effect: "Allow",
              Action: "execute-api:Invoke",
              Resource: "arn:aws:execute-api:us-east-1:000000000000:local/dev/*/*",
            },
          ],
        },
        403,
      ],
      ["an Allow of another action", { Statement: [{ Effect: "Allow", Action: "s3:GetObject", Resource: "*" }] }, 403],
      [
        "an Allow and a matching Deny (Deny wins)",
        {
          Statement: [
            { Effect: "Allow", Action: "execute-api:Invoke", Resource: "*" },
            { Effect: "Deny", Action: "execute-api:*", Resource: ["arn:aws:execute-api:*:*:local/dev/$connect"] },
          ],
        },
        403,
      ],
      [
        "an Allow with * and ? wildcards that match",
        {
          Statement: [
            { Effect: "Allow", Action: ["execute-api:*"], Resource: ["arn:aws:execute-api:us-east-?:*:local/*"] },
          ],
        },
        101,
      ],
      ["a malformed policy", { Statement: "nope" }, 500],
    ];
    for (const [label, policyDocument, status] of policyCases) {
      it(`answers ${status} for ${label}`, async () => {
        behaviour = () => ({
          principalId: "p",
          policyDocument: { Version: "2012-10-17", ...(policyDocument as object) },
        });
        const res = await handshake(`${gw.gateway.url}?token=anything`);
        expect(res.status).to.equal(status);
        if (status === 403) expect(res.body).to.equal('{"message":"Forbidden"}');
        expect(connects()).to.have.length(status === 101 ? 1 : 0);
      });
    }

    const brokenCases: [string, AuthorizerHandler][] = [
      ["throws another error", () => Promise.reject(new Error("boom"))],
      ["throws a non-Error", () => Promise.reject("Unauthorized!")],
      ["returns {statusCode: 401} (not an authorizer result)", () => ({ statusCode: 401 })],
      ["returns nothing", () => undefined],
      [
        "returns no principalId",
        () => ({ policyDocument: { Statement: [{ Effect: "Allow", Action: "*", Resource: "*" }] } }),
      ],
      [
        "returns a context with an object value",
        () => ({
          principalId: "p",
          policyDocument: { Statement: [{ Effect: "Allow", Action: "*", Resource: "*" }] },
          context: { nested: { a: 1 } },
        }),
      ],
      [
        "returns more than 8 KB",
        () => ({
          principalId: "p",
          policyDocument: { Statement: [{ Effect: "Allow", Action: "*", Resource: "*" }] },
          context: { big: "x".repeat(9000) },
        }),
      ],
    ];
    for (const [label, broken] of brokenCases) {
      it(`answers 500 when the authorizer ${label}`, async () => {
        behaviour = broken;
        const res = await handshake(`${gw.gateway.url}?token=anything`);
        expect(res.status).to.equal(500);
        expect(connects()).to.deep.equal([]);
      });
    }

    it("answers 401 for exactly Error('Unauthorized') from any authorizer", async () => {
      behaviour = () => Promise.reject(new Error("Unauthorized"));
      expect((await handshake(`${gw.gateway.url}?token=anything`)).status).to.equal(401);
    });

    it("keeps a __proto__ context key as data without touching Object.prototype", async () => {
      behaviour = () =>
        JSON.parse(
          '{"principalId":"p","policyDocument":{"Statement":[{"Effect":"Allow","Action":"*","Resource":"*"}]},"context":{"__proto__":"x","polluted":"yes"}}',
        );
      const client = await openClient(`${gw.gateway.url}?token=anything`);
      const connect = await waitFor(() => connects()[0]);
      expect(Object.hasOwn(connect.event.requestContext.authorizer ?? {}, "__proto__")).to.equal(true);
      expect(({} as Record<string, unknown>).polluted).to.equal(undefined);
      await client.close();
    });
  });

  describe("timeouts", () => {
    it("answers 500 when the authorizer does not answer in time", async () => {
      await start(["route.request.querystring.token"], {}, 200);
      behaviour = () => new Promise(() => {});
      const started = Date.now();
      expect((await handshake(`${gw.gateway.url}?token=slow`)).status).to.equal(500);
      expect(Date.now() - started).to.be.below(2_000);
    });
  });

  describe("token in a header (identity source route.request.header.Authorization)", () => {
    beforeEach(() => start(["route.request.header.Authorization"], { header: "Authorization" }));

    it("answers 401 without invoking anything when the header is missing, even with a token in the query", async () => {
      const res = await handshake(`${gw.gateway.url}?token=${encodeURIComponent(await idp.token())}`);
      expect(res.status).to.equal(401);
      expect(authorizerEvents).to.deep.equal([]);
    });

    it("accepts Authorization: Bearer <token> (names matched case-insensitively)", async () => {
      const res = await handshake(gw.gateway.url, { authorization: `Bearer ${await idp.token({ sub: "bob" })}` });
      expect(res.status).to.equal(101);
      const connect = await waitFor(() => connects()[0]);
      expect(connect.event.requestContext.authorizer).to.include({ principalId: "bob" });
    });
  });

  describe("two identity sources", () => {
    beforeEach(() => start(["route.request.querystring.token", "route.request.header.X-Client"]));

    it("needs both: either one alone is 401 without invoking the authorizer", async () => {
      const token = encodeURIComponent(await idp.token());
      expect((await handshake(`${gw.gateway.url}?token=${token}`)).status).to.equal(401);
      expect((await handshake(gw.gateway.url, { "X-Client": "web" })).status).to.equal(401);
      expect(authorizerEvents).to.deep.equal([]);
      expect((await handshake(`${gw.gateway.url}?token=${token}`, { "X-Client": "web" })).status).to.equal(101);
      expect(authorizerEvents).to.have.length(1);
    });
  });
});

describe("local gateway authorizer: policy matching and identity sources", () => {
  const arn = "arn:aws:execute-api:us-east-1:000000000000:local/dev/$connect";

  it("matches IAM-style * and ? wildcards, literally otherwise", () => {
    expect(arnMatches("*", arn)).to.equal(true);
    expect(arnMatches(arn, arn)).to.equal(true);
    expect(arnMatches("arn:aws:execute-api:*:*:local/dev/*", arn)).to.equal(true);
    expect(arnMatches("arn:aws:execute-api:us-east-?:000000000000:local/dev/$connect", arn)).to.equal(true);
    expect(arnMatches("arn:aws:execute-api:us-east-1:000000000000:local/dev/*/*", arn)).to.equal(false);
    expect(arnMatches("arn:aws:execute-api:us-east-1:000000000000:local/prod/$connect", arn)).to.equal(false);
    expect(arnMatches("arn:aws:execute-api:us-east-1:000000000000:local/dev/$CONNECT", arn)).to.equal(false);
    expect(arnMatches("arn:aws:execute-api:us-east-1:000000000000:local/dev/.connect", arn)).to.equal(false);
  });

  it("evaluates Deny over Allow, and implicit deny", () => {
    const allowAll = { Effect: "Allow", Action: "execute-api:Invoke", Resource: arn };
    expect(evaluatePolicy({ Statement: [allowAll] }, arn)).to.equal("allow");
    expect(evaluatePolicy({ Statement: allowAll }, arn)).to.equal("allow");
    expect(evaluatePolicy({ Statement: [] }, arn)).to.equal("deny");
    expect(evaluatePolicy({ Statement: [allowAll, { ...allowAll, Effect: "Deny" }] }, arn)).to.equal("deny");
    expect(evaluatePolicy(undefined, arn)).to.equal(undefined);
    expect(evaluatePolicy({ Statement: [{ Effect: "Maybe", Action: "*", Resource: "*" }] }, arn)).to.equal(undefined);
  });

  it("accepts only header and query-string identity sources", () => {
    expect(
      parseIdentitySources(["route.request.querystring.token", "route.request.header.Authorization"]),
    ).to.deep.equal([
      { kind: "querystring", name: "token" },
      { kind: "header", name: "Authorization" },
    ]);
    expect(() => parseIdentitySources([])).to.throw(RangeError);
    expect(() => parseIdentitySources(["stageVariables.x"])).to.throw(RangeError, /stageVariables/);
    expect(() => parseIdentitySources(["$request.querystring.token"])).to.throw(RangeError);
  });
});
