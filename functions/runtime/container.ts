/**
 * Per-container dependencies. Lambda reuses a container for many invocations, so the store client and the
 * management API client are created once, at the first invocation, from the environment infra set — never
 * per request.
 */
import type { InvokeWorker } from "../broadcast";
import type { ConnectionStore } from "../../stores/connection-store";
import { createStore } from "../../stores/from-env";
import { ConnectionsApi } from "./connections-api";
import { DEFAULT_FANOUT, ENV, EnvError, readRuntimeEnv, type RuntimeEnv } from "./env";
import { LambdaInvoker } from "./invoker";
import { Logger } from "./logger";
import { resolveRedisAuth } from "./secrets";

/** What every handler gets. Tests build one by hand around real servers. */
export interface HandlerDeps {
  readonly env: RuntimeEnv;
  readonly store: ConnectionStore;
  /** `undefined` only when CALLBACK_URL is unset; handlers that post require it. */
  readonly connections?: ConnectionsApi;
  readonly log: Logger;
  /**
   * Hands a shard of a large broadcast to the fan-out worker. Set on AWS (Lambda async invoke, when
   * FANOUT_WORKER_FUNCTION is set); absent, `sendmessage` runs shards in this process (local runs, tests).
   */
  readonly invokeWorker?: InvokeWorker;
}

let deps: Promise<HandlerDeps> | undefined;

/**
 * The container's dependencies, built at its first invocation and shared by every later one. Async because a
 * Redis store's AUTH token is first fetched from Secrets Manager. A failed build (Secrets Manager unreachable,
 * say) is not kept: the next invocation tries again instead of the container failing until Lambda recycles it.
 */
export function containerDeps(): Promise<HandlerDeps> {
  if (!deps) {
    const pending = buildContainerDeps();
    deps = pending;
    pending.catch(() => {
      if (deps === pending) deps = undefined;
    });
  }
  return deps;
}

/** Builds the dependencies from an environment (`process.env`), secrets resolved; {@link containerDeps} caches the result. */
export async function buildContainerDeps(
  source: Readonly<Record<string, string | undefined>> = process.env,
): Promise<HandlerDeps> {
  const env = await resolveRedisAuth(readRuntimeEnv(source));
  const fanOut = env.fanOut ?? DEFAULT_FANOUT;
  const connections = env.callbackUrl
    ? ConnectionsApi.forEndpoint(env.callbackUrl, { timeoutMs: fanOut.postTimeoutMs, maxSockets: fanOut.concurrency })
    : undefined;
  const invoker =
    fanOut.workerFunction && connections
      ? new LambdaInvoker(
          fanOut.workerFunction,
          () => connections.client.config.credentials(),
          () => connections.client.config.region(),
          source[ENV.AWS_ENDPOINT_URL_LAMBDA],
        )
      : undefined;
  return { env, store: createStore(env), connections, log: new Logger(), invokeWorker: invoker?.invoke };
}

export function requireConnections(d: HandlerDeps): ConnectionsApi {
  if (!d.connections) throw new EnvError("CALLBACK_URL must be set for handlers that post to connections");
  return d.connections;
}
