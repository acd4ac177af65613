/**
 * Stack config of the production-readiness settings (data protection, Redis replicas, log level, tracing, the
 * API Gateway account role, dashboard, alarms, custom domain): defaults, accepted values, every rejection and its
 * message, and the example production stack file loaded through the Pulumi runtime.
 */
import * as pulumi from "@pulumi/pulumi";
import { expect } from "chai";
import { ConfigError, loadConfig, PROJECT_NAME, parseConfig } from "../infra/config";
import { RecordingMocks } from "./support/pulumi-mocks";
import { rawConfig, type Settings } from "./support/raw-config";

const CERT = "arn:aws:acm:us-east-1:123456789012:certificate/0a1b2c3d-4e5f-6789-abcd-ef0123456789";
/** Stacks other than dev must choose `auth` (another setting); these tests are not about it. */
const AUTH = { auth: "none" };

const parse = (settings: Settings, stack = "dev", region?: string) =>
  parseConfig(rawConfig(settings), stack, { region });

function problemsOf(settings: Settings, stack = "dev", region?: string): readonly string[] {
  try {
    parse(settings, stack, region);
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

describe("config: production settings, defaults", () => {
  it("protects data by default on every stack but dev", () => {
    expect(parse({}, "dev").dataProtection).to.equal(false);
    expect(parse(AUTH, "prod").dataProtection).to.equal(true);
    expect(parse(AUTH, "staging").dataProtection).to.equal(true);
    expect(parse({ ...AUTH, dataProtection: "" }, "prod").dataProtection).to.equal(true);
    expect(parse({ ...AUTH, dataProtection: "auto" }, "prod").dataProtection).to.equal(true);
    expect(parse({ dataProtection: "auto" }, "dev").dataProtection).to.equal(false);
  });

  it("lets any stack choose data protection explicitly", () => {
    expect(parse({ dataProtection: "true" }, "dev").dataProtection).to.equal(true);
    expect(parse({ ...AUTH, dataProtection: "false" }, "prod").dataProtection).to.equal(false);
  });

  it("defaults the rest: no protect, INFO, no tracing, a managed account role, a dashboard, no alarm target, no domain", () => {
    const config = parse(AUTH, "prod");
    expect(config).to.include({
      protect: false,
      logLevel: "INFO",
      tracing: false,
      apiGatewayAccountRole: true,
      dashboard: true,
    });
    expect(config.alarms).to.deep.equal({});
    expect(config.domain).to.equal(undefined);
    expect(config.redis.replicas).to.equal(0);
  });

  it("accepts every documented value", () => {
    const config = parse(
      {
        "redis.replicas": "5",
        protect: "true",
        logLevel: "debug",
        tracing: "true",
        apiGatewayAccountRole: "false",
        dashboard: "false",
        "alarms.topicArn": "arn:aws:sns:eu-west-1:123456789012:chat-alerts_1",
        "domain.name": "chat.example.com",
        "domain.certificateArn": CERT,
        "domain.zoneId": "Z0123456789ABCDEFGHIJ",
      },
      "dev",
    );
    expect(config.redis.replicas).to.equal(5);
    expect(config).to.include({
      protect: true,
      logLevel: "DEBUG",
      tracing: true,
      apiGatewayAccountRole: false,
      dashboard: false,
    });
    expect(config.alarms).to.deep.equal({ topicArn: "arn:aws:sns:eu-west-1:123456789012:chat-alerts_1" });
    expect(config.domain).to.deep.equal({
      name: "chat.example.com",
      certificateArn: CERT,
      zoneId: "Z0123456789ABCDEFGHIJ",
    });
    for (const level of ["DEBUG", "INFO", "WARN", "ERROR"])
      expect(parse({ logLevel: level }, "dev").logLevel).to.equal(level);
    expect(parse({ "alarms.email": "ops+chat@example.co.uk" }, "dev").alarms).to.deep.equal({
      email: "ops+chat@example.co.uk",
    });
    expect(parse({ "domain.name": "ws.chat.example.com", "domain.certificateArn": CERT }, "dev").domain).to.deep.equal({
      name: "ws.chat.example.com",
      certificateArn: CERT,
    });
  });

  it("accepts a certificate in the stack's region", () => {
    const config = parse({ "domain.name": "chat.example.com", "domain.certificateArn": CERT }, "dev", "us-east-1");
    expect(config.domain?.certificateArn).to.equal(CERT);
  });
});

describe("config: production settings, rejections", () => {
  it("refuses redis.replicas outside 0-5", () => {
    rejects({ "redis.replicas": "6" }, 'Invalid config websocket-chat:redis.replicas: "6"', "an integer from 0 to 5");
    rejects({ "redis.replicas": "-1" }, 'websocket-chat:redis.replicas: "-1"');
    rejects({ "redis.replicas": "one" }, 'websocket-chat:redis.replicas: "one"');
  });

  it("refuses booleans the Pulumi CLI would not accept, naming the key", () => {
    for (const key of ["protect", "tracing", "apiGatewayAccountRole", "dashboard"]) {
      for (const bad of ["yes", "True", "1"])
        rejects({ [key]: bad }, `Invalid config websocket-chat:${key}: "${bad}"`, "allowed: true, false");
    }
    rejects({ dataProtection: "yes" }, 'Invalid config websocket-chat:dataProtection: "yes"', "auto, true, false");
  });

  it("refuses an unknown log level", () => {
    rejects(
      { logLevel: "TRACE" },
      'Invalid config websocket-chat:logLevel: "TRACE"',
      "allowed: DEBUG, INFO, WARN, ERROR",
    );
    rejects({ logLevel: "verbose" }, 'websocket-chat:logLevel: "verbose"');
  });

  it("refuses a malformed SNS topic ARN or email address", () => {
    rejects(
      { "alarms.topicArn": "chat-alerts" },
      'Invalid config websocket-chat:alarms.topicArn: "chat-alerts"',
      "SNS topic ARN",
    );
    rejects(
      { "alarms.topicArn": "arn:aws:sns:us-east-1:123456789012:alerts.fifo" },
      "websocket-chat:alarms.topicArn",
      "standard SNS topic",
    );
    rejects({ "alarms.email": "ops" }, 'Invalid config websocket-chat:alarms.email: "ops"', "an email address");
    rejects({ "alarms.email": "ops@localhost" }, 'websocket-chat:alarms.email: "ops@localhost"');
  });

  it("refuses both alarm targets at once", () => {
    rejects(
      { "alarms.topicArn": "arn:aws:sns:us-east-1:123456789012:alerts", "alarms.email": "ops@example.com" },
      "websocket-chat:alarms.topicArn",
      "websocket-chat:alarms.email",
      "set one or neither",
    );
  });

  it("refuses a domain without its certificate and the reverse, naming both keys", () => {
    const keys = ["websocket-chat:domain.name", "websocket-chat:domain.certificateArn", "set both or neither"];
    rejects({ "domain.name": "chat.example.com" }, ...keys, "domain.certificateArn is empty");
    rejects({ "domain.certificateArn": CERT }, ...keys, "domain.name is empty");
    rejects(
      { "domain.zoneId": "Z0123456789ABCDEFGHIJ" },
      'Invalid config websocket-chat:domain.zoneId: "Z0123456789ABCDEFGHIJ"',
      "domain.name is empty",
    );
  });

  it("refuses a malformed domain name, certificate ARN or hosted zone id", () => {
    const domain = { "domain.name": "chat.example.com", "domain.certificateArn": CERT };
    rejects(
      { ...domain, "domain.name": "*.example.com" },
      'Invalid config websocket-chat:domain.name: "*.example.com"',
      "no wildcard",
    );
    rejects({ ...domain, "domain.name": "https://chat.example.com" }, "websocket-chat:domain.name");
    rejects({ ...domain, "domain.name": "localhost" }, 'websocket-chat:domain.name: "localhost"');
    rejects(
      { ...domain, "domain.certificateArn": "arn:aws:iam::123456789012:server-certificate/chat" },
      "Invalid config websocket-chat:domain.certificateArn",
      "an ACM certificate ARN",
    );
    rejects(
      { ...domain, "domain.zoneId": "example.com" },
      'Invalid config websocket-chat:domain.zoneId: "example.com"',
      "hosted zone id",
    );
  });

  it("refuses a certificate from another region than the stack's (REGIONAL endpoints only)", () => {
    const problems = problemsOf(
      { "domain.name": "chat.example.com", "domain.certificateArn": CERT },
      "dev",
      "eu-west-1",
    );
    expect(problems).to.have.length(1);
    expect(problems[0])
      .to.include("Invalid config websocket-chat:domain.certificateArn")
      .and.include("eu-west-1")
      .and.include("REGIONAL");
  });

  it("takes the region for that check from aws:region", async () => {
    await pulumi.runtime.setMocks(new RecordingMocks(), PROJECT_NAME, "dev", false);
    const domain = JSON.stringify({ name: "chat.example.com", certificateArn: CERT });
    pulumi.runtime.setAllConfig({ "aws:region": "eu-west-1", [`${PROJECT_NAME}:domain`]: domain });
    expect(() => loadConfig()).to.throw(ConfigError, /certificate in eu-west-1/);
    pulumi.runtime.setAllConfig({ "aws:region": "us-east-1", [`${PROJECT_NAME}:domain`]: domain });
    expect(loadConfig().domain?.name).to.equal("chat.example.com");
  });
});
