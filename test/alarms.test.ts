/**
 * Every CloudWatch alarm the program registers, read back under Pulumi mocks and held to what it counts: namespace,
 * metric name(s), dimensions, statistic, period, threshold and, for metric-math alarms, the expression, plus the
 * metric filter the `$connect` authorizer's alarm depends on. An alarm that is not listed here fails the suite, so a
 * new alarm has to say what it counts.
 *
 * The two alarms that could page on client traffic are held to the code that makes them quiet:
 * - `IntegrationError` counts every 4XX/5XX a route's function returns; it is alarmed on only because the handlers
 *   answer client mistakes in-band with 200 (test/handlers.test.ts has the full matrix; a sample runs here too).
 * - The authorizer's rejections are Lambda errors (it throws `Error("Unauthorized")`), so its alarm is Errors minus
 *   the rejections its log lines count, and those lines must match the filter and survive the log level.
 */
import * as fs from "node:fs";
import * as path from "node:path";
import * as pulumi from "@pulumi/pulumi";
import { expect } from "chai";
import * as yaml from "js-yaml";
import type { HandlerDeps } from "../chat/deps";
import { DEFAULT_MESSAGE_LIMITS } from "../contract/message-limits";
import { AUTHORIZER, FANOUT_WORKER, ROUTES, TOKEN_SWEEPER } from "../contract/routes";
import { authorize, Unauthorized, type Verifier } from "../handlers/authorizer";
import { connect } from "../handlers/connect";
import { defaultRoute } from "../handlers/default";
import { joinRoom } from "../handlers/join";
import { leaveRoom } from "../handlers/leave";
import { sendMessage } from "../handlers/send-message";
import { sendTo } from "../handlers/send-to";
import { whoami } from "../handlers/whoami";
import { PROJECT_NAME } from "../infra/config";
import { DYNAMODB_ACTIONS } from "../infra/iam";
import { createProgram } from "../infra/program";
import { type ConnectionContext, connectEvent, messageEvent, newConnectionId } from "../local/events";
import type { HandlerResult, WebSocketEvent } from "../runtime/event";
import { Logger } from "../runtime/logger";
import { MemoryConnectionStore } from "../stores/memory";
import { testDeps } from "./support/handler-deps";
import { startManagementServer } from "./support/management-server";
import { type RecordedResource, RecordingMocks, resolve } from "./support/pulumi-mocks";

const NAME = PROJECT_NAME;
const ROOT = path.resolve(__dirname, "..");
const T = {
  alarm: "aws:cloudwatch/metricAlarm:MetricAlarm",
  filter: "aws:cloudwatch/logMetricFilter:LogMetricFilter",
  fn: "aws:lambda/function:Function",
  logGroup: "aws:cloudwatch/logGroup:LogGroup",
  table: "aws:dynamodb/table:Table",
  replicationGroup: "aws:elasticache/replicationGroup:ReplicationGroup",
  queue: "aws:sqs/queue:Queue",
} as const;

/** What the authorizer's rejections are counted as, and from which log lines. */
const REJECTIONS = { metricName: "AuthorizerRejections", pattern: '{ $.outcome = "unauthorized" }' } as const;
/** What the authorizer's own failures are counted as, and from which log lines. */
const FAULTS = { metricName: "AuthorizerFaults", pattern: '{ $.outcome = "fault" }' } as const;
const AUTHORIZER_EXPRESSION = "FILL(errors, 0) - FILL(rejected, 0)";

// waitForRPCs is exported at runtime but marked internal; it is the only way to know every registration ran.
const runtimeInternals = pulumi.runtime as unknown as { waitForRPCs(): Promise<void> };
const mocks = new RecordingMocks();

interface Run {
  readonly stack: string;
  readonly mocks: RecordingMocks;
  /** Resource name → names of the resources it depends on, as the engine was told. */
  readonly dependsOn: ReadonlyMap<string, readonly string[]>;
  readonly apiId: string;
}

interface RegisterRequest {
  getName(): string;
  getDependenciesList(): string[];
}

/** The program under mocks, as test/infra-production.test.ts runs it: the config straight into the runtime. */
async function run(stack: string, config: Record<string, string>): Promise<Run> {
  mocks.reset();
  await pulumi.runtime.setMocks(mocks, PROJECT_NAME, stack, false);
  const dependsOn = new Map<string, readonly string[]>();
  const monitor = pulumi.runtime.getMonitor() as unknown as {
    registerResource(req: RegisterRequest, callback: (...args: unknown[]) => void): Promise<void>;
  };
  const register = monitor.registerResource.bind(monitor);
  monitor.registerResource = (req, callback) => {
    dependsOn.set(
      req.getName(),
      req.getDependenciesList().map((urn) => urn.slice(urn.lastIndexOf("::") + 2)),
    );
    return register(req, callback);
  };
  pulumi.runtime.setAllConfig(
    Object.fromEntries(
      Object.entries(config).map(([key, value]) => [key.includes(":") ? key : `${PROJECT_NAME}:${key}`, value]),
    ),
  );
  const program = createProgram();
  await resolve(program.url);
  await runtimeInternals.waitForRPCs();
  const recorded = new RecordingMocks();
  recorded.resources = [...mocks.resources];
  return { stack, mocks: recorded, dependsOn, apiId: recorded.named(`${NAME}-api`).id };
}

/** A stack file's config as the Pulumi CLI hands it to the program: strings, maps and lists as JSON. */
function stackFileConfig(file: string): Record<string, string> {
  const doc = yaml.load(fs.readFileSync(path.join(ROOT, file), "utf8")) as { config: Record<string, unknown> };
  return Object.fromEntries(
    Object.entries(doc.config).map(([key, value]) => [
      key,
      typeof value === "object" ? JSON.stringify(value) : String(value),
    ]),
  );
}

/** The production stack file (Redis, jwt, alarms by email) on DynamoDB instead: its Redis settings dropped. */
function onDynamoDb(config: Record<string, string>): Record<string, string> {
  const kept = Object.entries(config).filter(([key]) => !key.startsWith(`${PROJECT_NAME}:redis`));
  return { ...Object.fromEntries(kept), [`${PROJECT_NAME}:store`]: "dynamodb" };
}

/** One metric an alarm reads, however the alarm spells it (single metric, or a query of a metric-math alarm). */
interface CountedMetric {
  readonly id?: string;
  readonly namespace: string;
  readonly metricName: string;
  readonly dimensions: Record<string, string>;
  readonly stat: string;
  readonly period: number;
}

/** What an alarm counts and when it fires, normalized from its inputs. */
interface Counted {
  readonly metrics: readonly CountedMetric[];
  /** The metric-math expression the alarm compares (its one query with returnData); none for a single metric. */
  readonly expression?: string;
  readonly comparisonOperator: string;
  readonly threshold: number;
  readonly evaluationPeriods: number;
  /** Breaching periods needed; unset in an expectation means all of evaluationPeriods. */
  readonly datapointsToAlarm?: number;
  readonly treatMissingData: string;
}

function counted(alarm: RecordedResource): Counted {
  const a = alarm.inputs as any;
  const common = {
    comparisonOperator: a.comparisonOperator,
    threshold: a.threshold,
    evaluationPeriods: a.evaluationPeriods,
    // How many of those periods must breach; unset means all of them.
    datapointsToAlarm: a.datapointsToAlarm ?? a.evaluationPeriods,
    treatMissingData: a.treatMissingData,
  };
  if (a.metricQueries === undefined) {
    expect(a.expression, alarm.name).to.equal(undefined);
    return {
      ...common,
      metrics: [
        {
          namespace: a.namespace,
          metricName: a.metricName,
          dimensions: a.dimensions ?? {},
          stat: a.statistic,
          period: a.period,
        },
      ],
    };
  }
  // A metric-math alarm carries no metric of its own: everything is in its queries.
  for (const field of ["namespace", "metricName", "dimensions", "statistic", "period"])
    expect(a[field], `${alarm.name}: ${field} of a metric-math alarm`).to.equal(undefined);
  const queries = a.metricQueries as any[];
  const returned = queries.filter((q) => q.returnData === true);
  expect(returned, `${alarm.name}: exactly one query is the alarm's value`).to.have.length(1);
  const metrics = queries
    .filter((q) => q.metric !== undefined)
    .map((q) => {
      expect(q.returnData, `${alarm.name}: metric query ${q.id} feeds the expression only`).to.equal(false);
      return {
        id: q.id,
        namespace: q.metric.namespace,
        metricName: q.metric.metricName,
        dimensions: q.metric.dimensions ?? {},
        stat: q.metric.stat,
        period: q.metric.period,
      };
    });
  expect(metrics.length + 1, `${alarm.name}: metrics plus one expression`).to.equal(queries.length);
  return { ...common, metrics, expression: returned[0].expression };
}

const FIVE_MINUTES = 300;
const fires = { comparisonOperator: "GreaterThanOrEqualToThreshold", treatMissingData: "notBreaching" } as const;
const fnName = (r: Run, label: string) => String(r.mocks.named(`${NAME}-${label}`).state.name);
const lambdaErrors = (functionName: string, id?: string): CountedMetric => ({
  ...(id ? { id } : {}),
  namespace: "AWS/Lambda",
  metricName: "Errors",
  dimensions: { FunctionName: functionName },
  stat: "Sum",
  period: FIVE_MINUTES,
});

/** Every alarm the program must register for `r`, by name, and what each counts. */
function expectedAlarms(r: Run, store: "dynamodb" | "redis", auth: boolean): Map<string, Counted> {
  const expected = new Map<string, Counted>();
  // The token sweeper exists with auth jwt (its schedule's default rate is above 0), and alarms like the others.
  const labels = [...ROUTES.map((route) => route.name), FANOUT_WORKER.name, ...(auth ? [TOKEN_SWEEPER.name] : [])];
  for (const label of labels) {
    expected.set(`${NAME}-${label}-errors-alarm`, {
      ...fires,
      threshold: 1,
      evaluationPeriods: 1,
      datapointsToAlarm: 1,
      metrics: [lambdaErrors(fnName(r, label))],
    });
  }
  if (auth) {
    // The failures the authorizer logs page at once, from one source (no period straddle possible).
    expected.set(`${NAME}-${AUTHORIZER.name}-faults-alarm`, {
      ...fires,
      threshold: 1,
      evaluationPeriods: 1,
      datapointsToAlarm: 1,
      metrics: [
        {
          namespace: `${PROJECT_NAME}/${r.stack}`,
          metricName: FAULTS.metricName,
          dimensions: {},
          stat: "Sum",
          period: FIVE_MINUTES,
        },
      ],
    });
    // Errors no decision line explains (start-up crashes, timeouts) page only when they persist: a rejection
    // whose error and log line fall into two periods makes a single +1.
    expected.set(`${NAME}-${AUTHORIZER.name}-errors-alarm`, {
      ...fires,
      threshold: 1,
      evaluationPeriods: 3,
      datapointsToAlarm: 3,
      metrics: [
        lambdaErrors(fnName(r, AUTHORIZER.name), "errors"),
        {
          id: "rejected",
          namespace: `${PROJECT_NAME}/${r.stack}`,
          metricName: REJECTIONS.metricName,
          dimensions: {},
          stat: "Sum",
          period: FIVE_MINUTES,
        },
      ],
      expression: AUTHORIZER_EXPRESSION,
    });
  }
  expected.set(`${NAME}-integration-errors-alarm`, {
    ...fires,
    threshold: 1,
    evaluationPeriods: 1,
    metrics: [
      {
        namespace: "AWS/ApiGateway",
        metricName: "IntegrationError",
        dimensions: { ApiId: r.apiId, Stage: r.stack },
        stat: "Sum",
        period: FIVE_MINUTES,
      },
    ],
  });
  if (store === "dynamodb") {
    const tableName = String(r.mocks.ofType(T.table)[0]!.state.name);
    const operations = [
      ...new Set(ROUTES.flatMap((route) => route.storeAccess.flatMap((a) => DYNAMODB_ACTIONS[a] ?? []))),
    ]
      .map((action) => action.replace("dynamodb:", ""))
      .sort();
    expected.set(`${NAME}-store-throttles-alarm`, {
      ...fires,
      threshold: 1,
      evaluationPeriods: 1,
      metrics: operations.map((operation, i) => ({
        id: `m${i}`,
        namespace: "AWS/DynamoDB",
        metricName: "ThrottledRequests",
        dimensions: { TableName: tableName, Operation: operation },
        stat: "Sum",
        period: FIVE_MINUTES,
      })),
      expression: "SUM(METRICS())",
    });
  } else {
    const nodes = [...(r.mocks.ofType(T.replicationGroup)[0]!.state.memberClusters as string[])].sort();
    const busiest = (metricName: string, evaluationPeriods: number): Counted => ({
      ...fires,
      threshold: 90,
      evaluationPeriods,
      metrics: nodes.map((node, i) => ({
        id: `m${i}`,
        namespace: "AWS/ElastiCache",
        metricName,
        dimensions: { CacheClusterId: node },
        stat: "Maximum",
        period: FIVE_MINUTES,
      })),
      expression: "MAX(METRICS())",
    });
    expected.set(`${NAME}-store-cpu-alarm`, busiest("EngineCPUUtilization", 3));
    expected.set(`${NAME}-store-memory-alarm`, busiest("DatabaseMemoryUsagePercentage", 1));
  }
  // One dead-lettered shard pages: somebody did not get a message until it is redriven.
  const dlq = r.mocks.ofType(T.queue).find((q) => q.name === `${NAME}-${FANOUT_WORKER.name}-dlq`)!;
  expected.set(`${NAME}-shard-dead-letters-alarm`, {
    ...fires,
    threshold: 1,
    evaluationPeriods: 1,
    metrics: [
      {
        namespace: "AWS/SQS",
        metricName: "ApproximateNumberOfMessagesVisible",
        dimensions: { QueueName: String(dlq.state.name) },
        stat: "Maximum",
        period: FIVE_MINUTES,
      },
    ],
  });
  return expected;
}

function expectEveryAlarmAsExpected(r: Run, expected: Map<string, Counted>): void {
  const alarms = r.mocks.ofType(T.alarm);
  expect(alarms.map((a) => a.name).sort(), "the alarms registered").to.deep.equal([...expected.keys()].sort());
  for (const alarm of alarms) {
    const want = expected.get(alarm.name)!;
    expect(counted(alarm), alarm.name).to.deep.equal({ datapointsToAlarm: want.evaluationPeriods, ...want });
    // The description says what it counts: every metric it reads, and (math) how they combine.
    const description = String(alarm.inputs.alarmDescription);
    for (const metric of want.metrics) expect(description, alarm.name).to.include(metric.metricName);
    expect(description, alarm.name).to.include(">= ");
  }
}

/** The authorizer's metric filters: on its own log group, counting exactly the rejection and the fault lines. */
function expectRejectionFilter(r: Run): void {
  const filters = r.mocks.ofType(T.filter);
  expect(filters.map((f) => f.name).sort()).to.deep.equal([
    `${NAME}-${AUTHORIZER.name}-faults`,
    `${NAME}-${AUTHORIZER.name}-rejections`,
  ]);
  const faults = filters.find((f) => f.name.endsWith("-faults"))!;
  expect(faults.inputs.pattern).to.equal(FAULTS.pattern);
  expect(faults.inputs.metricTransformation).to.deep.include({
    namespace: `${PROJECT_NAME}/${r.stack}`,
    name: FAULTS.metricName,
    value: "1",
  });
  const filter = filters.find((f) => f.name.endsWith("-rejections"))!;
  const logGroup = r.mocks.named(`${NAME}-${AUTHORIZER.name}-logs`);
  const fn = r.mocks.named(`${NAME}-${AUTHORIZER.name}`).inputs as any;
  expect(fn.loggingConfig.logGroup, "the authorizer logs to the group the filter reads").to.equal(logGroup.inputs.name);
  expect(filter.inputs.logGroupName).to.equal(logGroup.inputs.name);
  expect(filter.inputs.pattern).to.equal(REJECTIONS.pattern);
  expect(filter.inputs.metricTransformation).to.deep.include({
    namespace: `${PROJECT_NAME}/${r.stack}`,
    name: REJECTIONS.metricName,
    value: "1",
  });
  // A filter on a log group that does not exist yet fails to create: it must wait for the group.
  expect(r.dependsOn.get(filter.name)).to.include(logGroup.name);
}

describe("alarms: what each one counts", function () {
  this.timeout(120_000);
  const prod = stackFileConfig("Pulumi.prod.yaml");

  describe("Redis, with the $connect authorizer (Pulumi.prod.yaml)", () => {
    let r: Run;
    before(async () => {
      r = await run("prod", prod);
    });

    it("registers exactly the expected alarms, each counting what it says", () => {
      expectEveryAlarmAsExpected(r, expectedAlarms(r, "redis", true));
    });

    it("counts the authorizer's rejections with a metric filter on its log group", () => {
      expectRejectionFilter(r);
    });
  });

  describe("DynamoDB, with the $connect authorizer (Pulumi.prod.yaml on DynamoDB)", () => {
    let r: Run;
    before(async () => {
      r = await run("prod", onDynamoDb(prod));
    });

    it("registers exactly the expected alarms, each counting what it says", () => {
      expectEveryAlarmAsExpected(r, expectedAlarms(r, "dynamodb", true));
    });

    it("counts the authorizer's rejections with a metric filter on its log group", () => {
      expectRejectionFilter(r);
    });
  });

  it("dev defaults (DynamoDB, no authorizer): the same alarms less the authorizer's, and no metric filter", async () => {
    const r = await run("dev", {});
    expectEveryAlarmAsExpected(r, expectedAlarms(r, "dynamodb", false));
    expect(r.mocks.ofType(T.filter)).to.deep.equal([]);
  });

  it("keeps the authorizer's decision lines at any logLevel: its application level is at most INFO", async () => {
    for (const [level, expected] of [
      ["ERROR", "INFO"],
      ["WARN", "INFO"],
      ["INFO", "INFO"],
      ["DEBUG", "DEBUG"],
    ] as const) {
      const r = await run("prod", { ...prod, [`${PROJECT_NAME}:logLevel`]: level });
      const fn = r.mocks.named(`${NAME}-${AUTHORIZER.name}`).inputs as any;
      expect(fn.loggingConfig.applicationLogLevel, level).to.equal(expected);
      // The route functions keep the configured level.
      expect((r.mocks.named(`${NAME}-${ROUTES[0]!.name}`).inputs as any).loggingConfig.applicationLogLevel).to.equal(
        level,
      );
    }
  });
});

describe("alarms: the log lines and statuses they count", () => {
  /** `{ $.field = "value" }`, the only filter pattern form used here, as a predicate on a parsed JSON log line. */
  function matches(pattern: string, line: Record<string, unknown>): boolean {
    const m = /^\{ \$\.(\w+) = "([^"]*)" \}$/.exec(pattern);
    if (!m) throw new Error(`unsupported pattern ${pattern}`);
    return line[m[1]!] === m[2];
  }
  const event = {
    type: "REQUEST" as const,
    methodArn: "arn:aws:execute-api:us-east-1:123456789012:abc/prod/$connect",
    queryStringParameters: { token: "t" },
    requestContext: { connectionId: "c1", requestId: "r1" },
  };
  const verifier = (verify: Verifier["verify"]): Verifier => ({
    settings: {
      issuer: "https://issuer.test/",
      audience: "chat",
      jwksUrl: "https://issuer.test/jwks.json",
      algorithms: ["RS256"],
      queryParam: "token",
    },
    verify,
  });
  /** The lines one decision logs, at the level Lambda keeps for the authorizer (INFO). */
  async function linesOf(verify: Verifier["verify"]): Promise<Record<string, unknown>[]> {
    const lines: Record<string, unknown>[] = [];
    const log = new Logger({}, "info", (line) => lines.push(JSON.parse(line) as Record<string, unknown>));
    await authorize(event, verifier(verify), log).catch(() => undefined);
    return lines;
  }

  it("the filter counts a rejection's line, and neither an allow's nor a fault's", async () => {
    const rejected = await linesOf(async () => {
      throw new Unauthorized("expired");
    });
    const allowed = await linesOf(async () => ({ sub: "u1", exp: 2_000_000_000 }));
    const fault = await linesOf(async () => {
      throw new Error("key set unreachable");
    });
    for (const lines of [rejected, allowed, fault]) expect(lines, "one line per decision").to.have.length(1);
    expect(matches(REJECTIONS.pattern, rejected[0]!)).to.equal(true);
    expect(matches(REJECTIONS.pattern, allowed[0]!)).to.equal(false);
    expect(matches(REJECTIONS.pattern, fault[0]!)).to.equal(false);
  });

  it("IntegrationError is alarmed on only while client mistakes come back 2xx (sample; test/handlers.test.ts has all)", async () => {
    const server = await startManagementServer("test");
    const store = new MemoryConnectionStore();
    try {
      const deps = testDeps(store, server.endpoint);
      const limited: HandlerDeps = {
        ...deps,
        env: { ...deps.env, limits: { ...DEFAULT_MESSAGE_LIMITS, messages: 1, windowSeconds: 86_400 } },
      };
      const connected = async (): Promise<ConnectionContext> => {
        const c: ConnectionContext = {
          connectionId: newConnectionId(),
          connectedAt: Date.now(),
          stage: "test",
          apiId: "local",
          domainName: "localhost",
          sourceIp: "127.0.0.1",
        };
        await connect(connectEvent(c, { headers: {} }), deps);
        return c;
      };
      const c = await connected();
      const routes: [string, (e: WebSocketEvent, d: HandlerDeps) => Promise<HandlerResult>][] = [
        ["$default", defaultRoute],
        ["sendmessage", sendMessage],
        ["join", joinRoom],
        ["leave", leaveRoom],
        ["sendto", sendTo],
      ];
      for (const [routeKey, handler] of routes)
        expect((await handler(messageEvent(c, routeKey, "{not json"), deps)).statusCode, routeKey).to.equal(200);
      // whoami reads no body: its only client mistake is the rate limit.
      const asker = await connected();
      await whoami(messageEvent(asker, "whoami", '{"action":"whoami"}'), limited);
      expect((await whoami(messageEvent(asker, "whoami", '{"action":"whoami"}'), limited)).statusCode).to.equal(200);
      expect(JSON.parse(server.postsTo(asker.connectionId).at(-1)!)).to.include({ code: "RateLimited" });
    } finally {
      await server.close();
      await store.close();
    }
  });
});
