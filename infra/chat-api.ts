/**
 * `ChatApi`: the whole WebSocket chat backend as one component. Routes, functions and permissions are derived
 * from the route table in `contract/routes.ts`, so adding a route there is all it takes to deploy it. The
 * constructor reads as the steps it takes; each step's resources are built next door (chat-store.ts,
 * chat-route.ts, fanout-worker.ts, token-sweeper.ts, authorizer.ts, api-account.ts, custom-domain.ts, chat-observability.ts).
 */
import * as aws from "@pulumi/aws";
import * as pulumi from "@pulumi/pulumi";
import { AUTHORIZER, FANOUT_WORKER, ROUTE_SELECTION_EXPRESSION, ROUTES, TOKEN_SWEEPER } from "../contract/routes";
import type { ChatAlarms } from "./alarms";
import { type ApiGatewayAccount, ensureApiGatewayAccount } from "./api-account";
import { type ConnectAuthorizer, createConnectAuthorizer } from "./authorizer";
import { type ChatApiArgs, type ChatApiSettings, withDefaults } from "./chat-api-args";
import { createObservability, type ObservedFunction } from "./chat-observability";
import { ChatRoute } from "./chat-route";
import { createChatStore, type StoreResources } from "./chat-store";
import type { DeployedStore } from "./config";
import { type ChatDomain, createCustomDomain } from "./custom-domain";
import { FanOutWorker } from "./fanout-worker";
import { managementEndpoint, sharedFunctionEnv } from "./function-env";
import type { FunctionContext, ShardQueues } from "./handler-function";
import { TokenSweeper } from "./token-sweeper";

export type { ChatApiArgs } from "./chat-api-args";

export const CHAT_API_TYPE = "websocket-chat:index:ChatApi";

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

/**
 * A WebSocket API Gateway chat backend: the API, one Lambda per route (bundled from `handlers/`), the
 * connection store, least-privilege roles, a throttled, access-logged stage, alarms, and optionally a dashboard
 * and a custom domain.
 *
 * Access logging needs the account-level API Gateway CloudWatch Logs role to be set in the target account and
 * region (API Gateway account settings); without it the stage cannot be created. It is created when missing
 * unless `apiGatewayAccountRole` is `false`.
 * @example
 * ```ts
 * const chat = new ChatApi(PROJECT_NAME, loadConfig());
 * export const url = chat.url;
 * ```
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
  /** Route components by route name (`ROUTES[].name`). */
  public readonly routes: Readonly<Record<string, ChatRoute>>;
  /** Functions by route name (`ROUTES[].name`). */
  public readonly functions: Readonly<Record<string, aws.lambda.Function>>;
  /**
   * The fan-out worker: it posts shards of broadcasts too large for one invocation (broadcast/broadcast.ts),
   * which wait for it in {@link shardQueues}. Not behind any route.
   */
  public readonly fanOutWorker: aws.lambda.Function;
  /** The shard queue and its dead-letter queue (redrive: docs/fan-out.md). */
  public readonly shardQueues: ShardQueues;
  /** Present when `domain` is set. */
  public readonly domain?: ChatDomain;
  /** Present unless `dashboard` is false. */
  public readonly dashboard?: aws.cloudwatch.Dashboard;
  /** Closes idle connections whose token has expired, on a schedule; present with `auth: jwt` and a sweep rate. */
  public readonly tokenSweeper?: aws.lambda.Function;
  /** The `$connect` JWT authorizer; present when `auth` is `jwt`. */
  public readonly authorizer?: ConnectAuthorizer;
  public readonly alarms: ChatAlarms;

  private readonly name: string;
  private readonly settings: ChatApiSettings;

  constructor(name: string, args: ChatApiArgs, opts?: pulumi.ComponentResourceOptions) {
    super(CHAT_API_TYPE, name, {}, opts);
    this.name = name;
    this.settings = withDefaults(args);

    const store = createChatStore(name, this.settings, this);
    const api = this.createApi();
    const context = this.functionContext(api, store);
    const worker = new FanOutWorker(`${name}-worker`, { context }, { parent: this });
    const authorizer = this.createAuthorizer(api);
    const routes = ROUTES.map(
      (route) =>
        new ChatRoute(
          `${name}-route-${route.name}`,
          { route, context, shardQueue: worker.queues, authorizer },
          { parent: this },
        ),
    );
    const sweeper = this.createTokenSweeper(context);
    const account = this.createApiGatewayAccount();
    const stage = this.createStage(api, routes, account?.ready);
    const domain = this.createDomain(api, stage);
    const observability = createObservability(
      name,
      this.settings,
      {
        api,
        stage,
        functions: observedFunctions(routes, worker, authorizer, sweeper),
        store,
        shardQueues: worker.queues,
      },
      this,
    );

    this.api = api;
    this.stage = stage;
    this.apiId = api.id;
    this.store = args.store;
    this.routes = Object.fromEntries(routes.map((route) => [route.route.name, route]));
    this.functions = Object.fromEntries(routes.map((route) => [route.route.name, route.fn]));
    this.fanOutWorker = worker.fn;
    this.shardQueues = worker.queues;
    this.domain = domain;
    this.authorizer = authorizer;
    this.tokenSweeper = sweeper?.fn;
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

  /** What every function shares: the API, the store, the settings and one environment. */
  private functionContext(api: aws.apigatewayv2.Api, store: StoreResources): FunctionContext {
    const { name: apiName, settings } = this;
    return { apiName, api, store, settings, env: sharedFunctionEnv(api.apiEndpoint, store, settings) };
  }

  /** The `$connect` authorizer, when `auth` is `jwt`. */
  private createAuthorizer(api: aws.apigatewayv2.Api): ConnectAuthorizer | undefined {
    const { settings } = this;
    if (settings.auth.mode !== "jwt") return undefined;
    return createConnectAuthorizer(
      this.name,
      {
        api,
        jwt: settings.auth.jwt,
        tokenSource: settings.auth.tokenSource,
        logRetentionDays: settings.logRetentionDays,
        memorySize: settings.memorySize,
        logLevel: settings.logLevel,
        tracing: settings.tracing,
      },
      this,
    );
  }

  /** The account-wide API Gateway CloudWatch Logs role, created when the account has none (unless opted out). */
  private createApiGatewayAccount(): ApiGatewayAccount | undefined {
    return this.settings.apiGatewayAccountRole ? ensureApiGatewayAccount(this.name, this) : undefined;
  }

  private createStage(
    api: aws.apigatewayv2.Api,
    routes: readonly ChatRoute[],
    /** E.g. the account's CloudWatch Logs setting, which access logging needs. */
    after: pulumi.Input<pulumi.Resource[]> = [],
  ): aws.apigatewayv2.Stage {
    const { name, settings } = this;
    const accessLogs = new aws.cloudwatch.LogGroup(
      `${name}-access-logs`,
      { name: `/aws/apigateway/${name}-${pulumi.getStack()}/access`, retentionInDays: settings.logRetentionDays },
      { parent: this },
    );
    const apiRoutes = routes.map((route) => route.apiRoute);
    return new aws.apigatewayv2.Stage(
      `${name}-stage`,
      {
        apiId: api.id,
        name: settings.stage,
        // Without it the stage keeps serving the routes of its last deployment.
        autoDeploy: true,
        defaultRouteSettings: {
          throttlingRateLimit: settings.throttle.rateLimit,
          throttlingBurstLimit: settings.throttle.burstLimit,
          dataTraceEnabled: false,
          // Per-route metrics are billed as custom metrics, and no alarm or dashboard widget reads them.
          detailedMetricsEnabled: false,
        },
        // API Gateway writes these with the account's CloudWatch Logs role (account settings, one per region);
        // the stage cannot be created in an account that has none.
        accessLogSettings: { destinationArn: accessLogs.arn, format: JSON.stringify(ACCESS_LOG_FIELDS) },
      },
      // The first automatic deployment needs the routes in place; an API without routes cannot be deployed.
      { parent: this, dependsOn: pulumi.output(after).apply((extra) => [...apiRoutes, ...extra]) },
    );
  }

  /** Only with `auth: jwt` (without tokens nothing expires) and a sweep rate above 0. */
  private createTokenSweeper(context: FunctionContext): TokenSweeper | undefined {
    const { auth, tokenSweepMinutes } = this.settings;
    if (auth.mode !== "jwt" || tokenSweepMinutes <= 0) return undefined;
    return new TokenSweeper(`${this.name}-sweeper`, { context, everyMinutes: tokenSweepMinutes }, { parent: this });
  }

  private createDomain(api: aws.apigatewayv2.Api, stage: aws.apigatewayv2.Stage): ChatDomain | undefined {
    return this.settings.domain ? createCustomDomain(this.name, this.settings.domain, api, stage, this) : undefined;
  }
}

/** Every function of the stack, each labelled with its route or role name, in the order the alarms list them. */
function observedFunctions(
  routes: readonly ChatRoute[],
  worker: FanOutWorker,
  authorizer: ConnectAuthorizer | undefined,
  sweeper: TokenSweeper | undefined,
): ObservedFunction[] {
  return [
    ...routes.map((route) => ({ label: route.route.name, fn: route.fn })),
    ...(authorizer ? [{ label: AUTHORIZER.name, fn: authorizer.fn }] : []),
    // Large broadcasts finish in the worker: its errors must alarm like a route's.
    { label: FANOUT_WORKER.name, fn: worker.fn },
    ...(sweeper ? [{ label: TOKEN_SWEEPER.name, fn: sweeper.fn }] : []),
  ];
}
