/**
 * What every handler gets: the container's store, `@connections` client, logger and worker invoker. Declared
 * here, below the composition root (app/container.ts) that builds it, so the chat modules can take it without
 * importing the layer above them. Tests build one by hand around real servers (with in-process workers:
 * chat/in-process-workers.ts).
 */
import type { FanOutShardEvent, InvokeWorker } from "../broadcast/broadcast";
import type { ConnectionStore } from "../contract/connection-store";
import { EnvError, type RuntimeEnv } from "../contract/env";
import type { ConnectionsApi } from "../runtime/connections-api";
import type { Logger } from "../runtime/logger";

export interface HandlerDeps {
  readonly env: RuntimeEnv;
  readonly store: ConnectionStore;
  /** `undefined` only when CALLBACK_URL is unset; handlers that post require it. */
  readonly connections?: ConnectionsApi;
  readonly log: Logger;
  /**
   * Hands a shard of a large broadcast to the fan-out worker, wherever it runs: chosen once, by whoever builds the
   * deps (app/container.ts: the SQS shard queue when FANOUT_SHARD_QUEUE_URL is set; in this process locally).
   */
  readonly invokeWorker: InvokeWorker;
  /**
   * Keeps a shard whose posts failed on every try where an operator sees it and can redrive it (the shard
   * queue's dead-letter queue, FANOUT_SHARD_DLQ_URL). Only the fan-out worker uses it; absent elsewhere.
   */
  readonly deadLetterShard?: (event: FanOutShardEvent) => Promise<void>;
}

export function requireConnections(d: HandlerDeps): ConnectionsApi {
  if (!d.connections) throw new EnvError("CALLBACK_URL must be set for handlers that post to connections");
  return d.connections;
}
