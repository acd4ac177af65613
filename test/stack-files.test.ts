/**
 * Every stack file the project ships, an empty one and one that sets every key, taken through the model of the
 * Pulumi CLI's config merge and validation (test/support/pulumi-cli.ts) with the real `Pulumi.yaml`, then the
 * program under mocks on exactly the config that comes out. The flat-key layout this project used before
 * (test/fixtures/flat-config) is taken the same way and fails in the CLI, as `pulumi preview` did.
 */
import { readdirSync, readFileSync } from "node:fs";
import { join } from "node:path";
import { expect } from "chai";
import { ConfigError, PROJECT_NAME } from "../infra/config";
import { PROJECT_YAML, runProgram } from "./support/program-run";
import { cliConfig, PulumiCliError } from "./support/pulumi-cli";

const ROOT = join(__dirname, "..");
const FLAT = join(__dirname, "fixtures", "flat-config");
const stackFiles = readdirSync(ROOT).filter((file) => /^Pulumi\.[^.]+\.yaml$/.test(file));
const stackName = (file: string) => file.slice("Pulumi.".length, -".yaml".length);

/** A stack that sets every key of the schema (and every field but those exclusive of one another). */
const FULL_STACK = `config:
  aws:region: eu-west-1
  ${PROJECT_NAME}:store: redis
  ${PROJECT_NAME}:stage: live
  ${PROJECT_NAME}:throttle:
    rateLimit: 200
    burstLimit: 400
  ${PROJECT_NAME}:logRetentionDays: 30
  ${PROJECT_NAME}:memorySize: 512
  ${PROJECT_NAME}:maxRoomsPerConnection: 20
  ${PROJECT_NAME}:connectionTtlSeconds: 7800
  ${PROJECT_NAME}:redis:
    engine: valkey
    engineVersion: "8.0"
    nodeType: cache.t4g.small
    replicas: 2
    natGateways: perAz
  ${PROJECT_NAME}:redisAuthToken:
    secure: plain:Abcdefgh-12345678!#
  ${PROJECT_NAME}:dataProtection: true
  ${PROJECT_NAME}:protect: true
  ${PROJECT_NAME}:logLevel: WARN
  ${PROJECT_NAME}:tracing: true
  ${PROJECT_NAME}:apiGatewayAccountRole: false
  ${PROJECT_NAME}:dashboard: false
  ${PROJECT_NAME}:alarms:
    email: ops@example.com
  ${PROJECT_NAME}:domain:
    name: chat.example.com
    certificateArn: arn:aws:acm:eu-west-1:123456789012:certificate/0a1b2c3d-4e5f-6789-abcd-ef0123456789
    zoneId: Z0123456789ABCDEFGHIJ
  ${PROJECT_NAME}:auth: jwt
  ${PROJECT_NAME}:jwt:
    issuer: https://example.auth0.com/
    audience: chat-api
    jwksUrl: https://example.auth0.com/.well-known/jwks.json
    tokenSource: header
    queryParam: access_token
    header: Authorization
    algorithms: [ES256, RS256]
  ${PROJECT_NAME}:rateLimit:
    messages: 50
    windowSeconds: 5
  ${PROJECT_NAME}:maxDataBytes: 65536
  ${PROJECT_NAME}:fanout:
    concurrency: 128
    postTimeoutMs: 2000
    memorySize: 3008
    inlineMax: 20000
    shardSize: 2500
`;

describe("stack files: the Pulumi CLI's merge, then the program", function () {
  this.timeout(120_000);

  it("ships at least the dev and prod stacks", () => {
    expect(stackFiles).to.include.members(["Pulumi.dev.yaml", "Pulumi.prod.yaml"]);
  });

  for (const file of stackFiles) {
    it(`${file}: the CLI accepts it and the program builds from what it hands over`, async () => {
      const stackYaml = readFileSync(join(ROOT, file), "utf8");
      const run = await runProgram({ stack: stackName(file), stackYaml });
      expect(run.outputs.url).to.match(/^wss:\/\//);
      // Every declared key arrives, filled from Pulumi.yaml when the stack leaves it out.
      for (const key of ["store", "throttle", "redis", "jwt", "fanout"])
        expect(run.cli.config, key).to.have.property(`${PROJECT_NAME}:${key}`);
    });
  }

  it("Pulumi.prod.yaml builds the production shape it shows", async () => {
    const stackYaml = readFileSync(join(ROOT, "Pulumi.prod.yaml"), "utf8");
    const run = await runProgram({ stack: "prod", stackYaml });
    expect(run.outputs.store).to.equal("redis");
    const group = run.mocks.ofType("aws:elasticache/replicationGroup:ReplicationGroup")[0]!;
    expect(group.inputs).to.include({ nodeType: "cache.t4g.small", numCacheClusters: 2 });
    expect(run.mocks.ofType("aws:ec2/natGateway:NatGateway")).to.have.length(2);
    expect(run.mocks.ofType("aws:apigatewayv2/authorizer:Authorizer")).to.have.length(1);
    expect(run.mocks.ofType("aws:sns/topicSubscription:TopicSubscription")[0]!.inputs.endpoint).to.equal(
      "ops@example.com",
    );
  });

  it("an empty stack named dev: the CLI fills every default and the program builds", async () => {
    const run = await runProgram({ stack: "dev", stackYaml: "" });
    expect(run.outputs.store).to.equal("dynamodb");
    expect(run.cli.config[`${PROJECT_NAME}:redis`]).to.equal("{}");
    expect(run.cli.config[`${PROJECT_NAME}:store`]).to.equal("dynamodb");
  });

  it("an empty stack with another name: the CLI accepts it, the program asks for auth by name", async () => {
    const cli = cliConfig({ projectYaml: PROJECT_YAML, stackYaml: "", stackName: "staging" });
    expect(cli.config[`${PROJECT_NAME}:auth`]).to.equal("");
    let error: unknown;
    try {
      await runProgram({ stack: "staging", stackYaml: "" });
    } catch (e) {
      error = e;
    }
    expect(error).to.be.instanceOf(ConfigError);
    expect((error as ConfigError).problems).to.have.length(1);
    expect((error as ConfigError).problems[0]).to.include(`Invalid config ${PROJECT_NAME}:auth`);
  });

  it("a stack that sets every key: the CLI accepts it and the program uses every value", async () => {
    const run = await runProgram({ stack: "live", stackYaml: FULL_STACK });
    expect(run.cli.secretKeys).to.deep.equal([`${PROJECT_NAME}:redisAuthToken`]);
    expect(run.outputs.url).to.equal("wss://chat.example.com");
    const group = run.mocks.ofType("aws:elasticache/replicationGroup:ReplicationGroup")[0]!;
    expect(group.inputs).to.include({ engine: "valkey", engineVersion: "8.0", numCacheClusters: 3 });
    const stage = run.mocks.ofType("aws:apigatewayv2/stage:Stage")[0]!;
    expect(stage.inputs.name).to.equal("live");
    expect(stage.inputs.defaultRouteSettings).to.deep.include({ throttlingRateLimit: 200, throttlingBurstLimit: 400 });
    expect(run.mocks.ofType("aws:cloudwatch/dashboard:Dashboard")).to.have.length(0);
    expect(run.mocks.ofType("aws:apigateway/account:Account")).to.have.length(0);
    expect(run.mocks.ofType("aws:ec2/natGateway:NatGateway")).to.have.length(2);
  });

  it("the earlier flat keys fail in the CLI itself, on dev and on prod, as every real preview did", () => {
    const flatProject = readFileSync(join(FLAT, "Pulumi.yaml"), "utf8");
    for (const stack of ["dev", "prod"]) {
      const stackYaml = readFileSync(join(FLAT, `Pulumi.${stack}.yaml`), "utf8");
      expect(() => cliConfig({ projectYaml: flatProject, stackYaml, stackName: stack }), stack).to.throw(
        PulumiCliError,
        `Stack '${stack}' with configuration key 'auth' must be of type 'string'`,
      );
    }
  });

  it("an old flat stack file under the new Pulumi.yaml: one error per old key, naming its new spelling", async () => {
    const stackYaml = readFileSync(join(FLAT, "Pulumi.prod.yaml"), "utf8");
    let error: unknown;
    try {
      await runProgram({ stack: "prod", stackYaml });
    } catch (e) {
      error = e;
    }
    expect(error).to.be.instanceOf(ConfigError);
    const problems = (error as ConfigError).problems;
    const old = ["redis.nodeType", "redis.replicas", "alarms.email", "auth.issuer", "auth.audience", "auth.jwksUrl"];
    // Each old key once; the jwt fields it no longer finds are reported as missing too, since auth is jwt.
    expect(problems.filter((p) => p.includes("is no longer read"))).to.have.length(old.length);
    expect(problems.filter((p) => p.includes("required when auth is jwt"))).to.have.length(3);
    for (const key of old) {
      expect(
        problems.some((p) => p.startsWith(`Config ${PROJECT_NAME}:${key} is no longer read`)),
        key,
      ).to.equal(true);
    }
    expect(problems.join("\n")).to.include("pulumi config set --path jwt.issuer");
  });
});
