/**
 * Where fan-out shards run when no worker Lambda is configured (FANOUT_WORKER_FUNCTION unset). On AWS that is only
 * a function that never hands shards on (`$connect`, `whoami`, `$default`, the worker itself: infra sets the
 * variable on every function that broadcasts), so a Lambda bundle carries no stand-in and such a function's
 * invoker refuses. Local runs and tests register the in-process stand-in (local-process.ts), which keeps the
 * broadcast engine out of the bundles that do not broadcast.
 */
import type { HandlerDeps } from "../chat/deps";

type WithWorkers = (deps: Omit<HandlerDeps, "invokeWorker">) => HandlerDeps;

let registered: WithWorkers | undefined;

export function registerWorkerFallback(withWorkers: WithWorkers): void {
  registered = withWorkers;
}

/** `deps` with shards run by the registered stand-in, or refused when there is none. */
export function withWorkerFallback(deps: Omit<HandlerDeps, "invokeWorker">): HandlerDeps {
  if (registered) return registered(deps);
  return {
    ...deps,
    invokeWorker: async () => {
      throw new Error("this function has no fan-out worker: FANOUT_WORKER_FUNCTION is unset");
    },
  };
}
