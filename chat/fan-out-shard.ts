/**
 * One shard of a large broadcast (broadcast/broadcast.ts), posted: what the fan-out worker does, whether it runs
 * as a Lambda of its own (handlers/fan-out-worker.ts; no API Gateway route, so no 29 s limit) or in this process
 * (in-process-workers.ts).
 *
 * It never throws: Lambda retries a failed asynchronous invocation, which would post the whole shard twice (infra
 * also sets the worker's retry attempts to 0). Everything that went wrong is in its summary log line.
 */
import {
  deadlineOf,
  FANOUT_WORKER_TIMEOUT_SECONDS,
  fanOutPolicy,
  type InvocationContext,
  isFanOutShardEvent,
  shardPayload,
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

export async function fanOutWorker(
  event: unknown,
  deps: HandlerDeps,
  context?: InvocationContext,
): Promise<FanOutSummary | undefined> {
  if (!isFanOutShardEvent(event)) {
    deps.log.error("fan-out worker: not a fanout-shard event", { outcome: "error" });
    return undefined;
  }
  const log = deps.log.child({
    route: FANOUT_WORKER_ROUTE,
    broadcastId: event.broadcastId,
    shard: event.shard,
    connectionId: event.sender,
  });
  try {
    const connections = requireConnections(deps);
    const settings = deps.env.fanOut ?? DEFAULT_FANOUT;
    const payload = preparePayload(shardPayload(event));
    const deadline = deadlineOf(context, FANOUT_WORKER_TIMEOUT_SECONDS * 1000);
    const departed: RemovedConnection[] = [];
    const summary = await fanOut({
      targets: asAsync(pages(event.connectionIds, settings.pageSize)),
      attempt: (connectionId, timeoutMs, waitLimitMs) =>
        connections.attempt(connectionId, payload, timeoutMs, waitLimitMs),
      store: deps.store,
      deadline,
      onRemoved: (removed) => departed.push(...removed),
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
    log.info("broadcast shard", { outcome, ...summary, bytes: payload.body.byteLength });
    return summary;
  } catch (error) {
    log.error("broadcast shard failed", { outcome: "error", error });
    return undefined;
  }
}
