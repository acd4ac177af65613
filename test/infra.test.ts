/**
 * The Pulumi program under mocks, once per store and network shape: every resource the issue asks for, their
 * key properties, the parsed IAM documents and the stack outputs. Config validation itself is in config.test.ts.
 */
import { isBuiltin } from "node:module";
import * as vm from "node:vm";
import * as pulumi from "@pulumi/pulumi";
import { expect } from "chai";
import { ENV } from "../contract/env";
import { FANOUT_WORKER, ROUTE_SELECTION_EXPRESSION, ROUTES, type RouteDefinition } from "../contract/routes";
import { BUNDLE_FILE, bundleHandler, LAMBDA_HANDLER, LAMBDA_RUNTIME } from "../infra/bundle";
import { ACCESS_LOG_FIELDS, CHAT_API_TYPE } from "../infra/chat-api";
import { CHAT_ROUTE_TYPE } from "../infra/chat-route";
import { ConfigError, PROJECT_NAME, parseConfig } from "../infra/config";
import { FANOUT_WORKER_TYPE } from "../infra/fanout-worker";
import {
  DYNAMODB_ACTIONS,
  functionPolicy,
  type PolicyDocument,
  VPC_NETWORK_INTERFACE_ACTIONS,
  XRAY_ACTIONS,
} from "../infra/iam";
import { createProgram } from "../infra/program";
import {
  HASH_KEY,
  localCreateTableInput,
  MEMBER_ATTRIBUTE,
  ROOM_ATTRIBUTE,
  ROOM_INDEX,
  TTL_ATTRIBUTE,
} from "../stores/dynamodb-table";
import { type ProgramRun, runProgram, type StackSettings } from "./support/program-run";
import { containsSecret, plain, REGION, type RecordedResource, RecordingMocks, ZONES } from "./support/pulumi-mocks";
import { rawConfig } from "./support/raw-config";

const STACK = "dev";
const NAME = PROJECT_NAME;

const T = {
  api: "aws:apigatewayv2/api:Api",
  route: "aws:apigatewayv2/route:Route",
  integration: "aws:apigatewayv2/integration:Integration",
  stage: "aws:apigatewayv2/stage:Stage",
  fn: "aws:lambda/function:Function",
  permission: "aws:lambda/permission:Permission",
  logGroup: "aws:cloudwatch/logGroup:LogGroup",
  role: "aws:iam/role:Role",
  rolePolicy: "aws:iam/rolePolicy:RolePolicy",
  attachment: "aws:iam/rolePolicyAttachment:RolePolicyAttachment",
  table: "aws:dynamodb/table:Table",
  replicationGroup: "aws:elasticache/replicationGroup:ReplicationGroup",
  subnetGroup: "aws:elasticache/subnetGroup:SubnetGroup",
  password: "random:index/randomPassword:RandomPassword",
  vpc: "aws:ec2/vpc:Vpc",
  subnet: "aws:ec2/subnet:Subnet",
  igw: "aws:ec2/internetGateway:InternetGateway",
  eip: "aws:ec2/eip:Eip",
  nat: "aws:ec2/natGateway:NatGateway",
  routeTable: "aws:ec2/routeTable:RouteTable",
  routeTableAssociation: "aws:ec2/routeTableAssociation:RouteTableAssociation",
  securityGroup: "aws:ec2/securityGroup:SecurityGroup",
  ingress: "aws:vpc/securityGroupIngressRule:SecurityGroupIngressRule",
  egress: "aws:vpc/securityGroupEgressRule:SecurityGroupEgressRule",
  vpcEndpoint: "aws:ec2/vpcEndpoint:VpcEndpoint",
  secret: "aws:secretsmanager/secret:Secret",
  secretVersion: "aws:secretsmanager/secretVersion:SecretVersion",
} as const;

type Run = ProgramRun;

const mocks = new RecordingMocks();

/** Fresh mocks per run: other test files install their own, and each run's URNs should stand alone. */
async function useMocks(): Promise<void> {
  mocks.reset();
  await pulumi.runtime.setMocks(mocks, PROJECT_NAME, STACK, false);
}

/** The program on the config the CLI makes of these settings (`pulumi config set --path` names). */
const run = (settings: StackSettings, secrets?: Record<string, string>): Promise<Run> =>
  runProgram({ stack: STACK, settings, secrets });

/** The resource of `type` named `${NAME}-${suffix}`. */
function one(r: Run, type: string, suffix: string): RecordedResource {
  const found = r.mocks.ofType(type).find((res) => res.name === `${NAME}-${suffix}`);
  if (!found) throw new Error(`no ${type} named ${NAME}-${suffix}`);
  return found;
}

const fnOf = (r: Run, route: RouteDefinition) => one(r, T.fn, route.name);
/** Managed policies on function roles; the account's API Gateway logging role is not one. */
const functionRoleAttachments = (r: Run) =>
  r.mocks.ofType(T.attachment).filter((a) => a.name !== `${NAME}-apigateway-logs-policy`);
const envOf = (r: Run, route: RouteDefinition): Record<string, string> =>
  plain(fnOf(r, route).inputs.environment).variables;
const policyOf = (r: Run, route: RouteDefinition): PolicyDocument =>
  JSON.parse(plain<string>(one(r, T.rolePolicy, `${route.name}-policy`).inputs.policy));
const logGroupOf = (r: Run, route: RouteDefinition) => one(r, T.logGroup, `${route.name}-logs`);

function actionsOf(doc: PolicyDocument, service: string): string[] {
  return doc.Statement.flatMap((s) => s.Action.filter((a) => a.startsWith(`${service}:`))).sort();
}

function resourcesFor(doc: PolicyDocument, service: string): string[] {
  return doc.Statement.filter((s) => s.Action.some((a) => a.startsWith(`${service}:`))).flatMap((s) => s.Resource);
}

const route = (routeKey: string): RouteDefinition => {
  const found = ROUTES.find((r) => r.routeKey === routeKey);
  if (!found) throw new Error(`route table has no ${routeKey}`);
  return found;
};

/** Assertions that hold for every store. */
function commonBehaviour(get: () => Run, expected: { stage: string; rateLimit: number; burstLimit: number }) {
  it("creates a WEBSOCKET API selecting routes with the route table's expression", () => {
    const apis = get().mocks.ofType(T.api);
    expect(apis).to.have.length(1);
    expect(apis[0]!.inputs.protocolType).to.equal("WEBSOCKET");
    expect(apis[0]!.inputs.routeSelectionExpression).to.equal(ROUTE_SELECTION_EXPRESSION);
  });

  it("creates one route per route-table entry, each an AWS_PROXY integration targeting that route's function", () => {
    const r = get();
    const routes = r.mocks.ofType(T.route);
    expect(routes.map((x) => x.inputs.routeKey).sort()).to.deep.equal(ROUTES.map((x) => x.routeKey).sort());
    expect(r.mocks.ofType(T.integration)).to.have.length(ROUTES.length);
    for (const def of ROUTES) {
      const apiRoute = routes.find((x) => x.inputs.routeKey === def.routeKey)!;
      const integration = one(r, T.integration, `${def.name}-integration`);
      expect(apiRoute.inputs.apiId).to.equal(r.apiId);
      expect(apiRoute.inputs.target).to.equal(`integrations/${integration.id}`);
      expect(integration.inputs.integrationType).to.equal("AWS_PROXY");
      expect(integration.inputs.apiId).to.equal(r.apiId);
      expect(integration.inputs.integrationUri).to.equal(fnOf(r, def).state.invokeArn);
    }
  });

  it("lets API Gateway invoke each function from its own route only", () => {
    const r = get();
    expect(r.mocks.ofType(T.permission)).to.have.length(ROUTES.length);
    for (const def of ROUTES) {
      const permission = one(r, T.permission, `${def.name}-invoke`).inputs;
      expect(permission.principal).to.equal("apigateway.amazonaws.com");
      expect(permission.action).to.equal("lambda:InvokeFunction");
      expect(permission.function).to.equal(fnOf(r, def).state.name);
      expect(permission.sourceArn).to.equal(`${r.executionArn}/${expected.stage}/${def.routeKey}`);
      expect(String(permission.sourceArn).endsWith(`/${expected.stage}/${def.routeKey}`)).to.equal(true);
    }
  });

  it("auto-deploys a stage with non-zero throttling equal to config", () => {
    const r = get();
    const stages = r.mocks.ofType(T.stage);
    expect(stages).to.have.length(1);
    const stage = stages[0]!.inputs as any;
    expect(stage.name).to.equal(expected.stage);
    expect(stage.apiId).to.equal(r.apiId);
    expect(stage.autoDeploy).to.equal(true);
    const settings = stage.defaultRouteSettings;
    expect(settings.throttlingRateLimit).to.equal(expected.rateLimit).and.to.be.greaterThan(0);
    expect(settings.throttlingBurstLimit).to.equal(expected.burstLimit).and.to.be.greaterThan(0);
    expect(settings.dataTraceEnabled).to.equal(false);
    // No alarm or widget reads per-route metrics, which are billed as custom metrics.
    expect(settings.detailedMetricsEnabled).to.equal(false);
  });

  it("writes JSON access logs with every listed field to a retained log group", () => {
    const r = get();
    const stage = r.mocks.ofType(T.stage)[0]!.inputs as any;
    const accessLogs = one(r, T.logGroup, "access-logs");
    expect(stage.accessLogSettings.destinationArn).to.equal(accessLogs.state.arn);
    const format = JSON.parse(stage.accessLogSettings.format);
    for (const field of [
      "requestId",
      "ip",
      "requestTime",
      "routeKey",
      "eventType",
      "status",
      "connectionId",
      "integrationStatus",
      "integrationLatency",
      "errorMessage",
      "integrationError",
    ]) {
      expect(format[field], field)
        .to.be.a("string")
        .and.match(/^\$context\.[A-Za-z.]+$/);
    }
    expect(format).to.deep.equal(ACCESS_LOG_FIELDS);
    expect(stage.accessLogSettings.format).not.to.include("\n");
  });

  it("creates one pinned, arm64, bundled function per route, logging JSON to its own log group", () => {
    const r = get();
    // One per route, plus the fan-out worker (test/infra-fanout.test.ts).
    expect(r.mocks.ofType(T.fn)).to.have.length(ROUTES.length + 1);
    for (const def of ROUTES) {
      const fn = fnOf(r, def).inputs as any;
      const logGroup = logGroupOf(r, def);
      expect(fn.runtime).to.equal("nodejs24.x").and.equal(LAMBDA_RUNTIME);
      expect(fn.architectures).to.deep.equal(["arm64"]);
      expect(fn.handler).to.equal("index.handler").and.equal(LAMBDA_HANDLER);
      expect(fn.timeout).to.be.within(1, 29);
      expect(fn.loggingConfig).to.deep.equal({
        logFormat: "JSON",
        logGroup: logGroup.inputs.name,
        applicationLogLevel: "INFO",
        systemLogLevel: "INFO",
      });
      expect(fn.tracingConfig, "X-Ray is off by default").to.equal(undefined);
      expect(logGroup.inputs.name).to.equal(`/aws/lambda/${NAME}-${STACK}-${def.name}`);
      expect(fn.role).to.equal(one(r, T.role, `${def.name}-role`).state.arn);
    }
  });

  it("gives every function a role Lambda can assume", () => {
    const r = get();
    for (const def of ROUTES) {
      const trust = JSON.parse(one(r, T.role, `${def.name}-role`).inputs.assumeRolePolicy as string);
      expect(trust.Statement).to.deep.equal([
        { Effect: "Allow", Principal: { Service: "lambda.amazonaws.com" }, Action: "sts:AssumeRole" },
      ]);
    }
  });

  it("never grants a wildcard resource in an inline policy (but Lambda's VPC ENI and X-Ray actions)", () => {
    const r = get();
    for (const def of ROUTES) {
      const doc = policyOf(r, def);
      expect(doc.Version).to.equal("2012-10-17");
      for (const statement of doc.Statement) {
        expect(statement.Effect).to.equal("Allow");
        if (statement.Sid === "VpcNetworkInterfaces") {
          expect(statement.Action.every((a) => a.startsWith("ec2:"))).to.equal(true);
          continue;
        }
        // X-Ray has no resource-level permissions for these two; nothing else may sit beside them.
        if (statement.Sid === "XRayTracing") {
          expect(statement.Action).to.deep.equal([...XRAY_ACTIONS]);
          expect(statement.Resource).to.deep.equal(["*"]);
          continue;
        }
        for (const resource of statement.Resource) {
          expect(resource, `${def.name}: ${statement.Sid}`).not.to.equal("*");
          const usesScopedService = statement.Action.some((a) => /^(dynamodb|execute-api|secretsmanager):/.test(a));
          if (usesScopedService) expect(resource.endsWith(":*") || resource.startsWith("*")).to.equal(false);
        }
        for (const action of statement.Action) expect(action).not.to.include("*");
      }
    }
  });

  it("limits logging permissions to each function's own log group", () => {
    const r = get();
    for (const def of ROUTES) {
      const doc = policyOf(r, def);
      expect(actionsOf(doc, "logs")).to.deep.equal(["logs:CreateLogStream", "logs:PutLogEvents"]);
      expect(resourcesFor(doc, "logs")).to.deep.equal([`${logGroupOf(r, def).state.arn}:*`]);
    }
  });

  it("grants ManageConnections on POST @connections of this API and stage, only to routes that post (DELETE too where the rate limit disconnects)", () => {
    const r = get();
    const expectedArn = `${r.executionArn}/${expected.stage}/POST/@connections/*`;
    const deleteArn = `${r.executionArn}/${expected.stage}/DELETE/@connections/*`;
    for (const def of ROUTES) {
      const doc = policyOf(r, def);
      if (def.manageConnections) {
        expect(actionsOf(doc, "execute-api"), def.name).to.deep.equal(["execute-api:ManageConnections"]);
        expect(resourcesFor(doc, "execute-api"), def.name).to.deep.equal([
          expectedArn,
          ...(def.disconnectConnections ? [deleteArn] : []),
        ]);
      } else {
        expect(actionsOf(doc, "execute-api"), def.name).to.deep.equal([]);
      }
    }
    expect(actionsOf(policyOf(r, route("sendmessage")), "execute-api")).to.deep.equal([
      "execute-api:ManageConnections",
    ]);
    expect(actionsOf(policyOf(r, route("$default")), "execute-api")).to.deep.equal(["execute-api:ManageConnections"]);
  });

  it("sets the runtime env contract on every function, with the execute-api callback URL", () => {
    const r = get();
    for (const def of ROUTES) {
      const env = envOf(r, def);
      // The Redis token only ever travels through Secrets Manager.
      expect(env, def.name).not.to.have.property(ENV.REDIS_AUTH_TOKEN);
      expect(env[ENV.CALLBACK_URL]).to.equal(
        `https://${r.apiId}.execute-api.${REGION}.amazonaws.com/${expected.stage}`,
      );
      expect(env[ENV.CALLBACK_URL]).to.equal(r.outputs.callbackUrl);
    }
  });

  it("exports wss:// and https:// execute-api URLs ending in the stage", () => {
    const { outputs, apiId } = get();
    expect(outputs.url).to.equal(`wss://${apiId}.execute-api.${REGION}.amazonaws.com/${expected.stage}`);
    expect(outputs.url.startsWith("wss://")).to.equal(true);
    expect(outputs.url.endsWith(`/${expected.stage}`)).to.equal(true);
    expect(outputs.callbackUrl).to.equal(`https://${apiId}.execute-api.${REGION}.amazonaws.com/${expected.stage}`);
  });

  it("parents every resource to the ChatApi component and names it after the component", () => {
    const r = get();
    for (const res of r.mocks.resources) {
      if (res.type === CHAT_API_TYPE) continue;
      expect(res.name.startsWith(`${NAME}-`), res.name).to.equal(true);
    }
    const monitor = pulumi.runtime.getMonitor() as unknown as {
      getRegisteredResources(): Map<string, unknown>;
    };
    const urns = [...monitor.getRegisteredResources().keys()];
    const children = urns.filter((urn) => !urn.includes(`::${CHAT_API_TYPE}::`));
    expect(children.length).to.be.greaterThan(0);
    for (const urn of children) expect(urn, urn).to.include(`::${CHAT_API_TYPE}$`);
    expect(r.mocks.ofType(CHAT_API_TYPE)).to.have.length(1);
  });

  it("creates no execute-api VPC endpoint (it would capture @connections)", () => {
    expect(get().mocks.ofType(T.vpcEndpoint)).to.deep.equal([]);
  });
}

describe("infra: store dynamodb (defaults)", function () {
  this.timeout(120_000);
  let r: Run;
  before(async () => {
    r = await run({ store: "dynamodb" });
  });

  commonBehaviour(() => r, { stage: STACK, rateLimit: 500, burstLimit: 1000 });

  it("creates a pay-per-request, encrypted table keyed on the store's hash key with TTL", () => {
    const tables = r.mocks.ofType(T.table);
    expect(tables).to.have.length(1);
    const table = tables[0]!.inputs as any;
    expect(table.billingMode).to.equal("PAY_PER_REQUEST");
    expect(table.hashKey).to.equal(HASH_KEY);
    // The layout of stores/dynamodb-table.ts, the same one local runs and tests create (localCreateTableInput).
    const local = localCreateTableInput("t");
    expect(table.attributes).to.deep.equal(
      local.AttributeDefinitions!.map((a) => ({ name: a.AttributeName, type: a.AttributeType })),
    );
    expect(table.attributes.map((a: { name: string }) => a.name)).to.deep.equal([
      HASH_KEY,
      ROOM_ATTRIBUTE,
      MEMBER_ATTRIBUTE,
    ]);
    expect(table.globalSecondaryIndexes).to.deep.equal(
      local.GlobalSecondaryIndexes!.map((index) => ({
        name: index.IndexName,
        keySchemas: index.KeySchema!.map((k) => ({ attributeName: k.AttributeName, keyType: k.KeyType })),
        projectionType: index.Projection!.ProjectionType,
        nonKeyAttributes: index.Projection!.NonKeyAttributes,
      })),
    );
    expect(table.globalSecondaryIndexes[0]).to.deep.include({
      name: ROOM_INDEX,
      projectionType: "INCLUDE",
      nonKeyAttributes: ["expiresAt"],
    });
    expect(table.serverSideEncryption).to.deep.equal({ enabled: true });
    expect(table.ttl).to.deep.equal({ attributeName: TTL_ATTRIBUTE, enabled: true });
  });

  it("grants each route exactly the DynamoDB actions its store access names, on the table only", () => {
    const tableArn = r.mocks.ofType(T.table)[0]!.state.arn;
    for (const def of ROUTES) {
      const doc = policyOf(r, def);
      // Listing also sizes its parallel Scan from the table's item count (DescribeTable).
      const planning = def.storeAccess.includes("read") ? ["dynamodb:DescribeTable"] : [];
      const onTable = def.storeAccess.filter((a) => a !== "listRoom");
      const expected = [...new Set([...onTable.flatMap((a) => DYNAMODB_ACTIONS[a]), ...planning])].sort();
      const table = doc.Statement.find((st) => st.Sid === "ConnectionStore");
      expect([...(table?.Action ?? [])].sort(), def.name).to.deep.equal(expected);
      if (expected.length > 0) expect(table!.Resource, def.name).to.deep.equal([tableArn]);
      // Listing a room: Query on the room index only, never on the table.
      const index = doc.Statement.find((st) => st.Sid === "RoomIndex");
      if (def.storeAccess.includes("listRoom")) {
        expect(index, def.name).to.deep.include({
          Action: ["dynamodb:Query"],
          Resource: [`${tableArn}/index/${ROOM_INDEX}`],
        });
      } else {
        expect(index, def.name).to.equal(undefined);
      }
      expect(
        doc.Statement.filter((st) => st.Action.includes("dynamodb:Query")).flatMap((st) => st.Resource),
        def.name,
      ).to.not.include(tableArn);
    }
    // The per-user connection cap: a user's slots item is read, put conditionally and updated (userSlots).
    expect(actionsOf(policyOf(r, route("$connect")), "dynamodb")).to.deep.equal([
      "dynamodb:GetItem",
      "dynamodb:PutItem",
      "dynamodb:UpdateItem",
    ]);
    expect(actionsOf(policyOf(r, route("$disconnect")), "dynamodb")).to.deep.equal([
      "dynamodb:BatchWriteItem",
      "dynamodb:DeleteItem",
      "dynamodb:GetItem",
      "dynamodb:PutItem",
      "dynamodb:Query",
      "dynamodb:UpdateItem",
    ]);
    // PutItem on every message route that reads its sender: a sender the store lost is registered again.
    expect(actionsOf(policyOf(r, route("sendmessage")), "dynamodb")).to.deep.equal([
      "dynamodb:BatchWriteItem",
      "dynamodb:DeleteItem",
      "dynamodb:DescribeTable",
      "dynamodb:GetItem",
      "dynamodb:PutItem",
      "dynamodb:Query",
      "dynamodb:Scan",
      "dynamodb:UpdateItem",
    ]);
    // Rooms: join/leave write memberships (no Scan); join also reads history by key (resume with `after`);
    // whoami only reads its own item.
    const leaveActions = [
      "dynamodb:BatchWriteItem",
      "dynamodb:DeleteItem",
      "dynamodb:GetItem",
      "dynamodb:PutItem",
      "dynamodb:Query",
      "dynamodb:UpdateItem",
    ];
    expect(actionsOf(policyOf(r, route("leave")), "dynamodb")).to.deep.equal(leaveActions);
    expect(actionsOf(policyOf(r, route("join")), "dynamodb")).to.deep.equal(
      ["dynamodb:BatchGetItem", ...leaveActions].sort(),
    );
    // history reads pages by key (no Query, no Scan); ping updates its own item (and re-adds a lost one).
    expect(actionsOf(policyOf(r, route("history")), "dynamodb")).to.deep.equal([
      "dynamodb:BatchGetItem",
      "dynamodb:GetItem",
      "dynamodb:PutItem",
      "dynamodb:UpdateItem",
    ]);
    expect(actionsOf(policyOf(r, route("ping")), "dynamodb")).to.deep.equal([
      "dynamodb:GetItem",
      "dynamodb:PutItem",
      "dynamodb:UpdateItem",
    ]);
    expect(actionsOf(policyOf(r, route("whoami")), "dynamodb")).to.deep.equal([
      "dynamodb:GetItem",
      "dynamodb:PutItem",
      "dynamodb:UpdateItem",
    ]);
    expect(actionsOf(policyOf(r, route("sendto")), "dynamodb")).to.deep.equal([
      "dynamodb:BatchWriteItem",
      "dynamodb:DeleteItem",
      "dynamodb:GetItem",
      "dynamodb:PutItem",
      "dynamodb:Query",
      "dynamodb:UpdateItem",
    ]);
    // $default only meters its messages (the rate limit's counter).
    expect(actionsOf(policyOf(r, route("$default")), "dynamodb")).to.deep.equal(["dynamodb:UpdateItem"]);
    expect(
      policyOf(r, route("$default"))
        .Statement.map((s) => s.Sid)
        .sort(),
    ).to.deep.equal(["ConnectionStore", "PostToConnections", "WriteOwnLogs"]);
  });

  it("points every function at the table and sets the TTL, with no Redis settings", () => {
    const tableName = r.mocks.ofType(T.table)[0]!.state.name;
    for (const def of ROUTES) {
      const env = envOf(r, def);
      expect(env[ENV.STORE]).to.equal("dynamodb");
      expect(env[ENV.TABLE_NAME]).to.equal(tableName);
      expect(env[ENV.CONNECTION_TTL_SECONDS]).to.equal("7500");
      expect(env[ENV.MAX_ROOMS_PER_CONNECTION], "config maxRoomsPerConnection's default").to.equal("10");
      expect(env[ENV.MAX_MEMBERS_PER_ROOM], "config maxMembersPerRoom's default: no bound").to.equal("0");
      expect(Object.keys(env).filter((k) => k.startsWith("REDIS_"))).to.deep.equal([]);
    }
  });

  it("applies the default memory size and log retention", () => {
    for (const def of ROUTES) {
      // Functions that post broadcasts get fanout.memorySize (default 1769 MB, one vCPU).
      expect(fnOf(r, def).inputs.memorySize).to.equal(def.invokesFanOutWorker ? 1769 : 256);
      expect(logGroupOf(r, def).inputs.retentionInDays).to.equal(14);
    }
    expect(one(r, T.logGroup, "access-logs").inputs.retentionInDays).to.equal(14);
  });

  it("creates no network and keeps every function out of a VPC", () => {
    const networkTypes = r.mocks.resources.filter(
      (x) => x.type.startsWith("aws:ec2/") || x.type.startsWith("aws:vpc/"),
    );
    expect(networkTypes).to.deep.equal([]);
    for (const def of ROUTES) expect(fnOf(r, def).inputs.vpcConfig).to.equal(undefined);
    expect(functionRoleAttachments(r)).to.deep.equal([]);
    expect(r.mocks.ofType(T.replicationGroup)).to.deep.equal([]);
  });

  it("exports the store and its table name", () => {
    expect(r.outputs.store).to.equal("dynamodb");
    expect(r.outputs.storeResource).to.equal(r.mocks.ofType(T.table)[0]!.state.name);
  });

  it("deploys the esbuild bundle of each route's module", async () => {
    for (const def of ROUTES) {
      const code = fnOf(r, def).inputs.code as pulumi.asset.AssetArchive;
      const assets = await code.assets;
      expect(Object.keys(assets)).to.deep.equal([BUNDLE_FILE]);
      const text = await (assets[BUNDLE_FILE] as pulumi.asset.StringAsset).text;
      expect(text).to.equal(bundleHandler(def.module, "dynamodb"));
    }
  });
});

describe("infra: store redis (new VPC, generated token)", function () {
  this.timeout(120_000);
  let r: Run;
  before(async () => {
    r = await run({ store: "redis" });
  });

  commonBehaviour(() => r, { stage: STACK, rateLimit: 500, burstLimit: 1000 });

  it("deploys each route's Redis-store bundle (no DynamoDB client inside)", async () => {
    for (const def of ROUTES) {
      const assets = await (fnOf(r, def).inputs.code as pulumi.asset.AssetArchive).assets;
      const text = await (assets[BUNDLE_FILE] as pulumi.asset.StringAsset).text;
      expect(text, def.name).to.equal(bundleHandler(def.module, "redis"));
    }
  });

  const storeRoutes = () => ROUTES.filter((d) => d.storeAccess.length > 0);
  const storelessRoutes = () => ROUTES.filter((d) => d.storeAccess.length === 0);
  const sg = (suffix: string) => one(r, T.securityGroup, suffix);

  it("creates an encrypted single-node Redis replication group with AUTH from a generated secret", () => {
    const groups = r.mocks.ofType(T.replicationGroup);
    expect(groups).to.have.length(1);
    const group = groups[0]!.inputs as any;
    expect(group.engine).to.equal("redis");
    expect(group.engineVersion).to.equal("7.1");
    expect(group.nodeType).to.equal("cache.t4g.micro");
    expect(group.numCacheClusters).to.equal(1);
    expect(group.port).to.equal(6379);
    expect(group.transitEncryptionEnabled).to.equal(true);
    expect(group.atRestEncryptionEnabled).to.equal(true);
    expect(group.subnetGroupName).to.equal(r.mocks.ofType(T.subnetGroup)[0]!.state.name);
    expect(group.securityGroupIds).to.deep.equal([sg("redis-sg").id]);

    const passwords = r.mocks.ofType(T.password);
    expect(passwords).to.have.length(1);
    expect(passwords[0]!.inputs.length).to.be.within(16, 128);
    expect(passwords[0]!.inputs.special).to.equal(false);
    expect(containsSecret(groups[0]!.inputs.authToken)).to.equal(true);
    expect(plain(group.authToken)).to.equal(passwords[0]!.state.result);
  });

  it("puts Redis in a subnet group over the two private subnets", () => {
    const privateIds = [one(r, T.subnet, "private-1").id, one(r, T.subnet, "private-2").id];
    expect(r.mocks.ofType(T.subnetGroup)[0]!.inputs.subnetIds).to.deep.equal(privateIds);
  });

  it("lets only the functions' security group reach Redis, on 6379, with no CIDR", () => {
    const ingress = r.mocks.ofType(T.ingress);
    expect(ingress).to.have.length(1);
    const rule = ingress[0]!.inputs as any;
    expect(rule.securityGroupId).to.equal(sg("redis-sg").id);
    expect(rule.referencedSecurityGroupId).to.equal(sg("functions-sg").id);
    expect([rule.ipProtocol, rule.fromPort, rule.toPort]).to.deep.equal(["tcp", 6379, 6379]);
    expect(rule.cidrIpv4).to.equal(undefined);
    expect(rule.cidrIpv6).to.equal(undefined);
    for (const group of r.mocks.ofType(T.securityGroup)) expect(group.inputs.ingress ?? []).to.deep.equal([]);
  });

  it("lets the functions out to Redis and, through NAT, to HTTPS (@connections)", () => {
    const egress = r.mocks.ofType(T.egress).map((x) => x.inputs as any);
    for (const rule of egress) expect(rule.securityGroupId).to.equal(sg("functions-sg").id);
    const https = egress.find((x) => x.fromPort === 443);
    expect(https).to.include({ ipProtocol: "tcp", toPort: 443, cidrIpv4: "0.0.0.0/0" });
    const redis = egress.find((x) => x.fromPort === 6379);
    expect(redis).to.include({ ipProtocol: "tcp", toPort: 6379, referencedSecurityGroupId: sg("redis-sg").id });
  });

  it("creates a VPC with two private subnets in two AZs, a public subnet, IGW and NAT routes", () => {
    const vpcs = r.mocks.ofType(T.vpc);
    expect(vpcs).to.have.length(1);
    expect(vpcs[0]!.inputs).to.include({ enableDnsSupport: true, enableDnsHostnames: true });
    const vpcId = vpcs[0]!.id;

    const private1 = one(r, T.subnet, "private-1");
    const private2 = one(r, T.subnet, "private-2");
    const publicSubnet = one(r, T.subnet, "public");
    expect(r.mocks.ofType(T.subnet)).to.have.length(3);
    for (const subnet of [private1, private2, publicSubnet]) expect(subnet.inputs.vpcId).to.equal(vpcId);
    expect([private1.inputs.availabilityZone, private2.inputs.availabilityZone]).to.deep.equal([ZONES[0], ZONES[1]]);
    expect(r.mocks.calls.map((c) => c.token)).to.include("aws:index/getAvailabilityZones:getAvailabilityZones");

    const igw = r.mocks.ofType(T.igw);
    expect(igw).to.have.length(1);
    const eip = r.mocks.ofType(T.eip);
    expect(eip).to.have.length(1);
    expect(eip[0]!.inputs.domain).to.equal("vpc");
    const nats = r.mocks.ofType(T.nat);
    expect(nats).to.have.length(1);
    expect(nats[0]!.inputs).to.include({ subnetId: publicSubnet.id, allocationId: eip[0]!.id });

    const publicRt = one(r, T.routeTable, "public-rt").inputs as any;
    expect(publicRt.routes).to.deep.equal([{ cidrBlock: "0.0.0.0/0", gatewayId: igw[0]!.id }]);
    const privateRt = one(r, T.routeTable, "private-rt");
    expect((privateRt.inputs as any).routes).to.deep.equal([{ cidrBlock: "0.0.0.0/0", natGatewayId: nats[0]!.id }]);

    const associations = r.mocks.ofType(T.routeTableAssociation).map((a) => a.inputs as any);
    const routeTableOf = (subnetId: string) =>
      associations.filter((a) => a.subnetId === subnetId).map((a) => a.routeTableId);
    expect(routeTableOf(private1.id)).to.deep.equal([privateRt.id]);
    expect(routeTableOf(private2.id)).to.deep.equal([privateRt.id]);
    expect(routeTableOf(publicSubnet.id)).to.deep.equal([one(r, T.routeTable, "public-rt").id]);
  });

  it("runs functions that use the store in the private subnets, and keeps the others out of the VPC", () => {
    const privateIds = [one(r, T.subnet, "private-1").id, one(r, T.subnet, "private-2").id];
    expect(storeRoutes().length).to.be.greaterThan(0);
    for (const def of storeRoutes()) {
      expect(fnOf(r, def).inputs.vpcConfig, def.name).to.deep.equal({
        subnetIds: privateIds,
        securityGroupIds: [sg("functions-sg").id],
      });
    }
    // $default uses the store too (the rate limit's counter), so it runs in the VPC.
    expect(storeRoutes().map((d) => d.routeKey)).to.include("$default");
    for (const def of storelessRoutes()) expect(fnOf(r, def).inputs.vpcConfig, def.name).to.equal(undefined);
  });

  it("grants the ENI actions inline to VPC functions only, and no managed policy (it would add logs on *)", () => {
    expect(functionRoleAttachments(r)).to.deep.equal([]);
    for (const def of ROUTES) {
      const statements = policyOf(r, def).Statement.filter((s) => s.Sid === "VpcNetworkInterfaces");
      if (def.storeAccess.length === 0) {
        expect(statements, def.name).to.deep.equal([]);
        continue;
      }
      expect(statements, def.name).to.have.length(1);
      expect(statements[0]!.Action).to.deep.equal([...VPC_NETWORK_INTERFACE_ACTIONS]);
      expect(statements[0]!.Action.every((a) => a.startsWith("ec2:"))).to.equal(true);
      // The only `*` any policy holds, and only on ec2 network-interface actions.
      for (const other of policyOf(r, def).Statement.filter((s) => s.Sid !== "VpcNetworkInterfaces")) {
        expect(other.Resource, `${def.name} ${other.Sid}`).to.not.include("*");
      }
    }
  });

  it("grants no DynamoDB access at all", () => {
    for (const def of ROUTES) expect(actionsOf(policyOf(r, def), "dynamodb"), def.name).to.deep.equal([]);
    expect(r.mocks.ofType(T.table)).to.deep.equal([]);
  });

  it("gives functions the Redis endpoint over TLS, and the token's secret ARN (never the token) where the store is used", () => {
    const host = r.mocks.ofType(T.replicationGroup)[0]!.state.primaryEndpointAddress;
    const token = String(r.mocks.ofType(T.password)[0]!.state.result);
    const secretArn = r.mocks.ofType(T.secret)[0]!.state.arn;
    for (const def of ROUTES) {
      const env = envOf(r, def);
      expect(env[ENV.STORE]).to.equal("redis");
      expect(env[ENV.REDIS_HOST]).to.equal(host);
      expect(env[ENV.REDIS_PORT]).to.equal("6379");
      expect(env[ENV.REDIS_TLS]).to.equal("true");
      expect(env[ENV.TABLE_NAME]).to.equal(undefined);
      expect(env[ENV.CONNECTION_TTL_SECONDS]).to.equal("7500");
      expect(env[ENV.REDIS_AUTH_TOKEN], def.name).to.equal(undefined);
      expect(JSON.stringify(env), def.name).not.to.include(token);
      expect(env[ENV.REDIS_AUTH_SECRET_ARN], def.name).to.equal(def.storeAccess.length > 0 ? secretArn : undefined);
    }
  });

  it("keeps the generated token in a Secrets Manager secret, as a Pulumi secret", () => {
    const token = r.mocks.ofType(T.password)[0]!.state.result;
    const secrets = r.mocks.ofType(T.secret);
    expect(secrets).to.have.length(1);
    // dev stack: no recovery window, so the stack can be destroyed and re-created at once.
    expect(secrets[0]!.inputs.recoveryWindowInDays).to.equal(0);
    expect(secrets[0]!.inputs.kmsKeyId, "aws/secretsmanager key: no kms:Decrypt grant needed").to.equal(undefined);
    const versions = r.mocks.ofType(T.secretVersion);
    expect(versions).to.have.length(1);
    expect(versions[0]!.inputs.secretId).to.equal(secrets[0]!.id);
    expect(containsSecret(versions[0]!.inputs.secretString)).to.equal(true);
    expect(plain(versions[0]!.inputs.secretString)).to.equal(token);
  });

  it("lets only the functions that use the store read that one secret, and nothing else from Secrets Manager", () => {
    const secretArn = String(r.mocks.ofType(T.secret)[0]!.state.arn);
    expect(secretArn).to.match(/^arn:aws:secretsmanager:/);
    for (const def of ROUTES) {
      const doc = policyOf(r, def);
      if (def.storeAccess.length > 0) {
        expect(actionsOf(doc, "secretsmanager"), def.name).to.deep.equal(["secretsmanager:GetSecretValue"]);
        expect(resourcesFor(doc, "secretsmanager"), def.name).to.deep.equal([secretArn]);
      } else {
        expect(actionsOf(doc, "secretsmanager"), def.name).to.deep.equal([]);
      }
      expect(actionsOf(doc, "kms"), def.name).to.deep.equal([]);
    }
  });

  it("makes functions that read the token wait for its secret version (their cold start reads it)", () => {
    const order = r.mocks.resources.map((x) => x.name);
    for (const def of storeRoutes()) {
      expect(order.indexOf(`${NAME}-redis-auth-version`)).to.be.within(0, order.indexOf(`${NAME}-${def.name}`) - 1);
    }
  });

  it("runs one node without failover when redis.replicas is 0", () => {
    const group = r.mocks.ofType(T.replicationGroup)[0]!.inputs as any;
    expect(group).to.include({ numCacheClusters: 1, automaticFailoverEnabled: false, multiAzEnabled: false });
  });

  it("exports no stack output holding the token", () => {
    const token = String(r.mocks.ofType(T.password)[0]!.state.result);
    expect(JSON.stringify(r.outputs)).not.to.include(token);
  });

  it("makes VPC functions wait for the NAT route (their first call must reach @connections)", async () => {
    // dependsOn is not visible in mock inputs; the functions' egress resources must exist before them.
    const order = r.mocks.resources.map((x) => x.name);
    for (const def of storeRoutes()) {
      const fnIndex = order.indexOf(`${NAME}-${def.name}`);
      for (const dep of ["nat", "private-rta-1", "private-rta-2", `${def.name}-policy`]) {
        expect(order.indexOf(`${NAME}-${dep}`), `${dep} before ${def.name}`).to.be.within(0, fnIndex - 1);
      }
    }
  });

  it("exports the store and the Redis primary endpoint", () => {
    expect(r.outputs.store).to.equal("redis");
    expect(r.outputs.storeResource).to.equal(r.mocks.ofType(T.replicationGroup)[0]!.state.primaryEndpointAddress);
  });
});

describe("infra: store redis in an existing VPC with a configured token", function () {
  this.timeout(120_000);
  const vpcId = "vpc-0123456789abcdef0";
  const subnetIds = ["subnet-0aaaaaaaaaaaaaaa1", "subnet-0bbbbbbbbbbbbbbb2"];
  const token = "Correct-Horse-Battery-Staple-42!";
  let r: Run;
  before(async () => {
    r = await run(
      {
        store: "redis",
        "redis.vpcId": vpcId,
        "redis.subnetIds": subnetIds,
        "redis.nodeType": "cache.r7g.large",
        "redis.engineVersion": "7.0",
      },
      { redisAuthToken: token },
    );
  });

  it("creates no VPC, subnets, gateways or route tables", () => {
    for (const type of [T.vpc, T.subnet, T.igw, T.eip, T.nat, T.routeTable, T.routeTableAssociation, T.vpcEndpoint]) {
      expect(r.mocks.ofType(type), type).to.deep.equal([]);
    }
    expect(r.mocks.calls.map((c) => c.token)).not.to.include("aws:index/getAvailabilityZones:getAvailabilityZones");
  });

  it("places the security groups, Redis and the store functions in the given VPC and subnets", () => {
    for (const group of r.mocks.ofType(T.securityGroup)) expect(group.inputs.vpcId).to.equal(vpcId);
    expect(r.mocks.ofType(T.subnetGroup)[0]!.inputs.subnetIds).to.deep.equal(subnetIds);
    for (const def of ROUTES.filter((d) => d.storeAccess.length > 0)) {
      expect((fnOf(r, def).inputs.vpcConfig as any).subnetIds).to.deep.equal(subnetIds);
    }
    expect((fnOf(r, route("$default")).inputs.vpcConfig as any).subnetIds).to.deep.equal(subnetIds);
  });

  it("uses the configured token as a secret and generates none", () => {
    expect(r.mocks.ofType(T.password)).to.deep.equal([]);
    const group = r.mocks.ofType(T.replicationGroup)[0]!;
    expect(containsSecret(group.inputs.authToken)).to.equal(true);
    expect(plain(group.inputs.authToken)).to.equal(token);
    expect(group.inputs).to.include({ nodeType: "cache.r7g.large", engineVersion: "7.0" });
    expect(envOf(r, route("$connect"))[ENV.REDIS_AUTH_TOKEN]).to.equal(undefined);
    const version = r.mocks.ofType(T.secretVersion)[0]!;
    expect(containsSecret(version.inputs.secretString)).to.equal(true);
    expect(plain(version.inputs.secretString)).to.equal(token);
    expect(envOf(r, route("$connect"))[ENV.REDIS_AUTH_SECRET_ARN]).to.equal(r.mocks.ofType(T.secret)[0]!.state.arn);
  });
});

describe("infra: custom stage, throttling, retention, memory and TTL", function () {
  this.timeout(120_000);
  let r: Run;
  before(async () => {
    r = await run({
      stage: "prod_v2",
      "throttle.rateLimit": "50",
      "throttle.burstLimit": "75",
      logRetentionDays: "30",
      memorySize: "512",
      connectionTtlSeconds: "9000",
    });
  });

  commonBehaviour(() => r, { stage: "prod_v2", rateLimit: 50, burstLimit: 75 });

  it("passes memory, retention and TTL through", () => {
    for (const def of ROUTES) {
      expect(fnOf(r, def).inputs.memorySize).to.equal(def.invokesFanOutWorker ? 1769 : 512);
      expect(logGroupOf(r, def).inputs.retentionInDays).to.equal(30);
      expect(envOf(r, def)[ENV.CONNECTION_TTL_SECONDS]).to.equal("9000");
    }
    expect(one(r, T.logGroup, "access-logs").inputs.retentionInDays).to.equal(30);
  });
});

describe("infra: invalid config", () => {
  it("fails before creating any resource, naming every bad key", async () => {
    await useMocks();
    pulumi.runtime.setAllConfig({
      [`${PROJECT_NAME}:store`]: "postgres",
      [`${PROJECT_NAME}:throttle`]: JSON.stringify({ rateLimit: 0 }),
    });
    let thrown: unknown;
    try {
      createProgram();
    } catch (error) {
      thrown = error;
    }
    expect(thrown).to.be.instanceOf(ConfigError);
    // A RunError makes Pulumi print the message without a stack trace.
    expect(pulumi.RunError.isInstance(thrown)).to.equal(true);
    expect((thrown as ConfigError).message).to.include(
      'Invalid config websocket-chat:store: "postgres" (allowed: dynamodb, redis)',
    );
    expect((thrown as ConfigError).message).to.include("websocket-chat:throttle.rateLimit");
    expect(mocks.resources).to.deep.equal([]);
  });
});

describe("infra: handler bundles", function () {
  this.timeout(60_000);

  for (const def of ROUTES) {
    it(`bundles handlers/${def.module}.ts with the AWS SDK inside, exporting handler`, () => {
      const code = bundleHandler(def.module);
      expect(code.length).to.be.greaterThan(0);
      const module = { exports: {} as Record<string, unknown> };
      // Built-ins are all the bundle may require; anything else means a dependency was left out.
      const requireBuiltin = (id: string) => {
        if (!isBuiltin(id)) throw new Error(`bundle requires ${id}`);
        return require(id);
      };
      vm.runInThisContext(`(function (module, exports, require) {${code}\n})`)(module, module.exports, requireBuiltin);
      expect(module.exports.handler).to.be.a("function");
      expect(bundleHandler(def.module)).to.equal(code);
    });
  }
});

describe("infra: redis with a replica gets one NAT gateway per availability zone", function () {
  this.timeout(120_000);
  let r: Run;
  before(async () => {
    r = await run({ store: "redis", "redis.replicas": "1" });
  });

  it("puts a public subnet, an address and a NAT gateway in each zone, and routes each private subnet to its own", () => {
    const nats = r.mocks.ofType(T.nat);
    expect(nats.map((n) => n.name)).to.deep.equal([`${NAME}-nat`, `${NAME}-nat-2`]);
    expect(r.mocks.ofType(T.eip)).to.have.length(2);
    const publicSubnets = [one(r, T.subnet, "public"), one(r, T.subnet, "public-2")];
    expect(publicSubnets.map((s) => s.inputs.availabilityZone)).to.deep.equal([ZONES[0], ZONES[1]]);
    expect(nats.map((n) => n.inputs.subnetId)).to.deep.equal(publicSubnets.map((s) => s.id));
    const associations = r.mocks.ofType(T.routeTableAssociation).map((a) => a.inputs as any);
    const routeTableOf = (subnetId: string) => associations.find((a) => a.subnetId === subnetId)?.routeTableId;
    for (const [index, suffix] of [
      [0, ""],
      [1, "-2"],
    ] as const) {
      const privateSubnet = one(r, T.subnet, `private-${index + 1}`);
      expect(privateSubnet.inputs.availabilityZone).to.equal(ZONES[index]);
      const table = one(r, T.routeTable, `private-rt${suffix}`);
      expect(routeTableOf(privateSubnet.id)).to.equal(table.id);
      expect((table.inputs as any).routes).to.deep.equal([{ cidrBlock: "0.0.0.0/0", natGatewayId: nats[index]!.id }]);
      expect(routeTableOf(publicSubnets[index]!.id)).to.equal(one(r, T.routeTable, "public-rt").id);
    }
  });

  it("keeps a single NAT gateway when asked to, replicas or not", async () => {
    const single = await run({ store: "redis", "redis.replicas": "1", "redis.natGateways": "single" });
    expect(single.mocks.ofType(T.nat)).to.have.length(1);
    expect(single.mocks.ofType(T.routeTable).map((t) => t.name)).to.have.members([
      `${NAME}-public-rt`,
      `${NAME}-private-rt`,
    ]);
  });
});

describe("infra: the account's API Gateway CloudWatch Logs role, managed by default", function () {
  this.timeout(120_000);

  it("reads the account settings and, in a fresh account, creates the role and the setting, retained", async () => {
    const r = await runProgram({ stack: STACK, settings: {} });
    const read = r.mocks.ofType("aws:apigateway/account:Account").filter((a) => a.read);
    expect(read.map((a) => a.id)).to.deep.equal(["APIGatewayAccount"]);
    const created = r.mocks.ofType("aws:apigateway/account:Account").filter((a) => !a.read);
    expect(created.map((a) => a.name)).to.deep.equal([`${NAME}-apigateway-account`]);
    expect(plain(created[0]!.inputs.cloudwatchRoleArn)).to.equal(one(r, T.role, "apigateway-logs-role").state.arn);
    for (const suffix of ["apigateway-logs-role", "apigateway-logs-policy", "apigateway-account"]) {
      expect(r.registrations.get(`${NAME}-${suffix}`)?.retainOnDelete, suffix).to.equal(true);
    }
    // Access logging fails to be set up on a stage created before the account setting.
    expect(r.registrations.get(`${NAME}-stage`)?.dependsOn).to.include(`${NAME}-apigateway-account`);
  });

  it("leaves an account that already has a role alone", async () => {
    const existing = "arn:aws:iam::123456789012:role/existing-apigateway-logs";
    const r = await runProgram({ stack: STACK, settings: {}, accountCloudwatchRoleArn: existing });
    expect(r.mocks.ofType("aws:apigateway/account:Account").filter((a) => !a.read)).to.deep.equal([]);
    expect(r.mocks.ofType(T.role).map((x) => x.name)).not.to.include(`${NAME}-apigateway-logs-role`);
  });

  it("keeps declaring the role it created when the account setting now names it (no churn on the next up)", async () => {
    const own = `arn:aws:iam::123456789012:role/${NAME}-${STACK}-apigw-logs`;
    const r = await runProgram({ stack: STACK, settings: {}, accountCloudwatchRoleArn: own });
    const created = r.mocks.ofType("aws:apigateway/account:Account").filter((a) => !a.read);
    expect(created.map((a) => a.name)).to.deep.equal([`${NAME}-apigateway-account`]);
    expect(one(r, T.role, "apigateway-logs-role").inputs.name).to.equal(`${NAME}-${STACK}-apigw-logs`);
  });

  it("never touches the account settings when opted out", async () => {
    const r = await runProgram({ stack: STACK, settings: { apiGatewayAccountRole: "false" } });
    expect(r.mocks.ofType("aws:apigateway/account:Account")).to.deep.equal([]);
  });
});

describe("infra: route and worker components keep the state of the resources they took over", function () {
  this.timeout(120_000);
  let r: Run;
  before(async () => {
    r = await run({});
  });

  const chatApiUrn = `urn:pulumi:${STACK}::${PROJECT_NAME}::${CHAT_API_TYPE}::${NAME}`;
  /** The component `name` of `type`, directly under the ChatApi; its URN. */
  const componentUrn = (type: string, name: string): string => {
    const component = r.registrations.get(name);
    expect(component?.type, name).to.equal(type);
    expect(component?.parent, name).to.equal(chatApiUrn);
    return `urn:pulumi:${STACK}::${PROJECT_NAME}::${CHAT_API_TYPE}$${type}::${name}`;
  };
  /** Each child sits under its component and names the ChatApi, its parent before, as an alias. */
  const expectMoved = (parentUrn: string, children: readonly string[]): void => {
    for (const child of children) {
      const registration = r.registrations.get(child);
      expect(registration?.parent, child).to.equal(parentUrn);
      expect(registration?.aliasParents, child).to.deep.equal([chatApiUrn]);
    }
  };

  it("puts each route's function, role, policy, log group, permission, integration and route in a ChatRoute", () => {
    for (const route of ROUTES) {
      const urn = componentUrn(CHAT_ROUTE_TYPE, `${NAME}-route-${route.name}`);
      const prefix = `${NAME}-${route.name}`;
      expectMoved(urn, [
        prefix,
        ...["logs", "role", "policy", "invoke", "integration", "route"].map((s) => `${prefix}-${s}`),
      ]);
    }
  });

  it("puts the fan-out worker's function, role, policy, log group, queues and event source mapping in a FanOutWorker", () => {
    const urn = componentUrn(FANOUT_WORKER_TYPE, `${NAME}-worker`);
    const prefix = `${NAME}-${FANOUT_WORKER.name}`;
    expectMoved(urn, [
      prefix,
      ...["logs", "role", "policy", "queue", "dlq", "dlq-redrive-allow", "shards"].map((s) => `${prefix}-${s}`),
    ]);
  });
});

describe("infra: room-history store access (history, append, sendRef, touch)", () => {
  const tableArn = "arn:aws:dynamodb:us-east-1:123456789012:table/chat";
  const targets = {
    store: "dynamodb" as const,
    tableArn,
    apiExecutionArn: "arn:aws:execute-api:us-east-1:123456789012:abc",
    stage: "dev",
    logGroupArn: "arn:aws:logs:us-east-1:123456789012:log-group:/aws/lambda/f",
  };
  const storeActions = (storeAccess: RouteDefinition["storeAccess"]) => {
    const doc = functionPolicy({ name: "f", module: "f", storeAccess, manageConnections: false }, targets);
    expect(
      doc.Statement.find((st) => st.Sid === "RoomIndex"),
      "no index access",
    ).to.equal(undefined);
    const table = doc.Statement.find((st) => st.Sid === "ConnectionStore");
    expect(table?.Resource).to.deep.equal([tableArn]);
    return [...(table?.Action ?? [])].sort();
  };

  it("grants reading history GetItem and BatchGetItem only: no Query, no Scan, no write", () => {
    expect(storeActions(["history"])).to.deep.equal(["dynamodb:BatchGetItem", "dynamodb:GetItem"]);
  });

  it("grants appending the counter's UpdateItem and one BatchWriteItem, and reading nothing", () => {
    expect(storeActions(["append"])).to.deep.equal(["dynamodb:BatchWriteItem", "dynamodb:UpdateItem"]);
  });

  it("grants send references and the heartbeat what their conditional writes need", () => {
    expect(storeActions(["sendRef"])).to.deep.equal([
      "dynamodb:DeleteItem",
      "dynamodb:GetItem",
      "dynamodb:PutItem",
      "dynamodb:UpdateItem",
    ]);
    expect(storeActions(["touch"])).to.deep.equal(["dynamodb:UpdateItem"]);
  });

  it("passes the history.* settings to every function (defaults: 100 entries, a day, 600 s)", async function () {
    this.timeout(120_000);
    const variables = (run: ProgramRun) =>
      run.mocks.ofType(T.fn).map((fn) => plain<{ variables: Record<string, string> }>(fn.inputs.environment).variables);
    for (const env of variables(await runProgram({ settings: { store: "dynamodb" } }))) {
      expect(env).to.include({
        [ENV.HISTORY_MAX_ENTRIES]: "100",
        [ENV.HISTORY_MAX_AGE_SECONDS]: "86400",
        [ENV.SEND_REF_WINDOW_SECONDS]: "600",
      });
    }
    const set = {
      store: "redis",
      "history.maxEntries": "250",
      "history.maxAgeSeconds": "3600",
      "history.sendRefWindowSeconds": "120",
    };
    const functions = variables(await runProgram({ settings: set }));
    expect(functions).to.have.length(ROUTES.length + 1);
    for (const env of functions) {
      expect(env).to.include({
        [ENV.HISTORY_MAX_ENTRIES]: "250",
        [ENV.HISTORY_MAX_AGE_SECONDS]: "3600",
        [ENV.SEND_REF_WINDOW_SECONDS]: "120",
      });
    }
  });

  it("refuses history.* values out of bounds, naming the key", () => {
    for (const [key, bad] of [
      ["history.maxEntries", "0"],
      ["history.maxEntries", "1001"],
      ["history.maxAgeSeconds", "604801"],
      ["history.sendRefWindowSeconds", "0"],
    ] as const) {
      let error: unknown;
      try {
        parseConfig(rawConfig({ [key]: bad }), "dev");
      } catch (e) {
        error = e;
      }
      expect(error, `${key}=${bad}`).to.be.instanceOf(ConfigError);
      expect((error as ConfigError).problems[0], `${key}=${bad}`).to.include(`${PROJECT_NAME}:${key}`);
    }
  });
});
