/**
 * Per-container dependencies. Lambda reuses a container for many invocations, so the store client and the
 * management API client are created once, at the first invocation, from the environment infra set — never
 * per request.
 */
import type { ConnectionStore } from "../../stores/connection-store";
import { createStore } from "../../stores/from-env";
import { ConnectionsApi } from "./connections-api";
import { EnvError, readRuntimeEnv, type RuntimeEnv } from "./env";
import { Logger } from "./logger";

/** What every handler gets. Tests build one by hand around real servers. */
export interface HandlerDeps {
  readonly env: RuntimeEnv;
  readonly store: ConnectionStore;
  /** `undefined` only when CALLBACK_URL is unset; handlers that post require it. */
  readonly connections?: ConnectionsApi;
  readonly log: Logger;
}

let deps: HandlerDeps | undefined;

export function containerDeps(): HandlerDeps {
  if (!deps) {
    const env = readRuntimeEnv();
    deps = {
      env,
      store: createStore(env),
      connections: env.callbackUrl ? ConnectionsApi.forEndpoint(env.callbackUrl) : undefined,
      log: new Logger(),
    };
  }
  return deps;
}

export function requireConnections(d: HandlerDeps): ConnectionsApi {
  if (!d.connections) throw new EnvError("CALLBACK_URL must be set for handlers that post to connections");
  return d.connections;
}
