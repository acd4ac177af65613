/**
 * Per-container dependencies: the composition root. Lambda reuses a container for many invocations, so the store
 * client and the management API client are created once, at the first invocation, from the environment infra
 * set — never per request. Two choices are made here, once: the store (from the factories this process was built
 * with, store-registry.ts) and where fan-out shards run (the worker Lambda when FANOUT_WORKER_FUNCTION is set, else
 * the registered stand-in: in-process for local runs and tests, worker-fallback.ts).
 */
import { LambdaInvoker } from "../broadcast/worker-invoker";
import type { HandlerDeps } from "../chat/deps";
import { DEFAULT_FANOUT, ENV, readRuntimeEnv } from "../contract/env";
import { ConnectionsApi } from "../runtime/connections-api";
import { Logger } from "../runtime/logger";
import { storeFactoryOf } from "./store-registry";
import { withWorkerFallback } from "./worker-fallback";

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
  const declared = readRuntimeEnv(source);
  const factory = storeFactoryOf(declared.store);
  const env = factory.prepare ? await factory.prepare(declared) : declared;
  const fanOut = env.fanOut ?? DEFAULT_FANOUT;
  const connections = env.callbackUrl
    ? ConnectionsApi.forEndpoint(env.callbackUrl, { timeoutMs: fanOut.postTimeoutMs, maxSockets: fanOut.concurrency })
    : undefined;
  const base = { env, store: factory.create(env), connections, log: new Logger() };
  if (!fanOut.workerFunction || !connections) return withWorkerFallback(base);
  const invoker = new LambdaInvoker(
    fanOut.workerFunction,
    () => connections.client.config.credentials(),
    () => connections.client.config.region(),
    source[ENV.AWS_ENDPOINT_URL_LAMBDA],
  );
  return { ...base, invokeWorker: invoker.invoke };
}
