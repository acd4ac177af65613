/**
 * The fan-out worker's Lambda: posts shards of large broadcasts. On AWS they come from the SQS shard queue through
 * an event source mapping (a batch of records, answered with a partial batch response: chat/shard-batch.ts); a
 * shard handed over by Lambda's asynchronous invoke (FANOUT_WORKER_FUNCTION) is still accepted. What posting a
 * shard is, is chat/fan-out-shard.ts (the same code runs in-process locally).
 *
 * With SQS, a container that cannot be built fails the invocation: the whole batch stays in the queue (nothing
 * of it was posted), where an answer without failures would have deleted it. An asynchronous invocation never
 * throws instead (Lambda would retry the event, and nothing keeps a shard it drops).
 */

import { containerDeps } from "../app/container";
import { neverThrowingHandler } from "../app/lambda-handler";
import type { InvocationContext } from "../broadcast/broadcast";
import { FANOUT_WORKER_ROUTE, fanOutWorker } from "../chat/fan-out-shard";
import { consumeShardBatch, isSqsEvent, type SqsBatchResponse } from "../chat/shard-batch";

const invoked = neverThrowingHandler(
  { route: FANOUT_WORKER_ROUTE, name: "fan-out worker" },
  fanOutWorker,
  containerDeps,
);

export async function handler(event: unknown, context?: InvocationContext): Promise<SqsBatchResponse | undefined> {
  if (isSqsEvent(event)) return consumeShardBatch(event, await containerDeps(), context);
  await invoked(event, context);
  return undefined;
}
