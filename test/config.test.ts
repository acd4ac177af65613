/**
 * Stack configuration: defaults, every rejection and its message, and the schema in infra/config-schema.ts
 * matching Pulumi.yaml's `config:` block so the CLI and the program cannot disagree.
 */
import * as fs from "node:fs";
import * as path from "node:path";
import * as pulumi from "@pulumi/pulumi";
import { expect } from "chai";
import * as yaml from "js-yaml";
import { DEFAULT_CONNECTION_TTL_SECONDS } from "../functions/runtime/env";
import { ConfigError, loadConfig, parseConfig, type ChatConfig, type RawConfig } from "../infra/config";
import { CONFIG_SCHEMA, LOG_RETENTION_DAYS, PROJECT_NAME, type ConfigKeySpec } from "../infra/config-schema";
import { RecordingMocks } from "./support/pulumi-mocks";

const ROOT = path.resolve(__dirname, "..");

function problemsOf(raw: RawConfig, stack = "dev"): readonly string[] {
  try {
    parseConfig(raw, stack);
  } catch (error) {
    expect(error).to.be.instanceOf(ConfigError);
    return (error as ConfigError).problems;
  }
  throw new Error(`expected ${JSON.stringify(raw)} to be rejected`);
}

function rejects(raw: RawConfig, ...fragments: string[]): string {
  const problems = problemsOf(raw);
  expect(problems, JSON.stringify(problems)).to.have.length(1);
  for (const fragment of fragments) expect(problems[0]).to.include(fragment);
  return problems[0]!;
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
      // Production readiness: off on the dev stack (test/config-production.test.ts covers other stacks).
      dataProtection: false,
      protect: false,
      logLevel: "INFO",
      tracing: false,
      apiGatewayAccountRole: false,
      dashboard: true,
      alarms: {},
      domain: undefined,
      // Who may connect and how much (test/infra-auth.test.ts covers these keys).
      auth: { mode: "none" },
      limits: { messages: 20, windowSeconds: 10, maxDataBytes: 32_768 },
      // Broadcast fan-out (test/infra-fanout.test.ts covers these keys).
      fanOut: { concurrency: 256, postTimeoutMs: 3_000, memorySize: 1769, inlineMax: 40_000, shardSize: 5_000 },
    });
    expect(redis).to.deep.equal({
      nodeType: "cache.t4g.micro",
      engineVersion: "7.1",
      authToken: undefined,
      network: undefined,
      replicas: 0,
    });
  });

  it("bounds maxRoomsPerConnection to 1-100, naming the key", () => {
    expect(parseConfig({ maxRoomsPerConnection: "25" }, "dev").maxRoomsPerConnection).to.equal(25);
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
    // The CLI writes each default as config: scalars as strings, arrays as JSON.
    const filled: Record<string, string> = {};
    for (const spec of CONFIG_SCHEMA as readonly ConfigKeySpec[]) {
      filled[spec.key] = Array.isArray(spec.default) ? JSON.stringify(spec.default) : String(spec.default);
    }
    expect(parseConfig(filled, "dev")).to.deep.equal(parseConfig({}, "dev"));
  });

  it("returns a deeply frozen object", () => {
    const config = parseConfig({ store: "redis", "redis.authToken": "a".repeat(32) }, "dev");
    expect(isDeeplyFrozen(config)).to.equal(true);
    expect(() => {
      (config.throttle as { rateLimit: number }).rateLimit = 0;
    }).to.throw(TypeError);
  });

  it("uses the stack name as the stage unless one is set", () => {
    // Stacks other than dev must set auth explicitly.
    expect(parseConfig({ auth: "none" }, "staging").stage).to.equal("staging");
    expect(parseConfig({ auth: "none", stage: "" }, "staging").stage).to.equal("staging");
    expect(parseConfig({ auth: "none", stage: "v1_live-2" }, "staging").stage).to.equal("v1_live-2");
  });

  it("accepts every valid value it documents", () => {
    const config = parseConfig(
      {
        store: "redis",
        stage: "a".repeat(128),
        "throttle.rateLimit": "1",
        "throttle.burstLimit": "1",
        logRetentionDays: "3653",
        memorySize: "10240",
        connectionTtlSeconds: "60",
        "redis.nodeType": "cache.m7g.xlarge",
        "redis.engineVersion": "6.x",
        "redis.vpcId": "vpc-0123456789abcdef0",
        "redis.subnetIds": JSON.stringify(["subnet-01234567", "subnet-89abcdef"]),
      },
      "dev",
    );
    expect(config.store).to.equal("redis");
    expect(config.redis.network).to.deep.equal({
      vpcId: "vpc-0123456789abcdef0",
      subnetIds: ["subnet-01234567", "subnet-89abcdef"],
    });
    for (const days of LOG_RETENTION_DAYS) {
      expect(parseConfig({ logRetentionDays: String(days) }, "dev").logRetentionDays).to.equal(days);
    }
    expect(parseConfig({ memorySize: "128" }, "dev").memorySize).to.equal(128);
  });

  it("keeps a configured Redis token secret", async () => {
    const token = `${"x".repeat(16)}!#$%&'()*+,-.:;<=>?[]^_\`{|}~`;
    const config = parseConfig({ "redis.authToken": token }, "dev");
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
      "allowed: an integer > 0",
    );
    rejects({ "throttle.rateLimit": "-10" }, 'websocket-chat:throttle.rateLimit: "-10"', "integer > 0");
    rejects({ "throttle.rateLimit": "12.5" }, 'websocket-chat:throttle.rateLimit: "12.5"');
    rejects({ "throttle.rateLimit": "fast" }, 'websocket-chat:throttle.rateLimit: "fast"');
    rejects({ "throttle.burstLimit": "0" }, 'Invalid config websocket-chat:throttle.burstLimit: "0"', "integer > 0");
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

  it("refuses a non-positive connection TTL", () => {
    rejects({ connectionTtlSeconds: "0" }, 'Invalid config websocket-chat:connectionTtlSeconds: "0"', "integer > 0");
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
    rejects({ "redis.subnetIds": JSON.stringify(["subnet-01234567"]) }, ...keys, "both or neither");
    rejects({ "redis.vpcId": "vpc-0123456789abcdef0", "redis.subnetIds": "[]" }, "both or neither");
  });

  it("refuses malformed network ids and a subnet list that is not a list", () => {
    rejects(
      { "redis.vpcId": "my-vpc", "redis.subnetIds": JSON.stringify(["subnet-01234567"]) },
      'Invalid config websocket-chat:redis.vpcId: "my-vpc"',
    );
    rejects(
      { "redis.vpcId": "vpc-01234567", "redis.subnetIds": JSON.stringify(["subnet-01234567", "sn-2"]) },
      'Invalid config websocket-chat:redis.subnetIds: ["sn-2"]',
    );
    rejects(
      { "redis.vpcId": "vpc-01234567", "redis.subnetIds": "subnet-01234567" },
      "websocket-chat:redis.subnetIds",
      "a list",
    );
  });

  it("refuses AUTH tokens ElastiCache would refuse, without echoing the token", () => {
    const cases = {
      short: "abc123",
      at: "abcdefgh@ijklmnopq",
      quote: 'abcdefgh"ijklmnopq',
      slash: "abcdefgh/ijklmnopq",
      space: "abcdefgh ijklmnopq",
      long: "a".repeat(129),
      nonAscii: "abcdefghijklmnopé",
    };
    for (const [label, token] of Object.entries(cases)) {
      const message = rejects(
        { "redis.authToken": token },
        "Invalid config websocket-chat:redis.authToken: [secret",
        "16-128",
      );
      expect(message, label).not.to.include(token);
    }
  });

  it("refuses malformed Redis node types and engine versions", () => {
    rejects({ "redis.nodeType": "t4g.micro" }, 'Invalid config websocket-chat:redis.nodeType: "t4g.micro"');
    rejects({ "redis.engineVersion": "latest" }, 'Invalid config websocket-chat:redis.engineVersion: "latest"');
  });

  it("refuses unknown keys in the project namespace (typos)", () => {
    rejects({ "throttle.ratelimit": "10" }, "Unknown config websocket-chat:throttle.ratelimit", "throttle.rateLimit");
    rejects(
      { redis: JSON.stringify({ nodeType: "cache.t4g.small" }) },
      "Unknown config websocket-chat:redis ",
      "without --path",
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
      parseConfig({ store: "postgres", "throttle.rateLimit": "0" }, "dev");
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
      [`${PROJECT_NAME}:throttle.burstLimit`]: "42",
      [`${PROJECT_NAME}:redis.subnetIds`]: JSON.stringify(["subnet-0aaaaaaaaaaaaaaa1"]),
      [`${PROJECT_NAME}:redis.vpcId`]: "vpc-0123456789abcdef0",
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

describe("config: Pulumi.yaml mirrors the schema", () => {
  const project = yaml.load(fs.readFileSync(path.join(ROOT, "Pulumi.yaml"), "utf8")) as Record<string, any>;
  const declared = (project.config ?? {}) as Record<string, Record<string, unknown>>;

  /** What the `config:` block must say for the schema; printed on mismatch so it can be pasted. */
  function expectedBlock(): Record<string, Record<string, unknown>> {
    const block: Record<string, Record<string, unknown>> = {};
    for (const spec of CONFIG_SCHEMA as readonly ConfigKeySpec[]) {
      block[spec.key] = {
        type: spec.type,
        ...(spec.items ? { items: { type: spec.items } } : {}),
        default: spec.default,
        description: spec.description,
      };
    }
    return block;
  }

  it("names the project websocket-chat with the TypeScript nodejs runtime", () => {
    expect(project.name).to.equal(PROJECT_NAME);
    expect(project.description).to.be.a("string").and.not.be.empty;
    expect(project.runtime.name).to.equal("nodejs");
    expect(project.runtime.options.typescript).to.equal(true);
  });

  it("declares exactly the schema's keys, with the same type, items, default and description", () => {
    const expected = expectedBlock();
    const hint = `\nexpected config block:\n${yaml.dump({ config: expected }, { lineWidth: 110 })}`;
    expect(Object.keys(declared), hint).to.deep.equal(Object.keys(expected));
    for (const [key, entry] of Object.entries(expected)) {
      expect(declared[key], `${key}${hint}`).to.deep.equal(entry);
    }
  });

  it("uses only project schema types and gives every key a default", () => {
    for (const [key, entry] of Object.entries(declared)) {
      expect(["string", "integer", "boolean", "array"], key).to.include(entry.type);
      expect(entry, key).to.have.property("default");
      expect(entry.description, key).to.be.a("string").and.not.be.empty;
      // A secret key with a default is rejected by the CLI (the default is written in plain text).
      expect(entry.secret, key).to.equal(undefined);
      if (entry.type === "integer") expect(Number.isInteger(entry.default), key).to.equal(true);
      if (entry.type === "string") expect(entry.default, key).to.be.a("string");
      if (entry.type === "array") expect(entry.items, key).to.deep.equal({ type: "string" });
    }
  });

  it("has a dev stack on us-east-1 with the dynamodb store and only known keys", () => {
    const devFile = fs.readFileSync(path.join(ROOT, "Pulumi.dev.yaml"), "utf8");
    const dev = yaml.load(devFile) as { config: Record<string, unknown> };
    expect(dev.config["aws:region"]).to.equal("us-east-1");
    expect(dev.config[`${PROJECT_NAME}:store`]).to.equal("dynamodb");
    const raw: Record<string, string> = {};
    for (const [key, value] of Object.entries(dev.config)) {
      if (key.startsWith(`${PROJECT_NAME}:`)) raw[key.slice(PROJECT_NAME.length + 1)] = String(value);
    }
    expect(() => parseConfig(raw, "dev")).not.to.throw();
  });
});
