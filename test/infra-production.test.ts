/**
 * The Pulumi program under mocks with the production-readiness settings: data protection and `protect`, Redis
 * replicas, the Redis AUTH secret, log level and tracing, the API Gateway account role (retained on delete),
 * dashboard and alarms, and the custom domain. Besides the resources' inputs it records what the engine is told
 * about each registration (protect, retainOnDelete, dependencies), which the inputs do not show.
 */
import * as fs from "node:fs";
import * as path from "node:path";
import { expect } from "chai";
import { ENV } from "../contract/env";
import { AUTHORIZER, ROUTES } from "../contract/routes";
import { API_GATEWAY_ASSUME_ROLE_POLICY } from "../infra/api-account";
import { PROJECT_NAME } from "../infra/config";
import {
  API_METRICS,
  type DashboardBody,
  dashboardName,
  FUNCTION_METRICS,
  type MetricLine,
  REDIS_METRICS,
} from "../infra/dashboard";
import { DYNAMODB_ACTIONS, type PolicyDocument, XRAY_ACTIONS } from "../infra/iam";
import { type ProgramRun, type Registration, runProgram, type StackSettings } from "./support/program-run";
import { REGION, type RecordedResource } from "./support/pulumi-mocks";

const NAME = PROJECT_NAME;
const ROOT = path.resolve(__dirname, "..");
const CERT = "arn:aws:acm:us-east-1:123456789012:certificate/0a1b2c3d-4e5f-6789-abcd-ef0123456789";
const TOPIC = "arn:aws:sns:us-east-1:123456789012:chat-alerts";

const T = {
  api: "aws:apigatewayv2/api:Api",
  stage: "aws:apigatewayv2/stage:Stage",
  fn: "aws:lambda/function:Function",
  rolePolicy: "aws:iam/rolePolicy:RolePolicy",
  role: "aws:iam/role:Role",
  attachment: "aws:iam/rolePolicyAttachment:RolePolicyAttachment",
  account: "aws:apigateway/account:Account",
  table: "aws:dynamodb/table:Table",
  replicationGroup: "aws:elasticache/replicationGroup:ReplicationGroup",
  secret: "aws:secretsmanager/secret:Secret",
  secretVersion: "aws:secretsmanager/secretVersion:SecretVersion",
  dashboard: "aws:cloudwatch/dashboard:Dashboard",
  alarm: "aws:cloudwatch/metricAlarm:MetricAlarm",
  topic: "aws:sns/topic:Topic",
  subscription: "aws:sns/topicSubscription:TopicSubscription",
  domainName: "aws:apigatewayv2/domainName:DomainName",
  apiMapping: "aws:apigatewayv2/apiMapping:ApiMapping",
  record: "aws:route53/record:Record",
} as const;

type Run = ProgramRun;

const run = (stack: string, settings: StackSettings, stackYaml?: string): Promise<Run> =>
  runProgram({ stack, settings, ...(stackYaml !== undefined ? { stackYaml } : {}) });

function one(r: Run, type: string, suffix: string): RecordedResource {
  const found = r.mocks.ofType(type).find((res) => res.name === `${NAME}-${suffix}`);
  if (!found) throw new Error(`no ${type} named ${NAME}-${suffix}`);
  return found;
}
const registration = (r: Run, suffix: string): Registration => {
  const found = r.registrations.get(`${NAME}-${suffix}`);
  if (!found) throw new Error(`no registration of ${NAME}-${suffix}`);
  return found;
};
const fnOf = (r: Run, routeName: string) => one(r, T.fn, routeName).inputs as any;
const policyOf = (r: Run, routeName: string): PolicyDocument =>
  JSON.parse(String(one(r, T.rolePolicy, `${routeName}-policy`).inputs.policy));
const dashboardOf = (r: Run): DashboardBody => JSON.parse(String(r.mocks.ofType(T.dashboard)[0]!.inputs.dashboardBody));

/** Every metric line of the dashboard, as `namespace metric dim=value,dim=value`. */
function metricKeys(body: DashboardBody): string[] {
  const keys: string[] = [];
  for (const widget of body.widgets) {
    if (widget.type !== "metric") continue;
    for (const line of widget.properties.metrics) keys.push(metricKey(line));
  }
  return keys;
}
function metricKey(line: MetricLine): string {
  const [namespace, metric, ...rest] = line;
  const dims: string[] = [];
  for (let i = 0; i + 1 < rest.length; i += 2) {
    if (typeof rest[i] !== "string") break;
    dims.push(`${rest[i]}=${rest[i + 1]}`);
  }
  return `${namespace} ${metric} ${dims.join(",")}`;
}

/** The DynamoDB operations the route table's functions call (what ThrottledRequests is published per). */
const dynamoOperations = () =>
  [...new Set(ROUTES.flatMap((route) => route.storeAccess.flatMap((a) => DYNAMODB_ACTIONS[a] ?? [])))]
    .map((action) => action.replace("dynamodb:", ""))
    .sort();

describe("infra: production stack from Pulumi.prod.yaml (Redis with a replica)", function () {
  this.timeout(120_000);
  let r: Run;
  before(async () => {
    r = await run("prod", {}, fs.readFileSync(path.join(ROOT, "Pulumi.prod.yaml"), "utf8"));
  });

  it("runs Redis as a primary and one replica with automatic failover across zones, encrypted", () => {
    const group = r.mocks.ofType(T.replicationGroup)[0]!.inputs as any;
    expect(group).to.include({
      numCacheClusters: 2,
      automaticFailoverEnabled: true,
      multiAzEnabled: true,
      atRestEncryptionEnabled: true,
      transitEncryptionEnabled: true,
      nodeType: "cache.t4g.small",
    });
  });

  it("protects the replication group and the AUTH secret, and leaves the secret's version replaceable", () => {
    expect(registration(r, "redis").protect).to.equal(true);
    expect(registration(r, "redis-auth-secret").protect).to.equal(true);
    expect(registration(r, "redis-auth-version").protect).to.equal(false);
    // Nothing that holds no data is protected.
    const protectedNames = [...r.registrations.values()]
      .filter((x) => x.protect)
      .map((x) => x.name)
      .sort();
    expect(protectedNames).to.deep.equal([`${NAME}-redis`, `${NAME}-redis-auth-secret`]);
  });

  it("keeps a deleted AUTH secret recoverable for 30 days", () => {
    expect(one(r, T.secret, "redis-auth-secret").inputs.recoveryWindowInDays).to.equal(30);
  });

  it("turns on X-Ray active tracing with exactly the two X-Ray actions it needs", () => {
    for (const def of ROUTES) {
      expect(fnOf(r, def.name).tracingConfig, def.name).to.deep.equal({ mode: "Active" });
      const xray = policyOf(r, def.name).Statement.filter((s) => s.Action.some((a) => a.startsWith("xray:")));
      expect(xray, def.name).to.deep.equal([
        { Sid: "XRayTracing", Effect: "Allow", Action: [...XRAY_ACTIONS], Resource: ["*"] },
      ]);
    }
  });

  it("creates an SNS topic with the email subscription and points every alarm (and its recovery) at it", () => {
    const topics = r.mocks.ofType(T.topic);
    expect(topics).to.have.length(1);
    const subscription = r.mocks.ofType(T.subscription);
    expect(subscription).to.have.length(1);
    expect(subscription[0]!.inputs).to.include({
      protocol: "email",
      endpoint: "ops@example.com",
      topic: topics[0]!.state.arn,
    });
    const alarms = r.mocks.ofType(T.alarm);
    expect(alarms.length).to.be.greaterThan(0);
    for (const alarm of alarms) {
      expect(alarm.inputs.alarmActions, alarm.name).to.deep.equal([topics[0]!.state.arn]);
      expect(alarm.inputs.okActions, alarm.name).to.deep.equal([topics[0]!.state.arn]);
    }
  });

  it("alarms on Redis CPU and memory of the busiest node, over every node of the group", () => {
    const members = r.mocks.ofType(T.replicationGroup)[0]!.state.memberClusters as string[];
    expect(members).to.have.length(2);
    for (const [suffix, metric] of [
      ["store-cpu-alarm", "EngineCPUUtilization"],
      ["store-memory-alarm", "DatabaseMemoryUsagePercentage"],
    ] as const) {
      const alarm = one(r, T.alarm, suffix).inputs as any;
      expect(alarm.threshold).to.equal(90);
      expect(alarm.comparisonOperator).to.equal("GreaterThanOrEqualToThreshold");
      expect(alarm.period, "metric-math alarms carry the period in their queries").to.equal(undefined);
      const metrics = alarm.metricQueries.filter((q: any) => q.metric);
      expect(metrics.map((q: any) => q.metric.dimensions.CacheClusterId).sort()).to.deep.equal([...members].sort());
      for (const q of metrics)
        expect(q.metric).to.include({ namespace: "AWS/ElastiCache", metricName: metric, stat: "Maximum" });
      const expression = alarm.metricQueries.filter((q: any) => q.expression);
      expect(expression).to.have.length(1);
      expect(expression[0]).to.include({ expression: "MAX(METRICS())", returnData: true });
    }
    expect(r.mocks.ofType(T.alarm).map((a) => a.name)).not.to.include(`${NAME}-store-throttles-alarm`);
  });

  it("charts Redis engine CPU, memory and connections per node on the dashboard", () => {
    const members = r.mocks.ofType(T.replicationGroup)[0]!.state.memberClusters as string[];
    const keys = metricKeys(dashboardOf(r));
    for (const { metric } of REDIS_METRICS) {
      for (const id of members) expect(keys).to.include(`AWS/ElastiCache ${metric} CacheClusterId=${id}`);
    }
    expect(keys.filter((k) => k.startsWith("AWS/DynamoDB"))).to.deep.equal([]);
  });

  it("watches the $connect authorizer function like the route functions (its alarm: errors that are no rejection)", () => {
    const functionName = one(r, T.fn, AUTHORIZER.name).state.name;
    const alarm = one(r, T.alarm, `${AUTHORIZER.name}-errors-alarm`).inputs as any;
    // test/alarms.test.ts reads the whole alarm; here only that it watches this function.
    const errors = alarm.metricQueries.find((q: any) => q.id === "errors");
    expect(errors.metric).to.include({ namespace: "AWS/Lambda", metricName: "Errors" });
    expect(errors.metric.dimensions).to.deep.equal({ FunctionName: functionName });
    const keys = metricKeys(dashboardOf(r));
    for (const { metric } of FUNCTION_METRICS)
      expect(keys).to.include(`AWS/Lambda ${metric} FunctionName=${functionName}`);
  });

  it("reads the account's API Gateway settings and, in an account with no logging role, creates it", () => {
    const accounts = r.mocks.ofType(T.account);
    expect(accounts.filter((a) => a.read).map((a) => a.id)).to.deep.equal(["APIGatewayAccount"]);
    expect(accounts.filter((a) => !a.read).map((a) => a.name)).to.deep.equal([`${NAME}-apigateway-account`]);
  });

  it("serves the execute-api URL (no domain configured)", () => {
    expect(r.outputs.url).to.equal(`wss://${r.apiId}.execute-api.${REGION}.amazonaws.com/prod`);
  });
});

describe("infra: DynamoDB with data protection, account role, topic, log level, custom domain", function () {
  this.timeout(120_000);
  let r: Run;
  before(async () => {
    r = await run("staging", {
      auth: "none",
      protect: "true",
      logLevel: "ERROR",
      apiGatewayAccountRole: "true",
      "alarms.topicArn": TOPIC,
      "domain.name": "chat.example.com",
      "domain.certificateArn": CERT,
      "domain.zoneId": "Z0123456789ABCDEFGHIJ",
    });
  });

  it("turns on point-in-time recovery and deletion protection (default off the dev stack) and protects the table", () => {
    const table = r.mocks.ofType(T.table)[0]!;
    expect(table.inputs.pointInTimeRecovery).to.deep.equal({ enabled: true });
    expect(table.inputs.deletionProtectionEnabled).to.equal(true);
    expect(registration(r, "connections").protect).to.equal(true);
  });

  it("sets Lambda's application log level, and the platform's to WARN (it has no ERROR)", () => {
    for (const def of ROUTES) {
      expect(fnOf(r, def.name).loggingConfig).to.include({
        logFormat: "JSON",
        applicationLogLevel: "ERROR",
        systemLogLevel: "WARN",
      });
      expect(fnOf(r, def.name).tracingConfig).to.equal(undefined);
      expect(policyOf(r, def.name).Statement.map((s) => s.Sid)).not.to.include("XRayTracing");
    }
  });

  it("creates the API Gateway CloudWatch role and account setting, all retained on delete, before the stage", () => {
    const role = one(r, T.role, "apigateway-logs-role");
    expect(JSON.parse(String(role.inputs.assumeRolePolicy))).to.deep.equal(API_GATEWAY_ASSUME_ROLE_POLICY);
    const attachment = one(r, T.attachment, "apigateway-logs-policy");
    expect(attachment.inputs).to.include({
      role: role.state.name,
      policyArn: "arn:aws:iam::aws:policy/service-role/AmazonAPIGatewayPushToCloudWatchLogs",
    });
    const accounts = r.mocks.ofType(T.account).filter((a) => !a.read);
    expect(accounts).to.have.length(1);
    expect(accounts[0]!.inputs.cloudwatchRoleArn).to.equal(role.state.arn);
    for (const suffix of ["apigateway-logs-role", "apigateway-logs-policy", "apigateway-account"]) {
      expect(registration(r, suffix).retainOnDelete, suffix).to.equal(true);
    }
    expect(registration(r, "apigateway-account").dependsOn).to.include(`${NAME}-apigateway-logs-policy`);
    expect(registration(r, "stage").dependsOn).to.include(`${NAME}-apigateway-account`);
    // Only these are retained: everything else goes with the stack.
    const retained = [...r.registrations.values()]
      .filter((x) => x.retainOnDelete)
      .map((x) => x.name)
      .sort();
    expect(retained).to.deep.equal([
      `${NAME}-apigateway-account`,
      `${NAME}-apigateway-logs-policy`,
      `${NAME}-apigateway-logs-role`,
    ]);
  });

  it("maps the stage at the root of a REGIONAL TLS 1.2 custom domain with an alias record", () => {
    const domain = one(r, T.domainName, "domain");
    expect(domain.inputs.domainName).to.equal("chat.example.com");
    expect(domain.inputs.domainNameConfiguration).to.deep.equal({
      certificateArn: CERT,
      endpointType: "REGIONAL",
      securityPolicy: "TLS_1_2",
    });
    const mapping = one(r, T.apiMapping, "domain-mapping").inputs;
    expect(mapping).to.deep.equal({ apiId: r.apiId, domainName: domain.id, stage: "staging" });
    const record = one(r, T.record, "domain-record").inputs as any;
    expect(record).to.include({ zoneId: "Z0123456789ABCDEFGHIJ", name: "chat.example.com", type: "A" });
    const config = domain.state.domainNameConfiguration as any;
    expect(record.aliases).to.deep.equal([
      { name: config.targetDomainName, zoneId: config.hostedZoneId, evaluateTargetHealth: false },
    ]);
  });

  it("gives clients the custom domain and keeps the functions posting to execute-api", () => {
    expect(r.outputs.url).to.equal("wss://chat.example.com");
    const executeApi = `https://${r.apiId}.execute-api.${REGION}.amazonaws.com/staging`;
    expect(r.outputs.callbackUrl).to.equal(executeApi);
    for (const def of ROUTES)
      expect(fnOf(r, def.name).environment.variables[ENV.CALLBACK_URL], def.name).to.equal(executeApi);
  });

  it("sends every alarm to the configured topic and creates none", () => {
    expect(r.mocks.ofType(T.topic)).to.deep.equal([]);
    expect(r.mocks.ofType(T.subscription)).to.deep.equal([]);
    for (const alarm of r.mocks.ofType(T.alarm)) {
      expect(alarm.inputs.alarmActions, alarm.name).to.deep.equal([TOPIC]);
      expect(alarm.inputs.okActions, alarm.name).to.deep.equal([TOPIC]);
    }
  });

  it("alarms on each function's errors, the API's integration errors and DynamoDB throttling", () => {
    for (const def of ROUTES) {
      const alarm = one(r, T.alarm, `${def.name}-errors-alarm`).inputs as any;
      expect(alarm).to.include({
        namespace: "AWS/Lambda",
        metricName: "Errors",
        statistic: "Sum",
        threshold: 1,
        comparisonOperator: "GreaterThanOrEqualToThreshold",
        treatMissingData: "notBreaching",
        period: 300,
      });
      expect(alarm.dimensions).to.deep.equal({ FunctionName: one(r, T.fn, def.name).state.name });
    }
    const integration = one(r, T.alarm, "integration-errors-alarm").inputs as any;
    expect(integration).to.include({ namespace: "AWS/ApiGateway", metricName: "IntegrationError", threshold: 1 });
    expect(integration.dimensions).to.deep.equal({ ApiId: r.apiId, Stage: "staging" });

    const throttles = one(r, T.alarm, "store-throttles-alarm").inputs as any;
    const tableName = r.mocks.ofType(T.table)[0]!.state.name;
    const metrics = throttles.metricQueries.filter((q: any) => q.metric);
    expect(metrics.map((q: any) => q.metric.dimensions.Operation).sort()).to.deep.equal(dynamoOperations());
    for (const q of metrics) {
      expect(q.metric).to.include({
        namespace: "AWS/DynamoDB",
        metricName: "ThrottledRequests",
        stat: "Sum",
        period: 300,
      });
      expect(q.metric.dimensions.TableName).to.equal(tableName);
      expect(q.returnData).to.equal(false);
    }
    expect(throttles.metricQueries.filter((q: any) => q.expression)).to.deep.equal([
      { id: "throttled", expression: "SUM(METRICS())", label: "ThrottledRequests", returnData: true },
    ]);
    // A function alarm per route and the worker, the integration alarm, the store's, the shard dead letters'.
    expect(r.mocks.ofType(T.alarm)).to.have.length(ROUTES.length + 4);
  });

  it("builds a dashboard with every API, function and DynamoDB metric, with the right dimensions", () => {
    const dashboards = r.mocks.ofType(T.dashboard);
    expect(dashboards).to.have.length(1);
    expect(dashboards[0]!.inputs.dashboardName).to.equal(dashboardName(NAME, "staging")).and.equal(`${NAME}-staging`);
    const body = dashboardOf(r);
    const keys = metricKeys(body);
    for (const metric of [...API_METRICS.traffic, ...API_METRICS.errors, ...API_METRICS.latency]) {
      expect(keys).to.include(`AWS/ApiGateway ${metric} ApiId=${r.apiId},Stage=staging`);
    }
    for (const def of ROUTES) {
      const functionName = one(r, T.fn, def.name).state.name;
      for (const { metric } of FUNCTION_METRICS)
        expect(keys).to.include(`AWS/Lambda ${metric} FunctionName=${functionName}`);
    }
    const tableName = r.mocks.ofType(T.table)[0]!.state.name;
    for (const operation of dynamoOperations()) {
      expect(keys).to.include(`AWS/DynamoDB ThrottledRequests TableName=${tableName},Operation=${operation}`);
    }
    expect(keys).to.include(`AWS/DynamoDB ReadThrottleEvents TableName=${tableName}`);
    expect(keys).to.include(`AWS/DynamoDB WriteThrottleEvents TableName=${tableName}`);

    // Duration is shown as p99; every widget names the stack's region.
    const duration = body.widgets.find(
      (w) => w.type === "metric" && w.properties.metrics.some((m) => m[1] === "Duration"),
    );
    expect(
      (duration as any).properties.metrics.every((m: MetricLine) => (m[m.length - 1] as any).stat === "p99"),
    ).to.equal(true);
    for (const widget of body.widgets) if (widget.type === "metric") expect(widget.properties.region).to.equal(REGION);

    // The alarms and their states, at the top.
    const alarmWidget = body.widgets.find((w) => w.type === "alarm") as any;
    expect([...alarmWidget.properties.alarms].sort()).to.deep.equal(
      r.mocks
        .ofType(T.alarm)
        .map((a) => a.state.arn)
        .sort(),
    );
  });

  it("lays the widgets out on CloudWatch's 24-column grid without overlaps", () => {
    const cells = new Set<string>();
    for (const w of dashboardOf(r).widgets) {
      expect(w.x + w.width).to.be.at.most(24);
      for (let x = w.x; x < w.x + w.width; x++) {
        for (let y = w.y; y < w.y + w.height; y++) {
          expect(cells.has(`${x},${y}`), `overlap at ${x},${y}`).to.equal(false);
          cells.add(`${x},${y}`);
        }
      }
    }
  });
});

describe("infra: dev stack defaults, and the switches off", function () {
  this.timeout(120_000);

  it("dev: no PITR or deletion protection, nothing protected, alarms without actions, a dashboard", async () => {
    const r = await run("dev", { apiGatewayAccountRole: "false" });
    const table = r.mocks.ofType(T.table)[0]!;
    expect(table.inputs.pointInTimeRecovery).to.deep.equal({ enabled: false });
    expect(table.inputs.deletionProtectionEnabled).to.equal(false);
    expect([...r.registrations.values()].filter((x) => x.protect || x.retainOnDelete)).to.deep.equal([]);
    expect(r.mocks.ofType(T.topic)).to.deep.equal([]);
    const alarms = r.mocks.ofType(T.alarm);
    expect(alarms).to.have.length(ROUTES.length + 4);
    for (const alarm of alarms) {
      expect(alarm.inputs.alarmActions, alarm.name).to.deep.equal([]);
      expect(alarm.inputs.okActions, alarm.name).to.deep.equal([]);
    }
    expect(r.mocks.ofType(T.dashboard)).to.have.length(1);
    expect(r.mocks.ofType(T.domainName)).to.deep.equal([]);
  });

  it("dashboard false creates none; a domain without zoneId gets no DNS record but still serves the URL", async () => {
    const r = await run("dev", {
      dashboard: "false",
      "domain.name": "chat.example.com",
      "domain.certificateArn": CERT,
    });
    expect(r.mocks.ofType(T.dashboard)).to.deep.equal([]);
    expect(r.mocks.ofType(T.domainName)).to.have.length(1);
    expect(r.mocks.ofType(T.apiMapping)).to.have.length(1);
    expect(r.mocks.ofType(T.record)).to.deep.equal([]);
    expect(r.outputs.url).to.equal("wss://chat.example.com");
    expect(r.outputs.callbackUrl).to.equal(`https://${r.apiId}.execute-api.${REGION}.amazonaws.com/dev`);
  });

  it("redis on dev: no recovery window on the secret, nothing protected, single-node alarms", async () => {
    const r = await run("dev", { store: "redis" });
    expect(one(r, T.secret, "redis-auth-secret").inputs.recoveryWindowInDays).to.equal(0);
    expect([...r.registrations.values()].filter((x) => x.protect)).to.deep.equal([]);
    const cpu = one(r, T.alarm, "store-cpu-alarm").inputs as any;
    expect(cpu.metricQueries.filter((q: any) => q.metric)).to.have.length(1);
  });
});
