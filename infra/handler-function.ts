/**
 * One handler's Lambda function with what it needs to run: its log group, its own least-privilege role and
 * policy (iam.ts), and its environment. Shared by the route components (chat-route.ts) and the fan-out worker
 * (fanout-worker.ts); what connects a function to API Gateway, or to its callers, is theirs.
 */
import * as aws from "@pulumi/aws";
import * as pulumi from "@pulumi/pulumi";
import { ENV } from "../contract/env";
import { FANOUT_WORKER, type RouteDefinition, type WorkerDefinition } from "../contract/routes";
import { handlerArchive, LAMBDA_HANDLER, LAMBDA_RUNTIME } from "./bundle";
import type { ChatApiSettings } from "./chat-api-args";
import type { StoreResources } from "./chat-store";
import type { FunctionEnv } from "./function-env";
import { functionPolicy, LAMBDA_ASSUME_ROLE_POLICY } from "./iam";
import type { RedisNetwork } from "./redis-network";
import type { RedisAuthSecret } from "./redis-secret";

/** API Gateway stops waiting for an integration after 29 s; a handler that runs longer has already failed. */
const INTEGRATION_TIMEOUT_SECONDS = 29;
/** Routes that only touch the store do one small request; 10 s still covers a cold start inside a VPC. */
const STORE_ONLY_TIMEOUT_SECONDS = 10;

/** What every function of one `ChatApi` shares. */
export interface FunctionContext {
  /** The `ChatApi`'s name: a function's resources are named `{apiName}-{definition.name}…`. */
  readonly apiName: string;
  readonly api: aws.apigatewayv2.Api;
  readonly store: StoreResources;
  readonly settings: ChatApiSettings;
  /** The environment of every function (function-env.ts). */
  readonly env: FunctionEnv;
}

/** A route's handler, or a worker (no route; its own timeout). */
export type HandlerDefinition = RouteDefinition | WorkerDefinition;

export interface HandlerFunctionArgs {
  readonly definition: HandlerDefinition;
  readonly context: FunctionContext;
  /**
   * The queue shards of large broadcasts go through: required when the route hands shards to the worker, and
   * for the worker itself (it consumes the queue, queues failed ids again and dead-letters the rest).
   */
  readonly shardQueue?: ShardQueues;
}

/** The fan-out worker's shard queue and its dead-letter queue (fanout-worker.ts). */
export interface ShardQueues {
  readonly queue: aws.sqs.Queue;
  readonly deadLetterQueue: aws.sqs.Queue;
}

export interface HandlerFunction {
  readonly logGroup: aws.cloudwatch.LogGroup;
  readonly role: aws.iam.Role;
  readonly policy: aws.iam.RolePolicy;
  readonly fn: aws.lambda.Function;
}

/** Where a function runs and what it may reach, derived once from its definition and the store. */
interface Placement {
  readonly prefix: string;
  readonly routeKey?: string;
  readonly invokesWorker: boolean;
  /** The fan-out worker: consumes the shard queue. */
  readonly consumesShards: boolean;
  /** Present when the function must reach Redis: it runs in the VPC. */
  readonly network?: RedisNetwork;
  /** Present when the function reads the Redis AUTH token. */
  readonly authSecret?: RedisAuthSecret;
}

/**
 * The function of `args.definition` and its log group, role and policy, every one created with `opts` (the
 * caller's parent and aliases). Functions that post broadcasts get the fan-out memory: their CPU bounds posts
 * per second.
 */
export function createHandlerFunction(args: HandlerFunctionArgs, opts: pulumi.CustomResourceOptions): HandlerFunction {
  const placement = placementOf(args);
  const { prefix, routeKey } = placement;
  const { apiName, settings } = args.context;
  const logGroup = new aws.cloudwatch.LogGroup(
    `${prefix}-logs`,
    {
      name: `/aws/lambda/${apiName}-${pulumi.getStack()}-${args.definition.name}`,
      retentionInDays: settings.logRetentionDays,
    },
    opts,
  );
  const role = new aws.iam.Role(
    `${prefix}-role`,
    {
      assumeRolePolicy: JSON.stringify(LAMBDA_ASSUME_ROLE_POLICY),
      description: `Chat ${routeKey ?? args.definition.name} function`,
    },
    opts,
  );
  const policy = new aws.iam.RolePolicy(
    `${prefix}-policy`,
    { role: role.id, policy: policyDocument(args, placement, logGroup) },
    opts,
  );
  const fn = new aws.lambda.Function(prefix, functionArgs(args, placement, logGroup, role), {
    ...opts,
    // Lambda checks the ENI permissions when it creates a VPC function, and the first invocation should
    // already have its policy and a route out.
    // The cold start reads the token, so its secret version must exist first.
    dependsOn: [
      logGroup,
      policy,
      ...(placement.network?.egressReady ?? []),
      ...(placement.authSecret ? [placement.authSecret.version] : []),
    ],
  });
  return { logGroup, role, policy, fn };
}

function placementOf({ definition, context, shardQueue }: HandlerFunctionArgs): Placement {
  const routeKey = "routeKey" in definition ? definition.routeKey : undefined;
  const invokesWorker = "invokesFanOutWorker" in definition && definition.invokesFanOutWorker === true;
  const consumesShards = definition.name === FANOUT_WORKER.name;
  if ((invokesWorker || consumesShards) && !shardQueue)
    throw new Error(`function ${routeKey ?? definition.name} needs the fan-out shard queue, which does not exist yet`);
  const { store } = context;
  const usesStore = definition.storeAccess.length > 0;
  return {
    prefix: `${context.apiName}-${definition.name}`,
    routeKey,
    invokesWorker,
    consumesShards,
    // Only what must reach Redis goes into the VPC; the rest keeps fast cold starts and direct egress.
    network: store.kind === "redis" && usesStore ? store.network : undefined,
    authSecret: store.kind === "redis" && usesStore ? store.authSecret : undefined,
  };
}

function policyDocument(
  { definition, context, shardQueue }: HandlerFunctionArgs,
  placement: Placement,
  logGroup: aws.cloudwatch.LogGroup,
): pulumi.Output<string> {
  const { api, store, settings } = context;
  return pulumi
    .all([
      api.executionArn,
      logGroup.arn,
      store.kind === "dynamodb" ? store.table.arn : undefined,
      placement.authSecret?.arn,
      placement.invokesWorker || placement.consumesShards ? shardQueue!.queue.arn : undefined,
      placement.consumesShards ? shardQueue!.deadLetterQueue.arn : undefined,
    ])
    .apply(([apiExecutionArn, logGroupArn, tableArn, redisAuthSecretArn, shardQueueArn, shardDlqArn]) =>
      JSON.stringify(
        functionPolicy(definition, {
          store: settings.store,
          tableArn,
          apiExecutionArn,
          stage: settings.stage,
          logGroupArn,
          inVpc: placement.network !== undefined,
          redisAuthSecretArn,
          tracing: settings.tracing,
          shardQueueArn,
          shardDlqArn,
          consumesShardQueue: placement.consumesShards,
        }),
      ),
    );
}

function functionArgs(
  { definition, context, shardQueue }: HandlerFunctionArgs,
  placement: Placement,
  logGroup: aws.cloudwatch.LogGroup,
  role: aws.iam.Role,
): aws.lambda.FunctionArgs {
  const { settings } = context;
  const { routeKey, network, authSecret } = placement;
  const variables: Record<string, pulumi.Input<string>> = { ...context.env };
  // The ARN, never the token: environment variables are readable by anyone who may read the function's
  // configuration. The runtime fetches the token once per container (runtime/secrets.ts).
  if (authSecret) variables[ENV.REDIS_AUTH_SECRET_ARN] = authSecret.arn;
  // Shards go through the durable queue; the worker also queues failed ids again, and dead-letters the rest.
  if (placement.invokesWorker || placement.consumesShards)
    variables[ENV.FANOUT_SHARD_QUEUE_URL] = shardQueue!.queue.url;
  if (placement.consumesShards) variables[ENV.FANOUT_SHARD_DLQ_URL] = shardQueue!.deadLetterQueue.url;
  const posts = placement.invokesWorker || routeKey === undefined;
  const logLevel = settings.logLevel;
  return {
    description:
      routeKey === undefined
        ? `Chat ${definition.name} (no route; invoked by other functions or a schedule)`
        : `Chat ${routeKey} route`,
    runtime: LAMBDA_RUNTIME,
    architectures: ["arm64"],
    handler: LAMBDA_HANDLER,
    code: handlerArchive(definition.module, settings.store),
    role: role.arn,
    memorySize: posts ? settings.fanOut.memorySize : settings.memorySize,
    timeout: timeoutOf(definition),
    environment: { variables },
    // Lambda sets AWS_LAMBDA_LOG_LEVEL from applicationLogLevel, which the runtime logger honours. The
    // platform (START/END/REPORT) level has no ERROR: WARN is its quietest.
    loggingConfig: {
      logFormat: "JSON",
      logGroup: logGroup.name,
      applicationLogLevel: logLevel,
      systemLogLevel: logLevel === "ERROR" ? "WARN" : logLevel,
    },
    tracingConfig: settings.tracing ? { mode: "Active" } : undefined,
    vpcConfig: network
      ? { subnetIds: network.privateSubnetIds, securityGroupIds: [network.functionsSecurityGroup.id] }
      : undefined,
  };
}

/** A worker's own timeout; else what API Gateway waits for a route that posts, or a short one for the store. */
function timeoutOf(definition: HandlerDefinition): number {
  if ("timeoutSeconds" in definition) return definition.timeoutSeconds;
  return definition.manageConnections ? INTEGRATION_TIMEOUT_SECONDS : STORE_ONLY_TIMEOUT_SECONDS;
}
