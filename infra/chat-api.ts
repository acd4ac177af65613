/**
 * `ChatApi`: the whole WebSocket chat backend as one component. Routes, functions and permissions are derived
 * from the route table in `functions/routes.ts`, so adding a route there is all it takes to deploy it.
 */
import * as aws from "@pulumi/aws";
import * as pulumi from "@pulumi/pulumi";
import { ROUTES, ROUTE_SELECTION_EXPRESSION, type RouteDefinition } from "../functions/routes";
import { ENV } from "../functions/runtime/env";
import { HASH_KEY, TTL_ATTRIBUTE } from "../stores/dynamodb-table";
import { LAMBDA_HANDLER, LAMBDA_RUNTIME, handlerArchive } from "./bundle";
import type { DeployedStore, ExistingNetwork } from "./config";
import { LAMBDA_ASSUME_ROLE_POLICY, functionPolicy } from "./iam";
import { createRedisCluster, type RedisCluster } from "./redis-cluster";
import { createRedisNetwork, type RedisNetwork } from "./redis-network";

export const CHAT_API_TYPE = "websocket-chat:index:ChatApi";

/** API Gateway stops waiting for an integration after 29 s; a handler that runs longer has already failed. */
const INTEGRATION_TIMEOUT_SECONDS = 29;
/** Routes that only touch the store do one small request; 10 s still covers a cold start inside a VPC. */
const STORE_ONLY_TIMEOUT_SECONDS = 10;

/** Fields of the stage access log; each value is an API Gateway `$context` variable. */
export const ACCESS_LOG_FIELDS = {
  requestId: "$context.requestId",
  ip: "$context.identity.sourceIp",
  requestTime: "$context.requestTime",
  routeKey: "$context.routeKey",
  eventType: "$context.eventType",
  status: "$context.status",
  connectionId: "$context.connectionId",
  integrationStatus: "$context.integrationStatus",
  integrationLatency: "$context.integrationLatency",
  errorMessage: "$context.error.message",
  integrationErrorMessage: "$context.integrationErrorMessage",
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
  /** Redis settings; read only when `store` is `redis`. */
  readonly redis: {
    /** ElastiCache node type, e.g. `cache.t4g.micro`. */
    readonly nodeType: string;
    /** Redis engine version, e.g. `7.1`. */
    readonly engineVersion: string;
    /** AUTH token; generated (and kept secret in state) when absent. */
    readonly authToken?: pulumi.Input<string>;
    /**
     * An existing VPC and private subnets to use. Its subnets need a NAT route, since the functions post to
     * the public `@connections` endpoint. A new VPC with a NAT gateway is created when absent.
     */
    readonly network?: ExistingNetwork;
  };
}

type StoreResources =
  | { readonly kind: "dynamodb"; readonly table: aws.dynamodb.Table }
  | { readonly kind: "redis"; readonly network: RedisNetwork; readonly cluster: RedisCluster };

interface RouteFunction {
  readonly route: RouteDefinition;
  readonly fn: aws.lambda.Function;
}

/**
 * A WebSocket API Gateway chat backend: the API, one Lambda per route (bundled from `functions/`), the
 * connection store, least-privilege roles and a throttled, access-logged stage.
 *
 * Access logging needs the account-level API Gateway CloudWatch Logs role to be set in the target account and
 * region (API Gateway account settings); without it the stage cannot be created.
 */
export class ChatApi extends pulumi.ComponentResource {
  /** Client URL: `wss://{apiId}.execute-api.{region}.amazonaws.com/{stage}`. */
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

  private readonly name: string;
  private readonly args: ChatApiArgs;

  constructor(name: string, args: ChatApiArgs, opts?: pulumi.ComponentResourceOptions) {
    super(CHAT_API_TYPE, name, {}, opts);
    this.name = name;
    this.args = args;

    const store = this.createStore();
    const api = this.createApi();
    const functions = this.createFunctions(api, store);
    const routes = this.createRoutes(api, functions);
    const stage = this.createStage(api, routes);

    this.api = api;
    this.stage = stage;
    this.apiId = api.id;
    this.store = args.store;
    this.functions = Object.fromEntries(functions.map(({ route, fn }) => [route.name, fn]));
    // Built from the stage resource so the URLs only resolve once the stage exists.
    this.url = pulumi.interpolate`${api.apiEndpoint}/${stage.name}`;
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
          attributes: [{ name: HASH_KEY, type: "S" }],
          serverSideEncryption: { enabled: true },
          // Connections whose $disconnect never ran expire on their own (pitfall: $disconnect is best effort).
          ttl: { attributeName: TTL_ATTRIBUTE, enabled: true },
        },
        { parent: this },
      );
      return { kind: "dynamodb", table };
    }
    const network = createRedisNetwork(name, args.redis.network, this);
    const cluster = createRedisCluster(
      name,
      {
        nodeType: args.redis.nodeType,
        engineVersion: args.redis.engineVersion,
        authToken: args.redis.authToken,
        network,
      },
      this,
    );
    return { kind: "redis", network, cluster };
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
    // functions that use the store get the Redis token.
    const sharedEnv: Record<string, pulumi.Input<string>> = {
      [ENV.STORE]: args.store,
      [ENV.CALLBACK_URL]: pulumi.interpolate`${managementEndpoint(api.apiEndpoint)}/${args.stage}`,
      [ENV.CONNECTION_TTL_SECONDS]: String(args.connectionTtlSeconds),
      ...(store.kind === "dynamodb"
        ? { [ENV.TABLE_NAME]: store.table.name }
        : {
            [ENV.REDIS_HOST]: store.cluster.host,
            [ENV.REDIS_PORT]: String(store.cluster.port),
            [ENV.REDIS_TLS]: "true",
          }),
    };
    return ROUTES.map((route) => ({ route, fn: this.createFunction(route, api, store, sharedEnv) }));
  }

  private createFunction(
    route: RouteDefinition,
    api: aws.apigatewayv2.Api,
    store: StoreResources,
    sharedEnv: Record<string, pulumi.Input<string>>,
  ): aws.lambda.Function {
    const { name, args } = this;
    const prefix = `${name}-${route.name}`;
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
      { assumeRolePolicy: JSON.stringify(LAMBDA_ASSUME_ROLE_POLICY), description: `Chat ${route.routeKey} function` },
      { parent: this },
    );
    const policyDocument = pulumi
      .all([api.executionArn, logGroup.arn, store.kind === "dynamodb" ? store.table.arn : undefined])
      .apply(([apiExecutionArn, logGroupArn, tableArn]) =>
        JSON.stringify(
          functionPolicy(route, {
            store: args.store,
            tableArn,
            apiExecutionArn,
            stage: args.stage,
            logGroupArn,
            inVpc: network !== undefined,
          }),
        ),
      );
    const policy = new aws.iam.RolePolicy(`${prefix}-policy`, { role: role.id, policy: policyDocument }, { parent: this });

    const variables = { ...sharedEnv };
    if (store.kind === "redis" && usesStore) variables[ENV.REDIS_AUTH_TOKEN] = store.cluster.authToken;

    const fn = new aws.lambda.Function(
      prefix,
      {
        description: `Chat ${route.routeKey} route`,
        runtime: LAMBDA_RUNTIME,
        architectures: ["arm64"],
        handler: LAMBDA_HANDLER,
        code: handlerArchive(route.module),
        role: role.arn,
        memorySize: args.memorySize,
        timeout: route.manageConnections ? INTEGRATION_TIMEOUT_SECONDS : STORE_ONLY_TIMEOUT_SECONDS,
        environment: { variables },
        loggingConfig: { logFormat: "JSON", logGroup: logGroup.name },
        vpcConfig: network
          ? { subnetIds: network.privateSubnetIds, securityGroupIds: [network.functionsSecurityGroup.id] }
          : undefined,
      },
      {
        parent: this,
        // Lambda checks the ENI permissions when it creates a VPC function, and the first invocation should
        // already have its policy and a route out.
        dependsOn: [logGroup, policy, ...(network?.egressReady ?? [])],
      },
    );

    new aws.lambda.Permission(
      `${prefix}-invoke`,
      {
        action: "lambda:InvokeFunction",
        function: fn.name,
        principal: "apigateway.amazonaws.com",
        sourceArn: pulumi.interpolate`${api.executionArn}/${args.stage}/${route.routeKey}`,
      },
      { parent: this },
    );
    return fn;
  }

  private createRoutes(api: aws.apigatewayv2.Api, functions: readonly RouteFunction[]): aws.apigatewayv2.Route[] {
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
        },
        { parent: this },
      );
    });
  }

  private createStage(api: aws.apigatewayv2.Api, routes: readonly aws.apigatewayv2.Route[]): aws.apigatewayv2.Stage {
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
          detailedMetricsEnabled: true,
        },
        // API Gateway writes these with the account's CloudWatch Logs role (account settings, one per region);
        // the stage cannot be created in an account that has none.
        accessLogSettings: { destinationArn: accessLogs.arn, format: JSON.stringify(ACCESS_LOG_FIELDS) },
      },
      // The first automatic deployment needs the routes in place; an API without routes cannot be deployed.
      { parent: this, dependsOn: [...routes] },
    );
  }
}

/** The https twin of the API's `wss://` endpoint: where `@connections` lives, whatever custom domain fronts it. */
function managementEndpoint(apiEndpoint: pulumi.Input<string>): pulumi.Output<string> {
  return pulumi.output(apiEndpoint).apply((endpoint) => {
    if (!endpoint.startsWith("wss://")) throw new Error(`expected a wss:// API endpoint, got ${endpoint}`);
    return `https://${endpoint.slice("wss://".length)}`;
  });
}
