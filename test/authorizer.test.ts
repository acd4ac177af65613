/**
 * The `$connect` JWT authorizer (handlers/authorizer.ts) against a real key set served from loopback: every
 * token it must accept or refuse, the 401-versus-500 split API Gateway depends on, the key set fetched once per
 * container, and its environment contract.
 */
import { expect } from "chai";
import { authSettingsEnv, DEFAULT_ALGORITHMS, parseAlgorithms, readAuthSettings } from "../contract/auth-settings";
import { ENV, EnvError } from "../contract/env";
import { AUTHORIZER_OUTCOMES } from "../contract/routes";
import {
  type AuthorizerEvent,
  type AuthorizerResult,
  allow,
  authorize,
  createVerifier,
  handler,
  tokenOf,
} from "../handlers/authorizer";
import { Logger } from "../runtime/logger";
import { AUDIENCE, ISSUER, startTestIdp, type TestIdp, tamper } from "./support/jwks";

const METHOD_ARN = "arn:aws:execute-api:us-east-1:123456789012:abcd1234ef/dev/$connect";

function eventWith(query?: Record<string, string>, headers: Record<string, string> = {}): AuthorizerEvent {
  return {
    type: "REQUEST",
    methodArn: METHOD_ARN,
    headers: {
      Host: "abcd1234ef.execute-api.us-east-1.amazonaws.com",
      Connection: "upgrade",
      Upgrade: "websocket",
      ...headers,
    },
    queryStringParameters: query ?? {},
    requestContext: { connectionId: "conn-1=", requestId: "req-1=" },
  };
}

function recordingLogger(): { log: Logger; lines: Record<string, unknown>[] } {
  const lines: Record<string, unknown>[] = [];
  return { log: new Logger({}, "debug", (line) => lines.push(JSON.parse(line) as Record<string, unknown>)), lines };
}

/** What the authorizer came to: its result, or the message of what it threw. */
async function outcome(promise: Promise<AuthorizerResult>): Promise<{ result?: AuthorizerResult; error?: string }> {
  try {
    return { result: await promise };
  } catch (error) {
    return { error: (error as Error).message };
  }
}

describe("authorizer: JWT verification against a loopback key set", function () {
  this.timeout(20_000);
  let idp: TestIdp;
  before(async () => {
    idp = await startTestIdp();
  });
  after(async () => {
    await idp?.close();
  });
  beforeEach(() => {
    idp.mode = "ok";
  });

  const run = async (token: string | undefined, overrides = {}) => {
    const { log, lines } = recordingLogger();
    const verifier = createVerifier(idp.settings(overrides));
    const result = await outcome(authorize(eventWith(token === undefined ? {} : { token }), verifier, log));
    return { ...result, lines };
  };

  it("allows a valid RS256 token: Allow execute-api:Invoke on the methodArn, principal and context from the claims", async () => {
    const token = await idp.token({ sub: "user-42", scope: "chat:write" });
    const { result, error, lines } = await run(token);
    expect(error).to.equal(undefined);
    expect(result!.principalId).to.equal("user-42");
    expect(result!.policyDocument).to.deep.equal({
      Version: "2012-10-17",
      Statement: [{ Action: "execute-api:Invoke", Effect: "Allow", Resource: METHOD_ARN }],
    });
    expect(result!.context).to.include({ userId: "user-42", scope: "chat:write" });
    expect(result!.context.tokenExpiresAt).to.be.a("number");
    for (const value of Object.values(result!.context))
      expect(["string", "number", "boolean"]).to.include(typeof value);
    expect(Buffer.byteLength(JSON.stringify(result))).to.be.below(8 * 1024);
    expect(lines, "one line per decision").to.have.length(1);
    expect(lines[0]).to.include({ message: "authorized", outcome: "allow", principalId: "user-42" });
    expect(JSON.stringify(lines)).not.to.include(token);
  });

  it("allows a valid ES256 token (key chosen by kid)", async () => {
    const { result } = await run(await idp.token({ sub: "ec-user" }, { alg: "ES256" }));
    expect(result?.principalId).to.equal("ec-user");
  });

  const refusals: [string, () => Promise<string | undefined>][] = [
    ["missing", async () => undefined],
    ["empty", async () => ""],
    ["expired", () => idp.token({ exp: Math.floor(Date.now() / 1000) - 60 })],
    ["not yet valid (nbf in the future)", () => idp.token({ nbf: Math.floor(Date.now() / 1000) + 600 })],
    ["for another audience", () => idp.token({ aud: "someone-else" })],
    ["from another issuer", () => idp.token({ iss: "https://evil.test/" })],
    ["unsigned (alg none)", async () => idp.unsigned()],
    ["HS256 keyed with the public key", () => idp.hs256WithPublicKey()],
    ["tampered (payload edited after signing)", async () => tamper(await idp.token())],
    ["signed by a key that is not in the set", () => idp.foreignSigned()],
    ["naming an unknown kid", () => idp.token({}, { kid: "rotated-away" })],
    ["without exp", () => idp.token({}, { expiresIn: null })],
    ["without sub", () => idp.token({ sub: undefined })],
    ["malformed", async () => "not.a.jwt"],
    ["garbage", async () => "%%%"],
    ["absurdly long", async () => "a".repeat(9_000)],
  ];
  for (const [label, make] of refusals) {
    it(`refuses a token that is ${label} with exactly "Unauthorized" (API Gateway: 401)`, async () => {
      const token = await make();
      const { result, error, lines } = await run(token);
      expect(result).to.equal(undefined);
      expect(error).to.equal("Unauthorized");
      // Exactly one line, and the one infra's metric filter counts ({ $.outcome = "unauthorized" }).
      expect(lines, "one line per decision").to.have.length(1);
      const line = lines[0];
      expect(line, JSON.stringify(lines)).to.include({
        level: "info",
        message: "unauthorized",
        outcome: AUTHORIZER_OUTCOMES.unauthorized,
        route: "$connect",
      });
      expect(line!.reason).to.be.a("string").and.not.be.empty;
      if (token) expect(JSON.stringify(lines)).not.to.include(token);
    });
  }

  it("refuses an algorithm outside the configured list (ES256 token, RS256 only)", async () => {
    const { error } = await run(await idp.token({}, { alg: "ES256" }), { algorithms: ["RS256"] });
    expect(error).to.equal("Unauthorized");
  });

  it("tolerates 5 s of clock skew on exp, not more", async () => {
    expect((await run(await idp.token({ exp: Math.floor(Date.now() / 1000) - 2 }))).error).to.equal(undefined);
    expect((await run(await idp.token({ exp: Math.floor(Date.now() / 1000) - 30 }))).error).to.equal("Unauthorized");
  });

  for (const mode of ["down", "garbage"] as const) {
    it(`fails with an error that is not "Unauthorized" when the key set is ${mode} (API Gateway: 500)`, async () => {
      idp.mode = mode;
      const { error, lines } = await run(await idp.token());
      expect(error).to.be.a("string").and.not.equal("Unauthorized");
      // Not "unauthorized": a fault is counted by the authorizer's alarm (Errors minus the rejections).
      expect(lines, "one line per decision").to.have.length(1);
      expect(lines[0]).to.include({ level: "error", message: "authorizer failed", outcome: "fault" });
    });
  }

  it("fails (500, not 401) within its own timeout when the key set never answers", async () => {
    idp.mode = "hang";
    const started = Date.now();
    const { error, lines } = await run(await idp.token());
    expect(error).to.be.a("string").and.not.equal("Unauthorized");
    expect(Date.now() - started).to.be.below(5_000);
    expect(lines.map((l) => l.outcome)).to.deep.equal(["fault"]);
  });

  it("fetches the key set once for many tokens (cached per verifier, i.e. per container)", async () => {
    const verifier = createVerifier(idp.settings());
    const before = idp.requests();
    const { log } = recordingLogger();
    for (let i = 0; i < 10; i++) {
      const result = await authorize(eventWith({ token: await idp.token({ sub: `u${i}` }) }), verifier, log);
      expect(result.principalId).to.equal(`u${i}`);
    }
    expect(idp.requests() - before).to.equal(1);
  });

  it("logs only the outcomes infra's metric filter and the docs know", () => {
    expect(AUTHORIZER_OUTCOMES).to.deep.equal({ allow: "allow", unauthorized: "unauthorized", fault: "fault" });
  });

  it("throws a plain error (500) for an event without a methodArn", async () => {
    const verifier = createVerifier(idp.settings());
    const { log, lines } = recordingLogger();
    const { error } = await outcome(authorize({ ...eventWith({ token: "x" }), methodArn: "" }, verifier, log));
    expect(error).to.be.a("string").and.not.equal("Unauthorized");
    expect(lines).to.have.length(1);
    expect(lines[0]).to.include({ level: "error", outcome: "fault", route: "$connect" });
  });
});

describe("authorizer: where the token is read", () => {
  const settings = { queryParam: "token", header: "Authorization" };

  it("reads the query parameter first, then the header without its Bearer prefix (any case)", () => {
    expect(tokenOf(eventWith({ token: "q" }, { Authorization: "Bearer h" }), settings)).to.equal("q");
    expect(tokenOf(eventWith({}, { authorization: "Bearer h" }), settings)).to.equal("h");
    expect(tokenOf(eventWith({}, { AUTHORIZATION: "bearer   h2 " }), settings)).to.equal("h2");
    expect(tokenOf(eventWith({}, { Authorization: "raw" }), settings)).to.equal("raw");
  });

  it("ignores the header when none is configured, and empty values", () => {
    expect(tokenOf(eventWith({}, { Authorization: "Bearer h" }), { queryParam: "token" })).to.equal(undefined);
    expect(tokenOf(eventWith({ token: " " }, { Authorization: "Bearer " }), settings)).to.equal(undefined);
    expect(
      tokenOf({ type: "REQUEST", methodArn: METHOD_ARN, headers: null, queryStringParameters: null }, settings),
    ).to.equal(undefined);
  });

  it("uses a configured query parameter name", () => {
    expect(tokenOf(eventWith({ access_token: "a", token: "b" }), { queryParam: "access_token" })).to.equal("a");
  });

  it("builds the allow policy for exactly the methodArn it was given", () => {
    const result = allow("arn:aws:execute-api:eu-west-1:1:x/prod/$connect", { sub: "s", exp: 1 });
    expect(result.policyDocument.Statement).to.deep.equal([
      { Action: "execute-api:Invoke", Effect: "Allow", Resource: "arn:aws:execute-api:eu-west-1:1:x/prod/$connect" },
    ]);
    expect(result.context).to.deep.equal({ userId: "s", tokenExpiresAt: 1 });
  });
});

describe("authorizer: environment contract (AUTH_*)", () => {
  const base = {
    [ENV.AUTH_ISSUER]: ISSUER,
    [ENV.AUTH_AUDIENCE]: AUDIENCE,
    [ENV.AUTH_JWKS_URL]: "https://issuer.test/jwks.json",
  };

  it("reads the settings with their defaults, and round-trips through authSettingsEnv", () => {
    const settings = readAuthSettings(base);
    expect(settings).to.deep.equal({
      issuer: ISSUER,
      audience: AUDIENCE,
      jwksUrl: "https://issuer.test/jwks.json",
      algorithms: [...DEFAULT_ALGORITHMS],
      queryParam: "token",
    });
    const full = readAuthSettings({
      ...base,
      [ENV.AUTH_ALGORITHMS]: "ES256, RS256",
      [ENV.AUTH_QUERY_PARAM]: "t",
      [ENV.AUTH_HEADER]: "X-Token",
    });
    expect(readAuthSettings(authSettingsEnv(full))).to.deep.equal(full);
    expect(full.algorithms).to.deep.equal(["ES256", "RS256"]);
  });

  it("defaults to asymmetric algorithms only", () => {
    expect(DEFAULT_ALGORITHMS).to.not.include("none");
    expect(DEFAULT_ALGORITHMS.some((a) => a.startsWith("HS"))).to.equal(false);
  });

  it("refuses missing settings, a bad URL and none/HS* algorithms, naming the variable", () => {
    for (const missing of [ENV.AUTH_ISSUER, ENV.AUTH_AUDIENCE, ENV.AUTH_JWKS_URL]) {
      expect(() => readAuthSettings({ ...base, [missing]: "" })).to.throw(EnvError, missing);
    }
    expect(() => readAuthSettings({ ...base, [ENV.AUTH_JWKS_URL]: "ftp://x/jwks" })).to.throw(
      EnvError,
      ENV.AUTH_JWKS_URL,
    );
    expect(() => readAuthSettings({ ...base, [ENV.AUTH_JWKS_URL]: "not a url" })).to.throw(EnvError, ENV.AUTH_JWKS_URL);
    for (const alg of ["none", "HS256", "RS256,HS512"]) {
      expect(() => readAuthSettings({ ...base, [ENV.AUTH_ALGORITHMS]: alg })).to.throw(EnvError, ENV.AUTH_ALGORITHMS);
    }
    expect(() => readAuthSettings({ ...base, [ENV.AUTH_HEADER]: "Bad Header" })).to.throw(EnvError, ENV.AUTH_HEADER);
    expect(() => parseAlgorithms(["none"], "x")).to.throw(/none and HS\* are never accepted/);
  });
});

describe("authorizer: the exported Lambda handler", function () {
  this.timeout(20_000);
  let idp: TestIdp;
  const saved: Record<string, string | undefined> = {};
  before(async () => {
    idp = await startTestIdp();
    const env = authSettingsEnv(idp.settings());
    for (const [key, value] of Object.entries(env)) {
      saved[key] = process.env[key];
      process.env[key] = value;
    }
  });
  after(async () => {
    for (const [key, value] of Object.entries(saved)) {
      if (value === undefined) delete process.env[key];
      else process.env[key] = value;
    }
    await idp?.close();
  });

  it("reads AUTH_* once, allows a good token and throws Unauthorized for a bad one", async () => {
    const result = await handler(eventWith({ token: await idp.token({ sub: "via-handler" }) }));
    expect(result.principalId).to.equal("via-handler");
    const bad = await outcome(handler(eventWith({ token: idp.unsigned() })));
    expect(bad.error).to.equal("Unauthorized");
    const missing = await outcome(handler(eventWith()));
    expect(missing.error).to.equal("Unauthorized");
  });
});
