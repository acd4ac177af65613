/**
 * Who may connect and how much they may send, in the Pulumi program under mocks: the `$connect` JWT
 * authorizer (none by default on dev; jwt with a query-string or header identity source), the rate-limit and
 * data-size settings reaching every message function, and the config validation of those keys.
 */
import { isBuiltin } from "node:module";
import * as vm from "node:vm";
import { expect } from "chai";
import { DEFAULT_ALGORITHMS } from "../contract/auth-settings";
import { ENV } from "../contract/env";
import { AUTHORIZER, ROUTES } from "../contract/routes";
import { bundleHandler, LAMBDA_RUNTIME } from "../infra/bundle";
import { ConfigError, PROJECT_NAME, parseConfig } from "../infra/config";
import { type ProgramRun, runProgram, type StackSettings } from "./support/program-run";
import { plain, type RecordedResource } from "./support/pulumi-mocks";
import { rawConfig, type Settings } from "./support/raw-config";

const NAME = PROJECT_NAME;
const T = {
  api: "aws:apigatewayv2/api:Api",
  route: "aws:apigatewayv2/route:Route",
  authorizer: "aws:apigatewayv2/authorizer:Authorizer",
  fn: "aws:lambda/function:Function",
  permission: "aws:lambda/permission:Permission",
  rolePolicy: "aws:iam/rolePolicy:RolePolicy",
  role: "aws:iam/role:Role",
  logGroup: "aws:cloudwatch/logGroup:LogGroup",
} as const;

const JWT = {
  auth: "jwt",
  "jwt.issuer": "https://example.auth0.com/",
  "jwt.audience": "chat-api",
  "jwt.jwksUrl": "https://example.auth0.com/.well-known/jwks.json",
};

type Run = ProgramRun;

const run = (settings: StackSettings, stack = "dev"): Promise<Run> => runProgram({ stack, settings });

function named(r: Run, type: string, name: string): RecordedResource {
  const found = r.mocks.ofType(type).find((x) => x.name === name);
  if (!found) throw new Error(`no ${type} named ${name}`);
  return found;
}
const routeOf = (r: Run, routeKey: string) => r.mocks.ofType(T.route).find((x) => x.inputs.routeKey === routeKey)!;
const authorizerFn = (r: Run) => named(r, T.fn, `${NAME}-${AUTHORIZER.name}`);

describe("infra: auth none (the dev stack's default)", function () {
  this.timeout(120_000);
  let r: Run;
  before(async () => {
    r = await run({});
  });

  it("creates no authorizer, no authorizer function and no authorizer permission", () => {
    expect(r.mocks.ofType(T.authorizer)).to.deep.equal([]);
    expect(r.mocks.ofType(T.fn).map((f) => f.name)).to.not.include(`${NAME}-${AUTHORIZER.name}`);
    for (const permission of r.mocks.ofType(T.permission))
      expect(String(permission.inputs.sourceArn)).to.not.include("/authorizers/");
  });

  it("leaves every route, $connect included, with authorization NONE", () => {
    for (const route of r.mocks.ofType(T.route)) {
      expect(route.inputs.authorizationType, String(route.inputs.routeKey)).to.equal("NONE");
      expect(route.inputs.authorizerId).to.equal(undefined);
    }
  });

  it("gives every function the default rate limit and data size", () => {
    for (const def of ROUTES) {
      const env = plain(named(r, T.fn, `${NAME}-${def.name}`).inputs.environment).variables as Record<string, string>;
      expect(env[ENV.RATE_LIMIT_MESSAGES], def.name).to.equal("20");
      expect(env[ENV.RATE_LIMIT_WINDOW_SECONDS], def.name).to.equal("10");
      expect(env[ENV.MAX_DATA_BYTES], def.name).to.equal("32768");
      expect(
        Object.keys(env).filter((k) => k.startsWith("AUTH_")),
        def.name,
      ).to.deep.equal([]);
    }
  });
});

describe("infra: auth jwt (token in the query string)", function () {
  this.timeout(120_000);
  let r: Run;
  before(async () => {
    r = await run({ ...JWT, "rateLimit.messages": "5", "rateLimit.windowSeconds": "60", maxDataBytes: "1024" });
  });

  it("creates one REQUEST authorizer whose only identity source is the query parameter, invoking the authorizer function", () => {
    const authorizers = r.mocks.ofType(T.authorizer);
    expect(authorizers).to.have.length(1);
    const a = authorizers[0]!.inputs as any;
    expect(a.apiId).to.equal(r.apiId);
    expect(a.authorizerType).to.equal("REQUEST");
    expect(a.identitySources).to.deep.equal(["route.request.querystring.token"]);
    expect(a.authorizerUri).to.equal(authorizerFn(r).state.invokeArn);
    // REQUEST authorizers on WebSocket APIs have no result cache (HTTP-API-only) and no JWT configuration.
    expect(a.jwtConfiguration).to.equal(undefined);
    expect(a.authorizerResultTtlInSeconds).to.equal(undefined);
  });

  it("puts it on $connect only (CUSTOM), every other route stays NONE", () => {
    const authorizer = r.mocks.ofType(T.authorizer)[0]!;
    const connect = routeOf(r, "$connect");
    expect(connect.inputs.authorizationType).to.equal("CUSTOM");
    expect(connect.inputs.authorizerId).to.equal(authorizer.id);
    for (const def of ROUTES.filter((d) => d.routeKey !== "$connect")) {
      expect(routeOf(r, def.routeKey).inputs.authorizationType, def.routeKey).to.equal("NONE");
      expect(routeOf(r, def.routeKey).inputs.authorizerId, def.routeKey).to.equal(undefined);
    }
  });

  it("lets API Gateway invoke the authorizer function from this authorizer only", () => {
    const authorizer = r.mocks.ofType(T.authorizer)[0]!;
    const permission = named(r, T.permission, `${NAME}-${AUTHORIZER.name}-invoke`).inputs;
    expect(permission).to.include({ action: "lambda:InvokeFunction", principal: "apigateway.amazonaws.com" });
    expect(permission.function).to.equal(authorizerFn(r).state.name);
    expect(permission.sourceArn).to.equal(`${r.executionArn}/authorizers/${authorizer.id}`);
  });

  it("deploys the authorizer as its own pinned arm64 function with the AUTH_* contract and nothing of the store", () => {
    const fn = authorizerFn(r).inputs as any;
    expect(fn.runtime).to.equal("nodejs24.x").and.equal(LAMBDA_RUNTIME);
    expect(fn.architectures).to.deep.equal(["arm64"]);
    expect(fn.handler).to.equal("index.handler");
    expect(fn.timeout).to.equal(10);
    expect(fn.vpcConfig).to.equal(undefined);
    expect(fn.environment.variables).to.deep.equal({
      [ENV.AUTH_ISSUER]: JWT["jwt.issuer"],
      [ENV.AUTH_AUDIENCE]: JWT["jwt.audience"],
      [ENV.AUTH_JWKS_URL]: JWT["jwt.jwksUrl"],
      [ENV.AUTH_ALGORITHMS]: DEFAULT_ALGORITHMS.join(","),
      [ENV.AUTH_QUERY_PARAM]: "token",
    });
    const logGroup = named(r, T.logGroup, `${NAME}-${AUTHORIZER.name}-logs`);
    expect(fn.loggingConfig).to.include({ logFormat: "JSON", logGroup: logGroup.inputs.name });
    expect(fn.role).to.equal(named(r, T.role, `${NAME}-${AUTHORIZER.name}-role`).state.arn);
  });

  it("gives the authorizer's role its own log group and nothing else", () => {
    const doc = JSON.parse(plain<string>(named(r, T.rolePolicy, `${NAME}-${AUTHORIZER.name}-policy`).inputs.policy));
    const logGroup = named(r, T.logGroup, `${NAME}-${AUTHORIZER.name}-logs`);
    expect(doc.Statement).to.deep.equal([
      {
        Sid: "WriteOwnLogs",
        Effect: "Allow",
        Action: ["logs:CreateLogStream", "logs:PutLogEvents"],
        Resource: [`${logGroup.state.arn}:*`],
      },
    ]);
  });

  it("passes the configured rate limit and data size to every route function", () => {
    for (const def of ROUTES) {
      const env = plain(named(r, T.fn, `${NAME}-${def.name}`).inputs.environment).variables as Record<string, string>;
      expect(
        [env[ENV.RATE_LIMIT_MESSAGES], env[ENV.RATE_LIMIT_WINDOW_SECONDS], env[ENV.MAX_DATA_BYTES]],
        def.name,
      ).to.deep.equal(["5", "60", "1024"]);
    }
  });

  it("bundles the authorizer with jose inside, exporting handler", () => {
    const code = bundleHandler(AUTHORIZER.module);
    const module = { exports: {} as Record<string, unknown> };
    const requireBuiltin = (id: string) => {
      if (!isBuiltin(id)) throw new Error(`bundle requires ${id}`);
      return require(id);
    };
    vm.runInThisContext(`(function (module, exports, require) {${code}\n})`)(module, module.exports, requireBuiltin);
    expect(module.exports.handler).to.be.a("function");
  });
});

describe("infra: auth jwt with a header identity source on a non-dev stack, redis store", function () {
  this.timeout(120_000);
  let r: Run;
  before(async () => {
    r = await run(
      {
        ...JWT,
        store: "redis",
        "jwt.tokenSource": "header",
        "jwt.header": "Authorization",
        "jwt.algorithms": ["ES256"],
      },
      "prod",
    );
  });

  it("requires the header (and only it) before calling the authorizer, which reads the query first anyway", () => {
    expect((r.mocks.ofType(T.authorizer)[0]!.inputs as any).identitySources).to.deep.equal([
      "route.request.header.Authorization",
    ]);
    const env = (authorizerFn(r).inputs as any).environment.variables;
    expect(env).to.include({
      [ENV.AUTH_HEADER]: "Authorization",
      [ENV.AUTH_QUERY_PARAM]: "token",
      [ENV.AUTH_ALGORITHMS]: "ES256",
    });
  });

  it("keeps the authorizer out of the VPC (it needs the identity provider, not Redis)", () => {
    expect((authorizerFn(r).inputs as any).vpcConfig).to.equal(undefined);
  });
});

describe("config: auth, rateLimit and maxDataBytes", () => {
  const problems = (settings: Settings, stack = "dev"): string[] => {
    try {
      parseConfig(rawConfig(settings), stack);
    } catch (error) {
      expect(error).to.be.instanceOf(ConfigError);
      return [...(error as ConfigError).problems];
    }
    return [];
  };

  it("defaults to auth none on dev, 20 messages per 10 s and 32 KB of data", () => {
    const config = parseConfig(rawConfig({}), "dev");
    expect(config.auth).to.deep.equal({ mode: "none" });
    expect(config.limits).to.deep.equal({
      messages: 20,
      windowSeconds: 10,
      maxDataBytes: 32_768,
      userMessages: 40,
      broadcasts: 10,
      connectionsPerUser: 5,
    });
  });

  it("makes every other stack choose auth explicitly, naming the key", () => {
    const found = problems({}, "prod");
    expect(found).to.have.length(1);
    expect(found[0])
      .to.include("Invalid config websocket-chat:auth:")
      .and.include('stack "prod"')
      .and.include("allowed: none, jwt");
    expect(parseConfig(rawConfig({ auth: "none" }), "prod").auth).to.deep.equal({ mode: "none" });
    expect(parseConfig(rawConfig({ ...JWT }), "prod").auth.mode).to.equal("jwt");
  });

  it("parses a full jwt configuration", () => {
    const config = parseConfig(
      rawConfig({
        ...JWT,
        "jwt.queryParam": "access_token",
        "jwt.header": "Authorization",
        "jwt.algorithms": ["RS256", "EdDSA"],
      }),
      "dev",
    );
    expect(config.auth).to.deep.equal({
      mode: "jwt",
      jwt: {
        issuer: JWT["jwt.issuer"],
        audience: JWT["jwt.audience"],
        jwksUrl: JWT["jwt.jwksUrl"],
        algorithms: ["RS256", "EdDSA"],
        queryParam: "access_token",
        header: "Authorization",
      },
      tokenSource: { kind: "query", name: "access_token" },
    });
  });

  it("refuses an unknown auth mode", () => {
    expect(problems({ auth: "oauth" })).to.deep.equal([
      'Invalid config websocket-chat:auth: "oauth" (allowed: none, jwt)',
    ]);
  });

  it("requires issuer, audience and an https key set URL for jwt, naming each key", () => {
    const found = problems({ auth: "jwt" }).join("\n");
    for (const key of ["jwt.issuer", "jwt.audience", "jwt.jwksUrl"]) expect(found).to.include(`websocket-chat:${key}`);
    expect(problems({ ...JWT, "jwt.jwksUrl": "http://example.com/jwks.json" })[0])
      .to.include("websocket-chat:jwt.jwksUrl")
      .and.include("https://");
    expect(problems({ ...JWT, "jwt.jwksUrl": "https://user:pw@example.com/jwks" })[0]).to.include(
      "without credentials",
    );
    expect(problems({ ...JWT, "jwt.jwksUrl": "nope" })[0]).to.include("websocket-chat:jwt.jwksUrl");
  });

  it("refuses none and HS* algorithms, saying why", () => {
    for (const algs of [["none"], ["HS256"], ["RS256", "HS512"]]) {
      const found = problems({ ...JWT, "jwt.algorithms": algs });
      expect(found).to.have.length(1);
      expect(found[0]).to.include("websocket-chat:jwt.algorithms").and.include("never accepted");
    }
    expect(problems({ ...JWT, "jwt.algorithms": "RS256" })[0]).to.include("a YAML list");
  });

  it("requires jwt.header for the header token source, and valid names", () => {
    expect(problems({ ...JWT, "jwt.tokenSource": "header" })[0])
      .to.include("websocket-chat:jwt.header")
      .and.include("tokenSource is header");
    expect(problems({ ...JWT, "jwt.tokenSource": "cookie" })[0]).to.include("websocket-chat:jwt.tokenSource");
    expect(problems({ ...JWT, "jwt.queryParam": "a b" })[0]).to.include("websocket-chat:jwt.queryParam");
    expect(problems({ ...JWT, "jwt.header": "X:Y" })[0]).to.include("websocket-chat:jwt.header");
  });

  it("refuses a half-configured authorizer left at none (a silent, open mistake)", () => {
    const found = problems({ auth: "none", "jwt.issuer": "https://x/", "jwt.jwksUrl": "https://x/jwks" });
    expect(found).to.have.length(1);
    expect(found[0])
      .to.include("websocket-chat:jwt.issuer")
      .and.include("websocket-chat:jwt.jwksUrl")
      .and.include("set auth to jwt");
  });

  it("bounds the rate limit and data size, naming the key (maxDataBytes below API Gateway's 128 KB)", () => {
    expect(parseConfig(rawConfig({ "rateLimit.messages": "0" }), "dev").limits.messages).to.equal(0);
    expect(problems({ "rateLimit.messages": "-1" })[0]).to.include(
      'Invalid config websocket-chat:rateLimit.messages: "-1"',
    );
    expect(problems({ "rateLimit.windowSeconds": "0" })[0]).to.include("websocket-chat:rateLimit.windowSeconds");
    expect(problems({ maxDataBytes: "131072" })[0])
      .to.include('websocket-chat:maxDataBytes: "131072"')
      .and.include("128 KB");
    expect(parseConfig(rawConfig({ maxDataBytes: "131071" }), "dev").limits.maxDataBytes).to.equal(131_071);
  });
});
