/**
 * Broadcast fan-out in the Pulumi program under mocks: the fan-out worker function (no route, the store and
 * `@connections` access it needs), the shard queue it consumes and its dead-letter queue, `sendmessage`'s right to
 * send to exactly that queue, the FANOUT_* environment and memory, and the `fanout.*` config keys.
 */
import type * as pulumi from "@pulumi/pulumi";
import { expect } from "chai";
import { ENV } from "../contract/env";
import { FANOUT_WORKER, ROUTES } from "../contract/routes";
import { bundleHandler } from "../infra/bundle";
import { CONFIG_SCHEMA, ConfigError, DEFAULT_FANOUT_CONFIG, PROJECT_NAME, parseConfig, specOf } from "../infra/config";
import type { PolicyDocument } from "../infra/iam";
import { runProgram, type StackSettings } from "./support/program-run";
import { plain, type RecordedResource, type RecordingMocks } from "./support/pulumi-mocks";
import { rawConfig } from "./support/raw-config";

const NAME = PROJECT_NAME;
const T = {
  fn: "aws:lambda/function:Function",
  permission: "aws:lambda/permission:Permission",
  invokeConfig: "aws:lambda/functionEventInvokeConfig:FunctionEventInvokeConfig",
  rolePolicy: "aws:iam/rolePolicy:RolePolicy",
  logGroup: "aws:cloudwatch/logGroup:LogGroup",
  table: "aws:dynamodb/table:Table",
  queue: "aws:sqs/queue:Queue",
  redriveAllow: "aws:sqs/redriveAllowPolicy:RedriveAllowPolicy",
  mapping: "aws:lambda/eventSourceMapping:EventSourceMapping",
} as const;

async function run(settings: StackSettings): Promise<RecordingMocks> {
  return (await runProgram({ settings })).mocks;
}

function named(r: RecordingMocks, type: string, name: string): RecordedResource {
  const found = r.ofType(type).find((x) => x.name === name);
  if (!found) throw new Error(`no ${type} named ${name}`);
  return found;
}

const fnNamed = (r: RecordingMocks, name: string) => named(r, T.fn, `${NAME}-${name}`);
const envOf = (r: RecordingMocks, name: string): Record<string, string> =>
  plain(fnNamed(r, name).inputs.environment).variables;
const policyOf = (r: RecordingMocks, name: string): PolicyDocument =>
  JSON.parse(plain<string>(named(r, T.rolePolicy, `${NAME}-${name}-policy`).inputs.policy));
const statement = (doc: PolicyDocument, sid: string) => doc.Statement.find((s) => s.Sid === sid);

describe("infra: fan-out worker (dynamodb, defaults)", function () {
  this.timeout(120_000);
  let r: RecordingMocks;
  before(async () => {
    r = await run({ store: "dynamodb" });
  });

  it("deploys the worker from its own bundle, with a timeout past 29 s and the fan-out memory", async () => {
    const worker = fnNamed(r, FANOUT_WORKER.name).inputs as any;
    expect(worker.timeout).to.equal(FANOUT_WORKER.timeoutSeconds).and.be.greaterThan(29);
    expect(worker.memorySize).to.equal(DEFAULT_FANOUT_CONFIG.memorySize).and.equal(1769);
    const assets = await (worker.code as pulumi.asset.AssetArchive).assets;
    const code = await (Object.values(assets)[0] as pulumi.asset.StringAsset).text;
    expect(code).to.equal(bundleHandler(FANOUT_WORKER.module, "dynamodb"));
    expect(named(r, T.logGroup, `${NAME}-${FANOUT_WORKER.name}-logs`).inputs.name).to.equal(
      `/aws/lambda/${NAME}-dev-${FANOUT_WORKER.name}`,
    );
  });

  it("feeds the worker from a shard queue with a dead-letter queue: visibility 6x its timeout, redrive after 5 receives, partial batch failures", () => {
    const workerFn = fnNamed(r, FANOUT_WORKER.name);
    // Nothing invokes it directly: no API Gateway permission, no asynchronous-invoke settings.
    for (const permission of r.ofType(T.permission))
      expect(permission.inputs.function).to.not.equal(workerFn.state.name);
    expect(r.ofType(T.invokeConfig)).to.have.length(0);
    const queue = named(r, T.queue, `${NAME}-${FANOUT_WORKER.name}-queue`);
    const dlq = named(r, T.queue, `${NAME}-${FANOUT_WORKER.name}-dlq`);
    expect(queue.inputs.visibilityTimeoutSeconds).to.equal(6 * FANOUT_WORKER.timeoutSeconds);
    expect(queue.inputs.messageRetentionSeconds).to.equal(1_209_600);
    expect(dlq.inputs.messageRetentionSeconds).to.equal(1_209_600);
    expect(JSON.parse(plain<string>(queue.inputs.redrivePolicy))).to.deep.equal({
      deadLetterTargetArn: dlq.state.arn,
      maxReceiveCount: 5,
    });
    // Only the shard queue may dead-letter into the DLQ, so a redrive goes back to it.
    const allow = r.ofType(T.redriveAllow);
    expect(allow).to.have.length(1);
    expect(allow[0]!.inputs.queueUrl).to.equal(dlq.state.url);
    expect(JSON.parse(plain<string>(allow[0]!.inputs.redriveAllowPolicy))).to.deep.equal({
      redrivePermission: "byQueue",
      sourceQueueArns: [queue.state.arn],
    });
    const mappings = r.ofType(T.mapping);
    expect(mappings).to.have.length(1);
    expect(mappings[0]!.inputs).to.deep.include({
      eventSourceArn: queue.state.arn,
      functionName: workerFn.state.arn,
      batchSize: 1,
      functionResponseTypes: ["ReportBatchItemFailures"],
    });
  });

  it("gives the routes that broadcast sqs:SendMessage on the shard queue only, and its URL", () => {
    const queue = named(r, T.queue, `${NAME}-${FANOUT_WORKER.name}-queue`);
    for (const route of ROUTES) {
      const send = statement(policyOf(r, route.name), "QueueFanOutShards");
      expect(statement(policyOf(r, route.name), "InvokeFanOutWorker"), route.name).to.equal(undefined);
      expect(envOf(r, route.name)[ENV.FANOUT_WORKER_FUNCTION], route.name).to.equal(undefined);
      if (route.invokesFanOutWorker) {
        expect(send).to.deep.equal({
          Sid: "QueueFanOutShards",
          Effect: "Allow",
          Action: ["sqs:SendMessage"],
          Resource: [queue.state.arn],
        });
        expect(envOf(r, route.name)[ENV.FANOUT_SHARD_QUEUE_URL]).to.equal(queue.state.url);
        expect(envOf(r, route.name)[ENV.FANOUT_SHARD_DLQ_URL], route.name).to.equal(undefined);
      } else {
        expect(send, route.name).to.equal(undefined);
        expect(envOf(r, route.name)[ENV.FANOUT_SHARD_QUEUE_URL], route.name).to.equal(undefined);
      }
    }
    // Presence (joined / left) to large rooms goes through the same fan-out as sendmessage.
    expect(ROUTES.filter((route) => route.invokesFanOutWorker).map((route) => route.routeKey)).to.deep.equal([
      "$disconnect",
      "sendmessage",
      "join",
      "leave",
      "sendto",
    ]);
  });

  it("gives the worker what the event source mapping needs on its queue, and SendMessage on the queue and the DLQ only", () => {
    const queue = named(r, T.queue, `${NAME}-${FANOUT_WORKER.name}-queue`);
    const dlq = named(r, T.queue, `${NAME}-${FANOUT_WORKER.name}-dlq`);
    const doc = policyOf(r, FANOUT_WORKER.name);
    expect(statement(doc, "ConsumeFanOutShards")).to.deep.equal({
      Sid: "ConsumeFanOutShards",
      Effect: "Allow",
      Action: ["sqs:ReceiveMessage", "sqs:DeleteMessage", "sqs:GetQueueAttributes", "sqs:ChangeMessageVisibility"],
      Resource: [queue.state.arn],
    });
    expect(statement(doc, "RequeueFanOutShards")).to.deep.equal({
      Sid: "RequeueFanOutShards",
      Effect: "Allow",
      Action: ["sqs:SendMessage"],
      Resource: [queue.state.arn, dlq.state.arn],
    });
    expect(envOf(r, FANOUT_WORKER.name)).to.include({
      [ENV.FANOUT_SHARD_QUEUE_URL]: queue.state.url,
      [ENV.FANOUT_SHARD_DLQ_URL]: dlq.state.url,
    });
  });

  it("gives the worker what a shard needs: delete on the table (stale ids), the room index (their rooms), POST @connections, its own logs", () => {
    const doc = policyOf(r, FANOUT_WORKER.name);
    const table = r.ofType(T.table)[0]!;
    expect(statement(doc, "ConnectionStore")).to.deep.equal({
      Sid: "ConnectionStore",
      Effect: "Allow",
      Action: ["dynamodb:DeleteItem", "dynamodb:BatchWriteItem"],
      Resource: [table.state.arn],
    });
    const post = statement(doc, "PostToConnections")!;
    expect(post.Action).to.deep.equal(["execute-api:ManageConnections"]);
    expect(post.Resource).to.have.length(1);
    expect(post.Resource[0]).to.match(/\/dev\/POST\/@connections\/\*$/);
    // Listing the rooms of members it finds gone, to announce `left`: a Query on the room index only.
    expect(statement(doc, "RoomIndex")).to.deep.equal({
      Sid: "RoomIndex",
      Effect: "Allow",
      Action: ["dynamodb:Query"],
      Resource: [`${table.state.arn}/index/room-members`],
    });
    expect(doc.Statement.map((s) => s.Sid).sort()).to.deep.equal([
      "ConnectionStore",
      "ConsumeFanOutShards",
      "PostToConnections",
      "RequeueFanOutShards",
      "RoomIndex",
      "WriteOwnLogs",
    ]);
  });

  it("sets the FANOUT_* contract on every function and the worker, from the defaults", () => {
    for (const name of [...ROUTES.map((route) => route.name), FANOUT_WORKER.name]) {
      const env = envOf(r, name);
      expect(env[ENV.FANOUT_CONCURRENCY], name).to.equal("256");
      expect(env[ENV.POST_TIMEOUT_MS], name).to.equal("3000");
      expect(env[ENV.FANOUT_INLINE_MAX], name).to.equal("40000");
      expect(env[ENV.FANOUT_SHARD_SIZE], name).to.equal("5000");
      expect(env[ENV.STORE], name).to.equal("dynamodb");
      expect(env[ENV.CALLBACK_URL], name).to.match(/^https:\/\//);
    }
  });
});

describe("infra: fan-out worker (redis) and fanout.* settings", function () {
  this.timeout(120_000);

  it("puts the worker next to Redis (it removes stale ids) with the AUTH secret", async () => {
    const r = await run({ store: "redis" });
    const worker = fnNamed(r, FANOUT_WORKER.name).inputs as any;
    expect(worker.vpcConfig).to.not.equal(undefined);
    expect(envOf(r, FANOUT_WORKER.name)[ENV.REDIS_AUTH_SECRET_ARN]).to.be.a("string");
    expect(statement(policyOf(r, FANOUT_WORKER.name), "ReadRedisAuthToken")).to.not.equal(undefined);
  });

  it("passes every fanout.* key through to the functions", async () => {
    const r = await run({
      "fanout.concurrency": "128",
      "fanout.postTimeoutMs": "1500",
      "fanout.memorySize": "1024",
      "fanout.inlineMax": "0",
      "fanout.shardSize": "2000",
      memorySize: "512",
    });
    for (const name of ["sendmessage", FANOUT_WORKER.name]) {
      expect((fnNamed(r, name).inputs as any).memorySize, name).to.equal(1024);
      expect(envOf(r, name)).to.include({
        [ENV.FANOUT_CONCURRENCY]: "128",
        [ENV.POST_TIMEOUT_MS]: "1500",
        [ENV.FANOUT_INLINE_MAX]: "0",
        [ENV.FANOUT_SHARD_SIZE]: "2000",
      });
    }
    expect((fnNamed(r, "connect").inputs as any).memorySize).to.equal(512);
  });
});

describe("config: fanout.*", () => {
  it("defaults to the runtime's own defaults, and the schema says the same", () => {
    expect(parseConfig({}, "dev").fanOut).to.deep.equal(DEFAULT_FANOUT_CONFIG);
    for (const [key, field] of [
      ["fanout.concurrency", "concurrency"],
      ["fanout.postTimeoutMs", "postTimeoutMs"],
      ["fanout.memorySize", "memorySize"],
      ["fanout.inlineMax", "inlineMax"],
      ["fanout.shardSize", "shardSize"],
    ] as const) {
      expect(specOf(key).default, key).to.equal(DEFAULT_FANOUT_CONFIG[field]);
      expect(specOf(key).type).to.equal("integer");
    }
    expect(Object.keys(CONFIG_SCHEMA.fanout.fields)).to.deep.equal(Object.keys(DEFAULT_FANOUT_CONFIG));
  });

  it("refuses values out of range, naming the key and the range, all at once", () => {
    let problems: readonly string[] = [];
    try {
      parseConfig(
        rawConfig({
          "fanout.concurrency": "0",
          "fanout.postTimeoutMs": "30000",
          "fanout.memorySize": "64",
          "fanout.shardSize": "x",
        }),
        "dev",
      );
    } catch (error) {
      expect(error).to.be.instanceOf(ConfigError);
      problems = (error as ConfigError).problems;
    }
    expect(problems).to.have.length(4);
    expect(problems[0]).to.equal(
      'Invalid config websocket-chat:fanout.concurrency: "0" (allowed: an integer from 1 to 2000)',
    );
    expect(problems[1]).to.include("fanout.postTimeoutMs").and.include("100 to 20000");
    expect(problems[2]).to.include("fanout.memorySize").and.include("128 to 10240");
    expect(problems[3]).to.include("fanout.shardSize");
  });
});
