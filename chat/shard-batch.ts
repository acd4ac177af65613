/**
 * The fan-out worker's side of the durable shard queue (broadcast/sqs-shard-queue.ts): what happens to a shard
 * once it has been posted, and how a batch of SQS records is answered.
 *
 * - Ids whose posts failed (after their own retries) or expired go back to the queue as a smaller shard holding
 *   only them, after a delay that doubles each time (`hop` 1, 2, 3). The shard itself is done: re-posting it
 *   whole would send everyone who already got the message a duplicate.
 * - After {@link MAX_SHARD_HOPS} such rounds the ids still failing go to the dead-letter queue, where the alarm
 *   sees them and an operator may redrive them (docs/fan-out.md).
 * - A shard that could not be posted at all (the worker could not build its clients, a store error) and a shard
 *   whose failed ids could not be queued again are reported as batch item failures: SQS makes them visible
 *   again after the visibility timeout and, after `maxReceiveCount` receives, moves them to the dead-letter
 *   queue itself. A worker that crashes or times out reports nothing, which SQS treats the same way.
 *
 * So every id of a shard is delivered, queued again, or in the dead-letter queue: none is lost without a trace.
 * A shard that is received again after a crash is posted again in full (at least once: docs/fan-out.md).
 */
import type { FanOutShardEvent, InvocationContext } from "../broadcast/broadcast";
import type { HandlerDeps } from "./deps";
import { postShard } from "./fan-out-shard";

/** Times the failed ids of a shard are queued again before they go to the dead-letter queue. */
export const MAX_SHARD_HOPS = 3;
/** Delay before the first re-queued try; doubled on each further hop. */
export const REQUEUE_BASE_DELAY_SECONDS = 10;

/** The delay of a shard re-queued for the `hop`-th time. */
export function requeueDelaySeconds(hop: number): number {
  return REQUEUE_BASE_DELAY_SECONDS * 2 ** Math.max(0, hop - 1);
}

/** Where the ids a shard did not deliver went. */
export type Disposition = "none" | "requeued" | "dead-lettered";

/** Where shards go after a failed try: back to the queue (later), or to the dead letters. */
export interface ShardQueues {
  readonly requeue: (event: FanOutShardEvent, delaySeconds: number) => Promise<void>;
  readonly deadLetter: (event: FanOutShardEvent) => Promise<void>;
}

/**
 * The ids of `event` that were not delivered, as a shard of their own: queued again with the next hop, or, past
 * {@link MAX_SHARD_HOPS}, dead-lettered. Rejects when neither worked (the caller then fails the whole shard).
 */
export async function settleUndelivered(
  event: FanOutShardEvent,
  undelivered: readonly string[],
  queues: ShardQueues,
): Promise<Disposition> {
  if (undelivered.length === 0) return "none";
  const hop = (event.hop ?? 0) + 1;
  const next: FanOutShardEvent = { ...event, hop, connectionIds: [...undelivered] };
  if (hop > MAX_SHARD_HOPS) {
    await queues.deadLetter(next);
    return "dead-lettered";
  }
  await queues.requeue(next, requeueDelaySeconds(hop));
  return "requeued";
}

/** The part of an SQS record the worker reads. */
export interface SqsRecord {
  readonly messageId: string;
  readonly body: string;
}

/** What Lambda's SQS event source mapping passes. */
export interface SqsEvent {
  readonly Records: readonly SqsRecord[];
}

/** The partial batch response (the mapping has `ReportBatchItemFailures`): these records stay in the queue. */
export interface SqsBatchResponse {
  batchItemFailures: { itemIdentifier: string }[];
}

export function isSqsEvent(event: unknown): event is SqsEvent {
  const e = event as Partial<SqsEvent> | null;
  return typeof e === "object" && e !== null && Array.isArray(e.Records);
}

/** The queues of a worker whose deps hand shards to the shard queue and have a dead-letter queue. */
export function shardQueuesOf(deps: HandlerDeps): ShardQueues {
  return {
    requeue: (event, delaySeconds) => deps.invokeWorker(event, { delaySeconds }),
    deadLetter: async (event) => {
      if (!deps.deadLetterShard) throw new Error("this worker has no dead-letter queue (FANOUT_SHARD_DLQ_URL)");
      await deps.deadLetterShard(event);
    },
  };
}

/**
 * Posts each record's shard in turn and answers which records must stay in the queue. Never throws (a throw
 * would return the whole batch, including the shards already posted).
 */
export async function consumeShardBatch(
  event: SqsEvent,
  deps: HandlerDeps,
  context?: InvocationContext,
  queues: ShardQueues = shardQueuesOf(deps),
): Promise<SqsBatchResponse> {
  const batchItemFailures: { itemIdentifier: string }[] = [];
  for (const record of event.Records) {
    const log = deps.log.child({ route: "fanout-worker", messageId: record.messageId });
    let shard: unknown;
    try {
      shard = JSON.parse(record.body);
    } catch {
      shard = undefined;
    }
    const result = await postShard(shard, deps, context);
    if (result.kind !== "posted") {
      // Kept in the queue: retried until maxReceiveCount, then in the dead-letter queue, never dropped.
      log.error("shard not posted: left in the queue", { outcome: "error", reason: result.kind });
      batchItemFailures.push({ itemIdentifier: record.messageId });
      continue;
    }
    try {
      const disposition = await settleUndelivered(shard as FanOutShardEvent, result.undelivered, queues);
      if (disposition !== "none")
        log.warn(`undelivered ids ${disposition}`, { outcome: disposition, undelivered: result.undelivered.length });
    } catch (error) {
      // The failed ids could not be queued: the whole shard stays in the queue (its delivered part is posted again).
      log.error("undelivered ids could not be queued: shard left in the queue", { outcome: "error", error });
      batchItemFailures.push({ itemIdentifier: record.messageId });
    }
  }
  return { batchItemFailures };
}
