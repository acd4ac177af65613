/**
 * `ChatApi`: the whole WebSocket chat backend as one component. Routes, functions and permissions are derived
 * from the route table in `contract/routes.ts`, so adding a route there is all it takes to deploy it.
 */
import * as aws from "@pulumi/aws";
import * as pulumi from "@pulumi/pulumi";
import {
  AUTHORIZER,
  FANOUT_WORKER,
  ROUTES,
  ROUTE_SELECTION_EXPRESSION,
  type RouteDefinition,
  type WorkerDefinition,
} from "../contract/routes";
import { DEFAULT_MESSAGE_LIMITS, messageLimitsEnv, type MessageLimits } from "../contract/message-limits";
import { DEFAULT_MAX_ROOMS_PER_CONNECTION, ENV } from "../contract/env";
import {
  HASH_KEY,
  MEMBER_ATTRIBUTE,
  ROOM_ATTRIBUTE,
  ROOM_INDEX,
  ROOM_INDEX_PROJECTED,
  TTL_ATTRIBUTE,
} from "../stores/dynamodb-table";
import { LAMBDA_HANDLER, LAMBDA_RUNTIME, handlerArchive } from "./bundle";
import { createAlarms, type ChatAlarms } from "./alarms";
import { createConnectAuthorizer, type ConnectAuthorizer } from "./authorizer";
import { DEFAULT_FANOUT_CONFIG, fanOutEnv, type FanOutConfig } from "./config-fanout";
import type { AuthConfig } from "./config-access";
import { type ApiGatewayAccount, ensureApiGatewayAccount } from "./api-account";
import type {
  AlarmNotifications,
  CustomDomain,
  DeployedStore,
  ExistingNetwork,
  FunctionLogLevel,
  RedisEngine,
} from "./config";
import { createCustomDomain, type ChatDomain } from "./custom-domain";
import { createDashboard, type MetricTargets, type StoreMetricTargets } from "./dashboard";
import { DYNAMODB_ACTIONS, LAMBDA_ASSUME_ROLE_POLICY, functionPolicy } from "./iam";
import { createRedisCluster, type RedisCluster } from "./redis-cluster";
import { type NatGateways, createRedisNetwork, type RedisNetwork } from "./redis-network";
import { createRedisAuthSecret, type RedisAuthSecret } from "./redis-secret";

export const CHAT_API_TYPE = "websocket-chat:index:ChatApi";

/** API Gateway stops waiting for an integration after 29 s; a handler that runs longer has already failed. */
const INTEGRATION_TIMEOUT_SECONDS = 29;
/** Routes that only touch the store do one small request; 10 s still covers a cold start inside a VPC. */
const STORE_ONLY_TIMEOUT_SECONDS = 10;

/**
 * Fields of the stage access log; each value is a `$context` variable that the API Gateway developer guide lists
 * for WebSocket APIs ("Customizing WebSocket API access logs"). `$context.integrationStatus` and
 * `$context.integrationErrorMessage` are HTTP API variables that the WebSocket page only names as equivalents,
 * so the WebSocket spellings `integration.status` and `integration.error` are used.
 */
export const ACCESS_LOG_FIELDS = {
  requestId: "$context.requestId",
  ip: "$context.identity.sourceIp",
  requestTime: "$context.requestTime",
  routeKey: "$context.routeKey",
  eventType: "$context.eventType",
  status: "$context.status",
  connectionId: "$context.connectionId",
  integrationStatus: "$context.integration.status",
  integrationLatency: "$context.integrationLatency",
  errorMessage: "$context.error.message",
  integrationError: "$context.integration.error",
  // The $connect authorizer (auth jwt): who connected, and why a handshake was refused.
  principalId: "$context.authorizer.principalId",
  authorizerStatus: "$context.authorizer.status",
  authorizerError: "$context.authorizer.error",
} as const;

/** Arguments of {@link ChatApi}; `loadConfig()` produces a value of this shape from stack config. */
export interface ChatApiArgs {
  /** Where connections are kept: a DynamoDB table, or ElastiCache Redis in a VPC. */
  readonly store: DeployedStore;
  /** API Gateway stage name; the last path segment of {@link ChatApi.url} and {@link ChatApi.callbackUrl}. */
  readonly stage: string;
  /**
   * Stage-wide throttling, applied to every route. Both must be greater than zero: API Gateway treats a missing
   * value as 0 and then rejects every message.
   */
  readonly throttle: {
    /** Steady-state requests per second. */
    readonly rateLimit: number;
    /** Requests allowed in a burst. */
    readonly burstLimit: number;
  };
  /** Retention of the access log and each function's log group, in days (a value CloudWatch accepts). */
  readonly logRetentionDays: number;
  /** Memory of each function, in MB. */
  readonly memorySize: number;
  /** How long a connection record lives when `$disconnect` never arrives, in seconds. */
  readonly connectionTtlSeconds: number;
  /** Rooms one connection may be in at once. Default {@link DEFAULT_MAX_ROOMS_PER_CONNECTION}. */
  readonly maxRoomsPerConnection?: number;
  /** Redis settings; read only when `store` is `redis`. */
  readonly redis: {
    /** ElastiCache engine. Default `redis`. */
    readonly engine?: RedisEngine;
    /** ElastiCache node type, e.g. `cache.t4g.micro`. */
    readonly nodeType: string;
    /** Engine version: Redis 6.2 or later (`ZRANGE … BYLEX`), e.g. `7.1`; Valkey e.g. `8.0`. */
    readonly engineVersion: string;
    /** AUTH token; generated (and kept secret in state) when absent. */
    readonly authToken?: pulumi.Input<string>;
    /**
     * An existing VPC and private subnets to use. Its subnets need a NAT route, since the functions post to
     * the public `@connections` endpoint. A new VPC with a NAT gateway is created when absent.
     */
    readonly network?: ExistingNetwork;
    /** Read replicas (0-5); above 0 adds automatic failover and Multi-AZ. Default 0. */
    readonly replicas?: number;
    /**
     * NAT gateways of the VPC created when `network` is absent: one, or one per availability zone.
     * Default `perAz` with replicas (a zone outage must not cut the functions off), else `single`.
     */
    readonly natGateways?: NatGateways;
  };
  /**
   * DynamoDB point-in-time recovery and deletion protection, and a 30-day recovery window on the Redis AUTH
   * secret. Default `true` (stack config turns it off for the `dev` stack).
   */
  readonly dataProtection?: boolean;
  /** Pulumi `protect` on the table, the Redis replication group and the Redis AUTH secret. Default `false`. */
  readonly protect?: boolean;
  /** Lambda application log level of every function; the runtime logger follows it. Default `INFO`. */
  readonly logLevel?: FunctionLogLevel;
  /** X-Ray active tracing on every function. Default `false`. */
  readonly tracing?: boolean;
  /**
   * Manage the account's API Gateway CloudWatch Logs role and setting: read the setting, and when none is set
   * create the role and set it (both retained on delete). `false` never touches the account settings.
   * Default `true`.
   */
  readonly apiGatewayAccountRole?: boolean;
  /** Create a CloudWatch dashboard. Default `true`. */
  readonly dashboard?: boolean;
  /** Where alarms notify; by default they notify nobody. */
  readonly alarms?: AlarmNotifications;
  /** Serve {@link ChatApi.url} from this domain instead of the execute-api host. */
  readonly domain?: CustomDomain;
  /** Who may connect: `jwt` puts a Lambda REQUEST authorizer on `$connect` (infra/authorizer.ts). Default none. */
  readonly auth?: AuthConfig;
  /** Per-connection rate limit and largest `data` of the message routes. Default {@link DEFAULT_MESSAGE_LIMITS}. */
  readonly limits?: MessageLimits;
  /** Broadcast fan-out settings and the posting functions' memory. Default {@link DEFAULT_FANOUT_CONFIG}. */
  readonly fanOut?: FanOutConfig;
}

type StoreResources =
  | { readonly kind: "dynamodb"; readonly table: aws.dynamodb.Table }
  | {
      readonly kind: "redis";
      readonly network: RedisNetwork;
      readonly cluster: RedisCluster;
      readonly authSecret: RedisAuthSecret;
    };

interface RouteFunction {
  readonly route: RouteDefinition;
  readonly fn: aws.lambda.Function;
}

/**
 * A WebSocket API Gateway chat backend: the API, one Lambda per route (bundled from `handlers/`), the
 * connection store, least-privilege roles, a throttled, access-logged stage, alarms, and optionally a dashboard
 * and a custom domain.
 *
 * Access logging needs the account-level API Gateway CloudWatch Logs role to be set in the target account and
 * region (API Gateway account settings); without it the stage cannot be created. It is created when missing
 * unless `apiGatewayAccountRole` is `false`.
 */
export class ChatApi extends pulumi.ComponentResource {
  /** Client URL: `wss://{domain}` with a custom domain, else `wss://{apiId}.execute-api.{region}.amazonaws.com/{stage}`. */
  public readonly url: pulumi.Output<string>;
  /** `@connections` management endpoint: `https://{apiId}.execute-api.{region}.amazonaws.com/{stage}`. */
  public readonly callbackUrl: pulumi.Output<string>;
  public readonly apiId: pulumi.Output<string>;
  public readonly store: DeployedStore;
  /** The DynamoDB table name, or the Redis primary endpoint address. */
  public readonly storeResource: pulumi.Output<string>;
  public readonly api: aws.apigatewayv2.Api;
  public readonly stage: aws.apigatewayv2.Stage;
  /** Functions by route name (`ROUTES[].name`). */
  public readonly functions: Readonly<Record<string, aws.lambda.Function>>;
  /** Present when `domain` is set. */
  public readonly domain?: ChatDomain;
  /** Present unless `dashboard` is false. */
  public readonly dashboard?: aws.cloudwatch.Dashboard;
  /** The `$connect` JWT authorizer; present when `auth` is `jwt`. */
  public readonly authorizer?: ConnectAuthorizer;
  public readonly alarms: ChatAlarms;

  private readonly name: string;
  private readonly args: ChatApiArgs;
  private worker?: aws.lambda.Function;

  /**
   * The fan-out worker: `sendmessage` invokes it asynchronously with shards of broadcasts too large for one
   * invocation (broadcast/broadcast.ts). Not behind any route.
   */
  public get fanOutWorker(): aws.lambda.Function {
    if (!this.worker) throw new Error("the fan-out worker is created with the functions");
    return this.worker;
  }

  constructor(name: string, args: ChatApiArgs, opts?: pulumi.ComponentResourceOptions) {
    super(CHAT_API_TYPE, name, {}, opts);
    this.name = name;
    this.args = args;

    const store = this.createStore();
    const api = this.createApi();
    const functions = this.createFunctions(api, store);
    const authorizer = this.createAuthorizer(api);
    const routes = this.createRoutes(api, functions, authorizer);
    const account = this.createApiGatewayAccount();
    const stage = this.createStage(api, routes, account?.ready);
    const domain = this.createDomain(api, stage);
    const observed = [
      ...functions.map(({ route, fn }) => ({ label: route.name, fn })),
      ...(authorizer ? [{ label: AUTHORIZER.name, fn: authorizer.fn }] : []),
      // Large broadcasts finish in the worker: its errors must alarm like a route's.
      { label: FANOUT_WORKER.name, fn: this.fanOutWorker },
    ];
    const observability = this.createObservability(api, stage, observed, store);

    this.api = api;
    this.stage = stage;
    this.apiId = api.id;
    this.store = args.store;
    this.functions = Object.fromEntries(functions.map(({ route, fn }) => [route.name, fn]));
    this.domain = domain;
    this.authorizer = authorizer;
    this.dashboard = observability.dashboard;
    this.alarms = observability.alarms;
    // Built from the stage resource so the URLs only resolve once the stage exists. Behind a custom domain only
    // the client URL changes: callbackUrl (and the functions' CALLBACK_URL) stay on execute-api.
    this.url = domain ? domain.url : pulumi.interpolate`${api.apiEndpoint}/${stage.name}`;
    this.callbackUrl = pulumi.interpolate`${managementEndpoint(api.apiEndpoint)}/${stage.name}`;
    this.storeResource = store.kind === "dynamodb" ? store.table.name : store.cluster.host;

    this.registerOutputs({
      url: this.url,
      callbackUrl: this.callbackUrl,
      apiId: this.apiId,
      store: this.store,
      storeResource: this.storeResource,
    });
  }

  private createStore(): StoreResources {
    const { name, args } = this;
    if (args.store === "dynamodb") {
      const table = new aws.dynamodb.Table(
        `${name}-connections`,
        {
          billingMode: "PAY_PER_REQUEST",
          hashKey: HASH_KEY,
          // The layout of stores/dynamodb-table.ts: connection and membership items, and the room index.
          attributes: [
            { name: HASH_KEY, type: "S" },
            { name: ROOM_ATTRIBUTE, type: "S" },
            { name: MEMBER_ATTRIBUTE, type: "S" },
          ],
          globalSecondaryIndexes: [
            {
              name: ROOM_INDEX,
              keySchemas: [
                { attributeName: ROOM_ATTRIBUTE, keyType: "HASH" },
                { attributeName: MEMBER_ATTRIBUTE, keyType: "RANGE" },
              ],
              projectionType: "INCLUDE",
              nonKeyAttributes: [...ROOM_INDEX_PROJECTED],
            },
          ],
          serverSideEncryption: { enabled: true },
          // Connections whose $disconnect never ran expire on their own (pitfall: $disconnect is best effort).
          ttl: { attributeName: TTL_ATTRIBUTE, enabled: true },
          pointInTimeRecovery: { enabled: this.dataProtection },
          deletionProtectionEnabled: this.dataProtection,
        },
        { parent: this, protect: args.protect ?? false },
      );
      return { kind: "dynamodb", table };
    }
    const replicas = args.redis.replicas ?? 0;
    const network = createRedisNetwork(
      name,
      args.redis.network,
      args.redis.natGateways ?? (replicas > 0 ? "perAz" : "single"),
      this,
    );
    const cluster = createRedisCluster(
      name,
      {
        engine: args.redis.engine ?? "redis",
        nodeType: args.redis.nodeType,
        engineVersion: args.redis.engineVersion,
        authToken: args.redis.authToken,
        network,
        replicas,
        protect: args.protect ?? false,
      },
      this,
    );
    const authSecret = createRedisAuthSecret(
      name,
      { authToken: cluster.authToken, recoverable: this.dataProtection, protect: args.protect ?? false },
      this,
    );
    return { kind: "redis", network, cluster, authSecret };
  }

  private createApi(): aws.apigatewayv2.Api {
    return new aws.apigatewayv2.Api(
      `${this.name}-api`,
      {
        protocolType: "WEBSOCKET",
        routeSelectionExpression: ROUTE_SELECTION_EXPRESSION,
        description: `WebSocket chat (${pulumi.getStack()})`,
      },
      { parent: this },
    );
  }

  private createFunctions(api: aws.apigatewayv2.Api, store: StoreResources): RouteFunction[] {
    const { args } = this;
    // Every function gets the same store location so the runtime's env contract holds for all of them; only
    // functions that use the store get the Redis token's secret (and the right to read it).
    const sharedEnv: Record<string, pulumi.Input<string>> = {
      [ENV.STORE]: args.store,
      [ENV.CALLBACK_URL]: pulumi.interpolate`${managementEndpoint(api.apiEndpoint)}/${args.stage}`,
      [ENV.CONNECTION_TTL_SECONDS]: String(args.connectionTtlSeconds),
      [ENV.MAX_ROOMS_PER_CONNECTION]: String(args.maxRoomsPerConnection ?? DEFAULT_MAX_ROOMS_PER_CONNECTION),
      ...messageLimitsEnv(args.limits ?? DEFAULT_MESSAGE_LIMITS),
      ...fanOutEnv(args.fanOut ?? DEFAULT_FANOUT_CONFIG),
      ...(store.kind === "dynamodb"
        ? { [ENV.TABLE_NAME]: store.table.name }
        : {
            [ENV.REDIS_HOST]: store.cluster.host,
            [ENV.REDIS_PORT]: String(store.cluster.port),
            [ENV.REDIS_TLS]: "true",
          }),
    };
    const worker = this.createFunction(FANOUT_WORKER, api, store, sharedEnv);
    this.worker = worker;
    return ROUTES.map((route) => ({ route, fn: this.createFunction(route, api, store, sharedEnv, worker) }));
  }

  /**
   * A route's function (invoked by API Gateway from that route only), or a worker (no API Gateway permission;
   * its own timeout). Functions that post broadcasts get the fan-out memory: their CPU bounds posts per second.
   */
  private createFunction(
    route: RouteDefinition | WorkerDefinition,
    api: aws.apigatewayv2.Api,
    store: StoreResources,
    sharedEnv: Record<string, pulumi.Input<string>>,
    fanOutWorker?: aws.lambda.Function,
  ): aws.lambda.Function {
    const { name, args } = this;
    const prefix = `${name}-${route.name}`;
    const routeKey = "routeKey" in route ? route.routeKey : undefined;
    const invokesWorker = "invokesFanOutWorker" in route && route.invokesFanOutWorker === true;
    if (invokesWorker && !fanOutWorker)
      throw new Error(`route ${routeKey} invokes the fan-out worker, which does not exist yet`);
    const fanOut = args.fanOut ?? DEFAULT_FANOUT_CONFIG;
    const posts = invokesWorker || routeKey === undefined;
    const usesStore = route.storeAccess.length > 0;
    // Only what must reach Redis goes into the VPC; the rest keeps fast cold starts and direct egress.
    const network = store.kind === "redis" && usesStore ? store.network : undefined;

    const logGroup = new aws.cloudwatch.LogGroup(
      `${prefix}-logs`,
      { name: `/aws/lambda/${name}-${pulumi.getStack()}-${route.name}`, retentionInDays: args.logRetentionDays },
      { parent: this },
    );

    const role = new aws.iam.Role(
      `${prefix}-role`,
      {
        assumeRolePolicy: JSON.stringify(LAMBDA_ASSUME_ROLE_POLICY),
        description: `Chat ${routeKey ?? route.name} function`,
      },
      { parent: this },
    );
    const authSecret = store.kind === "redis" && usesStore ? store.authSecret : undefined;
    const policyDocument = pulumi
      .all([
        api.executionArn,
        logGroup.arn,
        store.kind === "dynamodb" ? store.table.arn : undefined,
        authSecret?.arn,
        invokesWorker ? fanOutWorker!.arn : undefined,
      ])
      .apply(([apiExecutionArn, logGroupArn, tableArn, redisAuthSecretArn, fanOutWorkerArn]) =>
        JSON.stringify(
          functionPolicy(route, {
            store: args.store,
            tableArn,
            apiExecutionArn,
            stage: args.stage,
            logGroupArn,
            inVpc: network !== undefined,
            redisAuthSecretArn,
            tracing: args.tracing ?? false,
            fanOutWorkerArn,
          }),
        ),
      );
    const policy = new aws.iam.RolePolicy(
      `${prefix}-policy`,
      { role: role.id, policy: policyDocument },
      { parent: this },
    );

    const variables = { ...sharedEnv };
    // The ARN, never the token: environment variables are readable by anyone who may read the function's
    // configuration. The runtime fetches the token once per container (runtime/secrets.ts).
    if (authSecret) variables[ENV.REDIS_AUTH_SECRET_ARN] = authSecret.arn;
    if (invokesWorker) variables[ENV.FANOUT_WORKER_FUNCTION] = fanOutWorker!.name;
    const logLevel = args.logLevel ?? "INFO";

    const fn = new aws.lambda.Function(
      prefix,
      {
        description:
          routeKey === undefined
            ? `Chat ${route.name} (no route; invoked by other functions)`
            : `Chat ${routeKey} route`,
        runtime: LAMBDA_RUNTIME,
        architectures: ["arm64"],
        handler: LAMBDA_HANDLER,
        code: handlerArchive(route.module, args.store),
        role: role.arn,
        memorySize: posts ? fanOut.memorySize : args.memorySize,
        timeout:
          "timeoutSeconds" in route
            ? route.timeoutSeconds
            : route.manageConnections
              ? INTEGRATION_TIMEOUT_SECONDS
              : STORE_ONLY_TIMEOUT_SECONDS,
        environment: { variables },
        // Lambda sets AWS_LAMBDA_LOG_LEVEL from applicationLogLevel, which the runtime logger honours. The
        // platform (START/END/REPORT) level has no ERROR: WARN is its quietest.
        loggingConfig: {
          logFormat: "JSON",
          logGroup: logGroup.name,
          applicationLogLevel: logLevel,
          systemLogLevel: logLevel === "ERROR" ? "WARN" : logLevel,
        },
        tracingConfig: args.tracing ? { mode: "Active" } : undefined,
        vpcConfig: network
          ? { subnetIds: network.privateSubnetIds, securityGroupIds: [network.functionsSecurityGroup.id] }
          : undefined,
      },
      {
        parent: this,
        // Lambda checks the ENI permissions when it creates a VPC function, and the first invocation should
        // already have its policy and a route out.
        // The cold start reads the token, so its secret version must exist first.
        dependsOn: [logGroup, policy, ...(network?.egressReady ?? []), ...(authSecret ? [authSecret.version] : [])],
      },
    );

    if (routeKey === undefined) {
      // A worker's shard must run once: Lambda would retry a failed asynchronous invocation (twice by default)
      // and post the whole shard again. A shard older than 5 minutes is no longer a chat message worth sending.
      new aws.lambda.FunctionEventInvokeConfig(
        `${prefix}-async`,
        { functionName: fn.name, maximumRetryAttempts: 0, maximumEventAgeInSeconds: 300 },
        { parent: this },
      );
      return fn;
    }
    new aws.lambda.Permission(
      `${prefix}-invoke`,
      {
        action: "lambda:InvokeFunction",
        function: fn.name,
        principal: "apigateway.amazonaws.com",
        sourceArn: pulumi.interpolate`${api.executionArn}/${args.stage}/${routeKey}`,
      },
      { parent: this },
    );
    return fn;
  }

  /** The `$connect` authorizer, when `auth` is `jwt`. */
  private createAuthorizer(api: aws.apigatewayv2.Api): ConnectAuthorizer | undefined {
    const { args } = this;
    if (args.auth?.mode !== "jwt") return undefined;
    return createConnectAuthorizer(
      this.name,
      {
        api,
        jwt: args.auth.jwt,
        tokenSource: args.auth.tokenSource,
        logRetentionDays: args.logRetentionDays,
        memorySize: args.memorySize,
        logLevel: args.logLevel,
        tracing: args.tracing,
      },
      this,
    );
  }

  private createRoutes(
    api: aws.apigatewayv2.Api,
    functions: readonly RouteFunction[],
    authorizer?: ConnectAuthorizer,
  ): aws.apigatewayv2.Route[] {
    return functions.map(({ route, fn }) => {
      const integration = new aws.apigatewayv2.Integration(
        `${this.name}-${route.name}-integration`,
        {
          apiId: api.id,
          integrationType: "AWS_PROXY",
          integrationMethod: "POST",
          integrationUri: fn.invokeArn,
        },
        { parent: this },
      );
      return new aws.apigatewayv2.Route(
        `${this.name}-${route.name}-route`,
        {
          apiId: api.id,
          routeKey: route.routeKey,
          target: pulumi.interpolate`integrations/${integration.id}`,
          // Only `$connect` can carry an authorizer on a WebSocket API; every other route is NONE.
          ...(authorizer && route.routeKey === AUTHORIZER.routeKey
            ? { authorizationType: "CUSTOM", authorizerId: authorizer.authorizer.id }
            : { authorizationType: "NONE" }),
        },
        { parent: this },
      );
    });
  }

  private createStage(
    api: aws.apigatewayv2.Api,
    routes: readonly aws.apigatewayv2.Route[],
    /** E.g. the account's CloudWatch Logs setting, which access logging needs. */
    after: pulumi.Input<pulumi.Resource[]> = [],
  ): aws.apigatewayv2.Stage {
    const { name, args } = this;
    const accessLogs = new aws.cloudwatch.LogGroup(
      `${name}-access-logs`,
      { name: `/aws/apigateway/${name}-${pulumi.getStack()}/access`, retentionInDays: args.logRetentionDays },
      { parent: this },
    );
    return new aws.apigatewayv2.Stage(
      `${name}-stage`,
      {
        apiId: api.id,
        name: args.stage,
        // Without it the stage keeps serving the routes of its last deployment.
        autoDeploy: true,
        defaultRouteSettings: {
          throttlingRateLimit: args.throttle.rateLimit,
          throttlingBurstLimit: args.throttle.burstLimit,
          dataTraceEnabled: false,
          // Per-route metrics are billed as custom metrics, and no alarm or dashboard widget reads them.
          detailedMetricsEnabled: false,
        },
        // API Gateway writes these with the account's CloudWatch Logs role (account settings, one per region);
        // the stage cannot be created in an account that has none.
        accessLogSettings: { destinationArn: accessLogs.arn, format: JSON.stringify(ACCESS_LOG_FIELDS) },
      },
      // The first automatic deployment needs the routes in place; an API without routes cannot be deployed.
      { parent: this, dependsOn: pulumi.output(after).apply((extra) => [...routes, ...extra]) },
    );
  }

  /** The account-wide API Gateway CloudWatch Logs role, created when the account has none (unless opted out). */
  private createApiGatewayAccount(): ApiGatewayAccount | undefined {
    return this.args.apiGatewayAccountRole === false ? undefined : ensureApiGatewayAccount(this.name, this);
  }

  private createDomain(api: aws.apigatewayv2.Api, stage: aws.apigatewayv2.Stage): ChatDomain | undefined {
    return this.args.domain ? createCustomDomain(this.name, this.args.domain, api, stage, this) : undefined;
  }

  /**
   * Alarms always (notifying the configured topic, if any); the dashboard unless turned off. `functions` are
   * every function of the stack, each with a short label (its route or role name).
   */
  private createObservability(
    api: aws.apigatewayv2.Api,
    stage: aws.apigatewayv2.Stage,
    functions: readonly { readonly label: string; readonly fn: aws.lambda.Function }[],
    store: StoreResources,
  ): { alarms: ChatAlarms; dashboard?: aws.cloudwatch.Dashboard } {
    const { name, args } = this;
    const storeTargets: pulumi.Output<StoreMetricTargets> =
      store.kind === "dynamodb"
        ? store.table.name.apply((tableName) => ({
            kind: "dynamodb" as const,
            tableName,
            operations: dynamoDbOperations(),
          }))
        : pulumi
            .all([store.cluster.replicationGroup.id, store.cluster.replicationGroup.memberClusters])
            .apply(([replicationGroupId, cacheClusterIds]) => ({
              kind: "redis" as const,
              replicationGroupId,
              cacheClusterIds: [...(cacheClusterIds ?? [])].sort(),
            }));
    const targets: pulumi.Output<MetricTargets> = pulumi
      .all([
        aws.getRegionOutput({}, { parent: this }).region,
        api.id,
        stage.name,
        pulumi.all(functions.map(({ fn }) => fn.name)),
        storeTargets,
      ])
      .apply(([region, apiId, stageName, functionNames, storeMetrics]) => ({
        region,
        apiId,
        stage: stageName,
        functions: functions.map(({ label }, i) => ({ label, functionName: functionNames[i]! })),
        store: storeMetrics,
      }));

    const alarms = createAlarms(
      name,
      args.alarms ?? {},
      { functionLabels: functions.map(({ label }) => label), store: store.kind },
      targets,
      this,
    );
    const dashboard =
      (args.dashboard ?? true)
        ? createDashboard(
            name,
            targets,
            alarms.alarms.map((alarm) => alarm.arn),
            this,
          )
        : undefined;
    return { alarms, dashboard };
  }

  private get dataProtection(): boolean {
    return this.args.dataProtection ?? true;
  }
}

/** The DynamoDB operations the route table's functions call, as CloudWatch names them (`Operation` dimension). */
function dynamoDbOperations(): string[] {
  const actions = ROUTES.flatMap((route) => route.storeAccess.flatMap((access) => DYNAMODB_ACTIONS[access] ?? []));
  return [...new Set(actions.map((action) => action.replace(/^dynamodb:/, "")))].sort();
}

/** The https twin of the API's `wss://` endpoint: where `@connections` lives, whatever custom domain fronts it. */
function managementEndpoint(apiEndpoint: pulumi.Input<string>): pulumi.Output<string> {
  return pulumi.output(apiEndpoint).apply((endpoint) => {
    if (!endpoint.startsWith("wss://")) throw new Error(`expected a wss:// API endpoint, got ${endpoint}`);
    return `https://${endpoint.slice("wss://".length)}`;
  });
}
