/**
 * `FanOutWorker`: the function that posts shards of broadcasts too large for one invocation
 * (broadcast/broadcast.ts), with the durable queue the shards wait in, as a component:
 * - the shard queue, which the functions that broadcast send shards to (sqs:SendMessage on it only);
 * - its dead-letter queue: a shard the worker failed `maxReceiveCount` times, and ids whose posts failed on every
 *   try, end there; an alarm watches its depth (alarms.ts) and `StartMessageMoveTask` redrives it
 *   (docs/fan-out.md has the runbook);
 * - the worker function (log group, role and policy: handler-function.ts), fed by an event source mapping that
 *   reports partial batch failures. It is behind no route.
 */
import * as aws from "@pulumi/aws";
import * as pulumi from "@pulumi/pulumi";
import { FANOUT_WORKER } from "../contract/routes";
import { createHandlerFunction, type FunctionContext, type ShardQueues } from "./handler-function";
import { movedChildOptions } from "./moved-children";

export const FANOUT_WORKER_TYPE = "websocket-chat:index:FanOutWorker";

/**
 * The shard queue's visibility timeout: six times the worker's timeout, as the Lambda Developer Guide
 * recommends for an SQS event source ("Creating and configuring an Amazon SQS event source mapping"), so that a
 * batch the mapping retries after a throttle is not returned to the queue while still being worked on.
 */
export const SHARD_VISIBILITY_TIMEOUT_SECONDS = 6 * FANOUT_WORKER.timeoutSeconds;
/**
 * Receives of one shard before SQS moves it to the dead-letter queue. A throttled invocation also counts as a
 * receive, so a few more than "one crash and a retry" keep a burst of throttling from dead-lettering shards.
 */
export const SHARD_MAX_RECEIVE_COUNT = 5;
/**
 * How long either queue keeps a message: SQS's maximum, 14 days. A standard queue's message expires by its
 * original enqueue time even in the dead-letter queue, so both need the full period for the DLQ to keep it.
 */
export const SHARD_RETENTION_SECONDS = 1_209_600;
/**
 * Shards per worker invocation. A shard is already a batch (thousands of posts): more records per invocation
 * would post them one after another, where one each runs them in parallel.
 */
export const SHARD_BATCH_SIZE = 1;

export interface FanOutWorkerArgs {
  /** What every function of the `ChatApi` shares: the API, the store, settings and environment. */
  readonly context: FunctionContext;
}

/**
 * The fan-out worker and its queues.
 * @example
 * ```ts
 * const worker = new FanOutWorker(`${name}-worker`, { context }, { parent: chatApi });
 * new ChatRoute(name, { route, context, shardQueue: worker.queues }, { parent: chatApi });
 * ```
 */
export class FanOutWorker extends pulumi.ComponentResource {
  /** The worker function, named `{apiName}-fanout-worker`. */
  public readonly fn: aws.lambda.Function;
  /** The shard queue and its dead-letter queue. */
  public readonly queues: ShardQueues;
  public readonly eventSourceMapping: aws.lambda.EventSourceMapping;

  constructor(name: string, args: FanOutWorkerArgs, opts?: pulumi.ComponentResourceOptions) {
    super(FANOUT_WORKER_TYPE, name, {}, opts);
    const children = movedChildOptions(this, opts);
    const prefix = `${args.context.apiName}-${FANOUT_WORKER.name}`;

    const queues = createShardQueues(prefix, children);
    const { fn, policy } = createHandlerFunction(
      { definition: FANOUT_WORKER, context: args.context, shardQueue: queues },
      children,
    );
    // Lambda polls the queue with the worker's role: the policy must exist before the mapping is created.
    const eventSourceMapping = new aws.lambda.EventSourceMapping(
      `${prefix}-shards`,
      {
        eventSourceArn: queues.queue.arn,
        functionName: fn.arn,
        batchSize: SHARD_BATCH_SIZE,
        // The worker answers which records failed (chat/shard-batch.ts); without this, Lambda would ignore the
        // answer and delete them.
        functionResponseTypes: ["ReportBatchItemFailures"],
      },
      { ...children, dependsOn: [policy] },
    );

    this.fn = fn;
    this.queues = queues;
    this.eventSourceMapping = eventSourceMapping;
    this.registerOutputs({
      functionName: fn.name,
      shardQueueUrl: queues.queue.url,
      deadLetterQueueUrl: queues.deadLetterQueue.url,
    });
  }
}

/** The shard queue, its dead-letter queue, and the DLQ's permission to be redriven to exactly that queue. */
function createShardQueues(prefix: string, opts: pulumi.CustomResourceOptions): ShardQueues {
  const deadLetterQueue = new aws.sqs.Queue(
    `${prefix}-dlq`,
    { messageRetentionSeconds: SHARD_RETENTION_SECONDS, sqsManagedSseEnabled: true },
    opts,
  );
  const queue = new aws.sqs.Queue(
    `${prefix}-queue`,
    {
      visibilityTimeoutSeconds: SHARD_VISIBILITY_TIMEOUT_SECONDS,
      messageRetentionSeconds: SHARD_RETENTION_SECONDS,
      sqsManagedSseEnabled: true,
      redrivePolicy: deadLetterQueue.arn.apply((deadLetterTargetArn) =>
        JSON.stringify({ deadLetterTargetArn, maxReceiveCount: SHARD_MAX_RECEIVE_COUNT }),
      ),
    },
    opts,
  );
  // Only the shard queue may use this DLQ (and so be the target of its redrive).
  new aws.sqs.RedriveAllowPolicy(
    `${prefix}-dlq-redrive-allow`,
    {
      queueUrl: deadLetterQueue.url,
      redriveAllowPolicy: queue.arn.apply((arn) =>
        JSON.stringify({ redrivePermission: "byQueue", sourceQueueArns: [arn] }),
      ),
    },
    opts,
  );
  return { queue, deadLetterQueue };
}
