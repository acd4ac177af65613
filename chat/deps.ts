/**
 * What every handler gets: the container's store, `@connections` client, logger and worker invoker. Declared
 * here, below the composition root (app/container.ts) that builds it, so the chat modules can take it without
 * importing the layer above them. Tests build one by hand around real servers (with in-process workers:
 * chat/in-process-workers.ts).
 */
import type { InvokeWorker } from "../broadcast/broadcast";
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
   * deps (app/container.ts: Lambda's async invoke when FANOUT_WORKER_FUNCTION is set; in this process locally).
   */
  readonly invokeWorker: InvokeWorker;
}

export function requireConnections(d: HandlerDeps): ConnectionsApi {
  if (!d.connections) throw new EnvError("CALLBACK_URL must be set for handlers that post to connections");
  return d.connections;
}
