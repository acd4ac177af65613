/**
 * One shard of a large broadcast (broadcast/broadcast.ts), posted: what the fan-out worker does, whether it runs
 * as a Lambda of its own (handlers/fan-out-worker.ts; no API Gateway route, so no 29 s limit) or in this process
 * (in-process-workers.ts).
 *
 * It never throws, and says which ids it could not deliver: whoever runs it (chat/shard-batch.ts on AWS, the
 * in-process invoker locally) queues exactly those again, so a failed post is retried without re-posting the
 * whole shard, and ends in a dead-letter queue rather than nowhere.
 */
import {
  deadlineOf,
  FANOUT_WORKER_TIMEOUT_SECONDS,
  fanOutPolicy,
  type InvocationContext,
  isFanOutShardEvent,
  shardPayload,
  taggedAttempt,
  untaggingRemover,
} from "../broadcast/broadcast";
import { type FanOutSummary, fanOut } from "../broadcast/fan-out";
import type { RemovedConnection } from "../contract/connection-store";
import { DEFAULT_FANOUT } from "../contract/env";
import { preparePayload } from "../runtime/connections-api";
import { type HandlerDeps, requireConnections } from "./deps";
import { announceDepartures } from "./rooms";

/** The route name the worker's log lines carry. */
export const FANOUT_WORKER_ROUTE = "fanout-worker";

function* pages(ids: readonly string[], size: number): Generator<string[]> {
  for (let i = 0; i < ids.length; i += size) yield ids.slice(i, i + size);
}

async function* asAsync<T>(items: Iterable<T>): AsyncGenerator<T> {
  yield* items;
}

/** What posting one shard came to. */
export type ShardResult =
  /** Posted; `undelivered` are the ids whose posts failed or expired (to be queued again, never dropped). */
  | { readonly kind: "posted"; readonly summary: FanOutSummary; readonly undelivered: string[] }
  /** Not a shard event: nothing was posted, and retrying will not change that. */
  | { readonly kind: "invalid" }
  /** The shard could not be posted at all (no `@connections` client, a store error): all of it must be tried again. */
  | { readonly kind: "failed"; readonly error: unknown };

/** Posts one shard and logs its summary line; never throws. */
export async function fanOutWorker(
  event: unknown,
  deps: HandlerDeps,
  context?: InvocationContext,
): Promise<FanOutSummary | undefined> {
  const result = await postShard(event, deps, context);
  return result.kind === "posted" ? result.summary : undefined;
}

/** Posts one shard and logs its summary line, saying which ids were not delivered; never throws. */
export async function postShard(event: unknown, deps: HandlerDeps, context?: InvocationContext): Promise<ShardResult> {
  if (!isFanOutShardEvent(event)) {
    deps.log.error("fan-out worker: not a fanout-shard event", { outcome: "error" });
    return { kind: "invalid" };
  }
  const log = deps.log.child({
    route: FANOUT_WORKER_ROUTE,
    broadcastId: event.broadcastId,
    shard: event.shard,
    connectionId: event.sender,
    ...(event.hop ? { hop: event.hop } : {}),
  });
  const undelivered: string[] = [];
  try {
    const connections = requireConnections(deps);
    const settings = deps.env.fanOut ?? DEFAULT_FANOUT;
    const payload = preparePayload(shardPayload(event));
    const deadline = deadlineOf(context, FANOUT_WORKER_TIMEOUT_SECONDS * 1000);
    const departed: RemovedConnection[] = [];
    const summary = await fanOut({
      targets: asAsync(pages(event.connectionIds, settings.pageSize)),
      // Version 2: a room-less broadcast's two payloads, the ids tagged with the one each gets.
      ...(event.version === 2 && event.typedData !== undefined
        ? {
            attempt: taggedAttempt(connections, { plain: payload, typed: preparePayload(event.typedData) }),
            store: untaggingRemover(deps.store),
          }
        : {
            attempt: (connectionId: string, timeoutMs: number, waitLimitMs?: number) =>
              connections.attempt(connectionId, payload, timeoutMs, waitLimitMs),
            store: deps.store,
          }),
      deadline,
      onRemoved: (removed) => departed.push(...removed),
      onUndelivered: (connectionId) => undelivered.push(connectionId),
      ...fanOutPolicy(connections, settings),
    });
    // Members found gone here leave their rooms like anywhere else: the rooms hear `left`. The worker posts those
    // itself (it may not invoke workers), so nothing it lists is ever handed on.
    if (departed.length > 0) {
      await announceDepartures(
        {
          deps: { ...deps, env: { ...deps.env, fanOut: { ...settings, inlineMax: Number.POSITIVE_INFINITY } } },
          log,
          requestId: event.broadcastId,
          sender: event.sender ?? FANOUT_WORKER_ROUTE,
          deadline,
          invokeWorker: async () => {
            throw new Error("the fan-out worker posts presence itself");
          },
        },
        departed,
      );
    }
    const outcome = summary.failed === 0 && summary.tooLarge === 0 && !summary.truncated ? "ok" : "partial";
    log.info("broadcast shard", {
      outcome,
      ...summary,
      undelivered: undelivered.length,
      bytes: payload.body.byteLength,
    });
    return { kind: "posted", summary, undelivered };
  } catch (error) {
    log.error("broadcast shard failed", { outcome: "error", error });
    return { kind: "failed", error };
  }
}
