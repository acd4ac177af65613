/**
 * Stack configuration: defaults, every rejection and its message, the old flat keys, and values in every form
 * the Pulumi CLI hands them over (text at the top level, JSON fields in object keys).
 */
import * as pulumi from "@pulumi/pulumi";
import { expect } from "chai";
import { DEFAULT_CONNECTION_TTL_SECONDS } from "../contract/env";
import {
  type ChatConfig,
  CONFIG_SCHEMA,
  ConfigError,
  LEGACY_KEYS,
  LOG_RETENTION_DAYS,
  loadConfig,
  PROJECT_NAME,
  parseConfig,
} from "../infra/config";
import { RecordingMocks } from "./support/pulumi-mocks";
import { rawConfig, type Settings } from "./support/raw-config";

function problemsOf(settings: Settings, stack = "dev"): readonly string[] {
  try {
    parseConfig(rawConfig(settings), stack);
  } catch (error) {
    expect(error).to.be.instanceOf(ConfigError);
    return (error as ConfigError).problems;
  }
  throw new Error(`expected ${JSON.stringify(settings)} to be rejected`);
}

function rejects(settings: Settings, ...fragments: string[]): string {
  const problems = problemsOf(settings);
  expect(problems, JSON.stringify(problems)).to.have.length(1);
  for (const fragment of fragments) expect(problems[0]).to.include(fragment);
  return problems[0]!;
}

const parse = (settings: Settings, stack = "dev") => parseConfig(rawConfig(settings), stack);

/** Problems of a raw config whose keys are given literally (old flat keys stay flat, as a stack file keeps them). */
function parseProblems(raw: Record<string, string>): readonly string[] {
  try {
    parseConfig(raw, "dev");
  } catch (error) {
    return (error as ConfigError).problems;
  }
  throw new Error(`expected ${JSON.stringify(raw)} to be rejected`);
}

function isDeeplyFrozen(value: unknown): boolean {
  if (value === null || typeof value !== "object" || pulumi.Output.isInstance(value)) return true;
  return Object.isFrozen(value) && Object.values(value).every(isDeeplyFrozen);
}

describe("config: defaults", () => {
  it("fills every key from the schema when the stack sets nothing", () => {
    const config = parseConfig({}, "dev");
    const { redis, ...rest } = config;
    expect(rest).to.deep.equal({
      store: "dynamodb",
      stage: "dev",
      throttle: { rateLimit: 500, burstLimit: 1000 },
      logRetentionDays: 14,
      memorySize: 256,
      connectionTtlSeconds: 7500,
      maxRoomsPerConnection: 10,
      maxMembersPerRoom: 0,
      tokenSweepMinutes: 1,
      // Production readiness: off on the dev stack (test/config-production.test.ts covers other stacks).
      dataProtection: false,
      protect: false,
      logLevel: "INFO",
      tracing: false,
      apiGatewayAccountRole: true,
      dashboard: true,
      alarms: {},
      domain: undefined,
      // Who may connect and how much (test/infra-auth.test.ts covers these keys).
      auth: { mode: "none" },
      limits: {
        messages: 20,
        windowSeconds: 10,
        maxDataBytes: 32_768,
        userMessages: 40,
        broadcasts: 10,
        connectionsPerUser: 5,
      },
      // Broadcast fan-out (test/infra-fanout.test.ts covers these keys).
      fanOut: { concurrency: 256, postTimeoutMs: 3_000, memorySize: 1769, inlineMax: 40_000, shardSize: 5_000 },
      // Room history and the send-reference window.
      history: { maxEntries: 100, maxAgeSeconds: 86_400, sendRefWindowSeconds: 600 },
    });
    expect(redis).to.deep.equal({
      engine: "redis",
      nodeType: "cache.t4g.micro",
      engineVersion: "7.1",
      authToken: undefined,
      network: undefined,
      replicas: 0,
      natGateways: "single",
    });
  });

  it("bounds maxMembersPerRoom to 0-1,000,000 (0: no bound), naming the key", () => {
    expect(parse({}).maxMembersPerRoom).to.equal(0);
    expect(parse({ maxMembersPerRoom: "500" }).maxMembersPerRoom).to.equal(500);
    for (const bad of ["-1", "1000001", "1.5", "many"]) {
      expect(problemsOf({ maxMembersPerRoom: bad })[0])
        .to.include("websocket-chat:maxMembersPerRoom")
        .and.include(bad);
    }
  });

  it("bounds maxRoomsPerConnection to 1-100, naming the key", () => {
    expect(parse({ maxRoomsPerConnection: "25" }).maxRoomsPerConnection).to.equal(25);
    for (const bad of ["0", "101", "x"]) {
      expect(problemsOf({ maxRoomsPerConnection: bad })[0])
        .to.include("websocket-chat:maxRoomsPerConnection")
        .and.include("1 to 100");
    }
  });

  it("defaults the TTL to the runtime's 2 h + 5 min", () => {
    expect(parseConfig({}, "dev").connectionTtlSeconds).to.equal(DEFAULT_CONNECTION_TTL_SECONDS).and.equal(7500);
  });

  it("treats the CLI-filled defaults from Pulumi.yaml exactly like unset keys", () => {
    // The CLI writes each declared default: scalars as text, arrays and object keys as JSON.
    const filled: Record<string, string> = {};
    for (const [key, spec] of Object.entries(CONFIG_SCHEMA)) {
      filled[key] =
        spec.type === "object"
          ? "{}"
          : Array.isArray(spec.default)
            ? JSON.stringify(spec.default)
            : String(spec.default);
    }
    expect(parseConfig(filled, "dev")).to.deep.equal(parseConfig({}, "dev"));
  });

  it("takes every field of an object key as text or as its JSON type, as YAML maps and --path give them", () => {
    const typed = parse({ "redis.replicas": 2, "throttle.rateLimit": 50, "fanout.inlineMax": 0 });
    const text = parse({ "redis.replicas": "2", "throttle.rateLimit": "50", "fanout.inlineMax": "0" });
    expect(typed).to.deep.equal(text);
    expect(typed.redis.replicas).to.equal(2);
    expect(typed.throttle.rateLimit).to.equal(50);
    // `pulumi config set --path redis.engineVersion 7.1` stores a number.
    expect(parse({ store: "redis", "redis.engineVersion": 7.1 }).redis.engineVersion).to.equal("7.1");
    expect(
      parse({
        "jwt.algorithms": ["ES256"],
        auth: "jwt",
        "jwt.issuer": "https://i/",
        "jwt.audience": "a",
        "jwt.jwksUrl": "https://i/k",
      }).auth,
    ).to.deep.include({ mode: "jwt" });
  });

  it("takes booleans exactly as the CLI's boolean type does: true or false, as text or JSON", () => {
    expect(parse({ protect: "true" }).protect).to.equal(true);
    expect(parse({ protect: "false", tracing: "true" }).tracing).to.equal(true);
    for (const bad of ["True", "1", "yes", "t"]) {
      expect(problemsOf({ protect: bad })[0]).to.equal(
        `Invalid config websocket-chat:protect: ${JSON.stringify(bad)} (allowed: true, false)`,
      );
    }
  });

  it("chooses one NAT gateway per zone with replicas, unless told otherwise", () => {
    expect(parse({ store: "redis" }).redis.natGateways).to.equal("single");
    expect(parse({ store: "redis", "redis.replicas": 1 }).redis.natGateways).to.equal("perAz");
    expect(parse({ store: "redis", "redis.replicas": 1, "redis.natGateways": "single" }).redis.natGateways).to.equal(
      "single",
    );
    expect(parse({ store: "redis", "redis.natGateways": "perAz" }).redis.natGateways).to.equal("perAz");
    rejects(
      { "redis.natGateways": "two" },
      'Invalid config websocket-chat:redis.natGateways: "two"',
      "auto, single, perAz",
    );
    rejects(
      {
        "redis.natGateways": "perAz",
        "redis.vpcId": "vpc-0123456789abcdef0",
        "redis.subnetIds": ["subnet-01234567"],
      },
      "websocket-chat:redis.natGateways",
      "only in a VPC it creates",
    );
  });

  it("runs Redis or Valkey", () => {
    const valkey = parse({ store: "redis", "redis.engine": "valkey", "redis.engineVersion": "8.1" });
    expect(valkey.redis).to.deep.include({ engine: "valkey", engineVersion: "8.1" });
    // An empty version is the engine's own default, so choosing valkey alone works.
    expect(parse({ store: "redis", "redis.engine": "valkey" }).redis.engineVersion).to.equal("8.0");
    expect(parse({ store: "redis" }).redis.engineVersion).to.equal("7.1");
    rejects({ "redis.engine": "memcached" }, 'websocket-chat:redis.engine: "memcached"', "redis, valkey");
  });

  it("returns a deeply frozen object", () => {
    const config = parse({ store: "redis", redisAuthToken: "a".repeat(32) });
    expect(isDeeplyFrozen(config)).to.equal(true);
    expect(() => {
      (config.throttle as { rateLimit: number }).rateLimit = 0;
    }).to.throw(TypeError);
  });

  it("uses the stack name as the stage unless one is set", () => {
    // Stacks other than dev must set auth explicitly.
    expect(parse({ auth: "none" }, "staging").stage).to.equal("staging");
    expect(parse({ auth: "none", stage: "" }, "staging").stage).to.equal("staging");
    expect(parse({ auth: "none", stage: "v1_live-2" }, "staging").stage).to.equal("v1_live-2");
  });

  it("accepts every valid value it documents", () => {
    const config = parse({
      store: "redis",
      stage: "a".repeat(128),
      "throttle.rateLimit": "1",
      "throttle.burstLimit": "1",
      logRetentionDays: "3653",
      memorySize: "10240",
      connectionTtlSeconds: "7260",
      "redis.nodeType": "cache.m7g.xlarge",
      "redis.engineVersion": "6.2",
      "redis.vpcId": "vpc-0123456789abcdef0",
      "redis.subnetIds": ["subnet-01234567", "subnet-89abcdef"],
    });
    expect(config.store).to.equal("redis");
    expect(config.redis.network).to.deep.equal({
      vpcId: "vpc-0123456789abcdef0",
      subnetIds: ["subnet-01234567", "subnet-89abcdef"],
    });
    for (const days of LOG_RETENTION_DAYS) {
      expect(parse({ logRetentionDays: String(days) }).logRetentionDays).to.equal(days);
    }
    expect(parse({ memorySize: "128" }).memorySize).to.equal(128);
    for (const version of ["6.2", "6.x", "7.0", "7.1"]) {
      expect(parse({ "redis.engineVersion": version }).redis.engineVersion).to.equal(version);
    }
  });

  it("refuses a Redis token the CLI did not hand over as a secret, and keeps it as set", () => {
    const token = " abcdefgh12345678 ";
    const plainText = () =>
      parseConfig(rawConfig({ redisAuthToken: "abcdefgh12345678" }), "dev", { isSecret: () => false });
    expect(plainText).to.throw(ConfigError, /redisAuthToken: \[secret, 16 characters\].*--secret/);
    // Spaces are not trimmed away: the token must be exactly what was set (and these ones are refused).
    expect(() => parseConfig(rawConfig({ redisAuthToken: token }), "dev", { isSecret: () => true })).to.throw(
      ConfigError,
      /redisAuthToken: \[secret, 18 characters\]/,
    );
  });

  it("keeps a configured Redis token secret", async () => {
    // Every character ElastiCache permits.
    const token = `${"x".repeat(16)}!&#$^<>-AZaz09`;
    const config = parse({ redisAuthToken: token });
    const output = config.redis.authToken!;
    expect(await pulumi.isSecret(output)).to.equal(true);
    expect(await new Promise((resolve) => output.apply(resolve))).to.equal(token);
  });
});

describe("config: rejections", () => {
  it("refuses an unknown store, naming key, value and allowed values", () => {
    const message = rejects({ store: "postgres" });
    expect(message).to.equal('Invalid config websocket-chat:store: "postgres" (allowed: dynamodb, redis)');
  });

  it("refuses the memory store as local-only", () => {
    rejects({ store: "memory" }, 'websocket-chat:store: "memory"', "allowed: dynamodb, redis", "local runs only");
  });

  it("refuses zero, negative, fractional and non-numeric throttling", () => {
    rejects(
      { "throttle.rateLimit": "0" },
      'Invalid config websocket-chat:throttle.rateLimit: "0"',
      "allowed: an integer from 1 to 1000000",
    );
    rejects({ "throttle.rateLimit": "-10" }, 'websocket-chat:throttle.rateLimit: "-10"', "from 1");
    rejects({ "throttle.rateLimit": 0 }, "Invalid config websocket-chat:throttle.rateLimit: 0", "from 1");
    rejects({ "throttle.rateLimit": "12.5" }, 'websocket-chat:throttle.rateLimit: "12.5"');
    rejects({ "throttle.rateLimit": "fast" }, 'websocket-chat:throttle.rateLimit: "fast"');
    rejects({ "throttle.burstLimit": "0" }, 'Invalid config websocket-chat:throttle.burstLimit: "0"', "from 1");
    rejects({ "throttle.burstLimit": "-1" }, 'websocket-chat:throttle.burstLimit: "-1"');
  });

  it("refuses a log retention CloudWatch does not accept", () => {
    rejects(
      { logRetentionDays: "13" },
      'Invalid config websocket-chat:logRetentionDays: "13"',
      `allowed: ${LOG_RETENTION_DAYS.join(", ")}`,
    );
    rejects({ logRetentionDays: "0" }, 'websocket-chat:logRetentionDays: "0"');
    rejects({ logRetentionDays: "forever" }, 'websocket-chat:logRetentionDays: "forever"');
  });

  it("refuses memory outside Lambda's range", () => {
    rejects({ memorySize: "64" }, 'Invalid config websocket-chat:memorySize: "64"', "128 to 10240");
    rejects({ memorySize: "10241" }, 'websocket-chat:memorySize: "10241"');
    rejects({ memorySize: "256.5" }, 'websocket-chat:memorySize: "256.5"');
  });

  it("refuses a connection TTL that API Gateway's 2 h connections would outlive", () => {
    rejects(
      { connectionTtlSeconds: "7200" },
      'Invalid config websocket-chat:connectionTtlSeconds: "7200"',
      "an integer from 7260 to 604800",
    );
    rejects({ connectionTtlSeconds: "0" }, 'websocket-chat:connectionTtlSeconds: "0"');
    rejects({ connectionTtlSeconds: "-7500" }, 'websocket-chat:connectionTtlSeconds: "-7500"');
  });

  it("refuses stage names API Gateway does not accept, including a defaulted stack name", () => {
    rejects({ stage: "my stage" }, 'Invalid config websocket-chat:stage: "my stage"', "A-Z a-z 0-9 _ -");
    rejects({ stage: "v1.0" }, 'websocket-chat:stage: "v1.0"');
    rejects({ stage: "a".repeat(129) }, "websocket-chat:stage:", "1-128");
    expect(problemsOf({ auth: "none" }, "team.dev")).to.deep.equal([
      'Invalid config websocket-chat:stage: "team.dev" (the stack name) (allowed: 1-128 characters of A-Z a-z 0-9 _ -)',
    ]);
  });

  it("refuses redis.vpcId without redis.subnetIds and the reverse, naming both keys", () => {
    const keys = ["websocket-chat:redis.vpcId", "websocket-chat:redis.subnetIds"];
    rejects({ "redis.vpcId": "vpc-0123456789abcdef0" }, ...keys, "both or neither");
    rejects({ "redis.subnetIds": ["subnet-01234567"] }, ...keys, "both or neither");
    rejects({ "redis.vpcId": "vpc-0123456789abcdef0", "redis.subnetIds": [] }, "both or neither");
  });

  it("refuses malformed network ids and a subnet list that is not a list", () => {
    rejects(
      { "redis.vpcId": "my-vpc", "redis.subnetIds": ["subnet-01234567"] },
      'Invalid config websocket-chat:redis.vpcId: "my-vpc"',
    );
    rejects(
      { "redis.vpcId": "vpc-01234567", "redis.subnetIds": ["subnet-01234567", "sn-2"] },
      'Invalid config websocket-chat:redis.subnetIds: ["sn-2"]',
    );
    rejects(
      { "redis.vpcId": "vpc-01234567", "redis.subnetIds": "subnet-01234567" },
      "websocket-chat:redis.subnetIds",
      "a list",
    );
  });

  it("refuses AUTH tokens ElastiCache would refuse, without echoing the token", () => {
    // ElastiCache: "the only permitted printable special characters are !, &, #, $, ^, <, >, and -".
    const cases = {
      short: "abc123",
      at: "abcdefgh@ijklmnopq",
      quote: 'abcdefgh"ijklmnopq',
      slash: "abcdefgh/ijklmnopq",
      space: "abcdefgh ijklmnopq",
      percent: "abcdefgh%ijklmnopq",
      plus: "abcdefgh+ijklmnopq",
      underscore: "abcdefgh_ijklmnopq",
      equals: "abcdefghijklmnopq=",
      long: "a".repeat(129),
      nonAscii: "abcdefghijklmnopé",
    };
    for (const [label, token] of Object.entries(cases)) {
      const message = rejects(
        { redisAuthToken: token },
        "Invalid config websocket-chat:redisAuthToken: [secret",
        "16-128",
      );
      expect(message, label).not.to.include(token);
    }
  });

  it("refuses malformed Redis node types and engine versions the store cannot run on", () => {
    rejects({ "redis.nodeType": "t4g.micro" }, 'Invalid config websocket-chat:redis.nodeType: "t4g.micro"');
    rejects({ "redis.engineVersion": "latest" }, 'Invalid config websocket-chat:redis.engineVersion: "latest"');
    for (const old of ["6.0", "5.0.6", "5", "4.0.10"]) {
      rejects({ "redis.engineVersion": old }, "websocket-chat:redis.engineVersion", "6.2 or later", "ZRANGE");
    }
    // From Redis 7 on ElastiCache takes major.minor only.
    for (const bare of ["7", "7.x", "8"])
      rejects({ "redis.engineVersion": bare }, "websocket-chat:redis.engineVersion");
    rejects(
      { "redis.engine": "valkey", "redis.engineVersion": "7.1" },
      "websocket-chat:redis.engineVersion",
      "valkey version 7.2 or later",
    );
  });

  it("refuses unknown keys and unknown fields of an object key (typos)", () => {
    rejects({ strore: "redis" }, "Unknown config websocket-chat:strore", "known keys: store, stage");
    rejects(
      { "throttle.ratelimit": "10" },
      "Unknown config websocket-chat:throttle.ratelimit",
      "fields of throttle: rateLimit, burstLimit",
    );
  });

  it("refuses an object key that is not a map", () => {
    rejects(
      { redis: "cache.t4g.small" },
      'Invalid config websocket-chat:redis: "cache.t4g.small"',
      "a map of engine, engineVersion",
      "pulumi config set --path redis.engine",
    );
  });

  it("names the new spelling of every old flat key, once each", () => {
    for (const [old, replacement] of Object.entries(LEGACY_KEYS)) {
      const problems = parseProblems({ [old]: "x" });
      expect(problems, old).to.have.length(1);
      expect(problems[0], old).to.include(`Config websocket-chat:${old} is no longer read`);
      expect(problems[0], old).to.include(replacement);
    }
    const flat = { "redis.replicas": "1", "auth.issuer": "https://i/" };
    const problems = parseProblems(flat);
    expect(problems).to.deep.equal([
      "Config websocket-chat:redis.replicas is no longer read: it is now field replicas of the object key " +
        "websocket-chat:redis: `pulumi config set --path redis.replicas <value>`, or in the stack file " +
        "`websocket-chat:redis: { replicas: <value> }`",
      "Config websocket-chat:auth.issuer is no longer read: it is now field issuer of the object key " +
        "websocket-chat:jwt: `pulumi config set --path jwt.issuer <value>`, or in the stack file " +
        "`websocket-chat:jwt: { issuer: <value> }`",
    ]);
    expect(parseProblems({ "redis.authToken": "secret-token-value-1234" })[0]).to.equal(
      "Config websocket-chat:redis.authToken is no longer read: it is now the key websocket-chat:redisAuthToken: " +
        "`pulumi config set --secret redisAuthToken <value>`",
    );
  });

  it("explains an auth key that `--path auth.issuer` turned into a map", () => {
    rejects(
      { "auth.issuer": "https://i/" },
      "Invalid config websocket-chat:auth:",
      "fields of the object key jwt",
      "pulumi config set --path jwt.issuer",
    );
  });

  it("reports every problem at once", () => {
    const problems = problemsOf({
      store: "postgres",
      "throttle.rateLimit": "0",
      logRetentionDays: "13",
      "redis.vpcId": "vpc-0123456789abcdef0",
    });
    expect(problems).to.have.length(4);
    expect(problems.join("\n")).to.include("websocket-chat:store").and.include("websocket-chat:throttle.rateLimit");
    let message = "";
    try {
      parse({ store: "postgres", "throttle.rateLimit": "0" });
    } catch (error) {
      message = (error as Error).message;
    }
    expect(message.split("\n")).to.have.length(2);
  });
});

describe("config: loadConfig reads the Pulumi runtime", () => {
  before(async () => {
    await pulumi.runtime.setMocks(new RecordingMocks(), PROJECT_NAME, "qa", false);
  });

  it("reads only this project's keys and the stack name", () => {
    pulumi.runtime.setAllConfig({
      "aws:region": "eu-west-1",
      [`${PROJECT_NAME}:store`]: "redis",
      [`${PROJECT_NAME}:auth`]: "none",
      [`${PROJECT_NAME}:throttle`]: JSON.stringify({ burstLimit: 42 }),
      [`${PROJECT_NAME}:redis`]: JSON.stringify({
        subnetIds: ["subnet-0aaaaaaaaaaaaaaa1"],
        vpcId: "vpc-0123456789abcdef0",
      }),
    });
    const config: ChatConfig = loadConfig();
    expect(config.store).to.equal("redis");
    expect(config.stage).to.equal("qa");
    expect(config.throttle).to.deep.equal({ rateLimit: 500, burstLimit: 42 });
    expect(config.redis.network?.subnetIds).to.deep.equal(["subnet-0aaaaaaaaaaaaaaa1"]);
  });

  it("throws a ConfigError for an invalid runtime value", () => {
    pulumi.runtime.setAllConfig({ [`${PROJECT_NAME}:store`]: "memory" });
    expect(() => loadConfig()).to.throw(ConfigError, /websocket-chat:store: "memory".*local runs only/);
  });
});
