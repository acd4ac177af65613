/**
 * Per-container dependencies. Lambda reuses a container for many invocations, so the store client and the
 * management API client are created once, at the first invocation, from the environment infra set — never
 * per request.
 */
import { createStore } from "./store-from-env";
import { ConnectionsApi } from "../runtime/connections-api";
import { DEFAULT_FANOUT, ENV, readRuntimeEnv } from "../contract/env";
import type { HandlerDeps } from "../chat/deps";
import { LambdaInvoker } from "../broadcast/worker-invoker";
import { Logger } from "../runtime/logger";
import { resolveRedisAuth } from "../runtime/secrets";

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
