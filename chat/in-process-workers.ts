/**
 * The in-process stand-in for the worker Lambda (local runs, tests, bench): shards run one at a time in this
 * process, with their own keep-alive agent, as a separate Lambda would have. Whoever builds the deps chooses it
 * once: app/container.ts when no FANOUT_WORKER_FUNCTION is set and app/local-process.ts registered it (the local
 * gateway), tests and bench by hand.
 */
import { InProcessInvoker } from "../broadcast/worker-invoker";
import { DEFAULT_FANOUT } from "../contract/env";
import { ConnectionsApi } from "../runtime/connections-api";
import { type HandlerDeps, requireConnections } from "./deps";
import { fanOutWorker } from "./fan-out-shard";

const invokers = new WeakMap<HandlerDeps, InProcessInvoker>();

/**
 * `deps` with shards run in this process against them. Built once per deps object: deps copied and changed
 * afterwards (another store, other settings) keep handing shards to the original, so build them again instead.
 */
export function withInProcessWorkers<D extends Omit<HandlerDeps, "invokeWorker">>(deps: D): D & HandlerDeps {
  let workerDeps: HandlerDeps | undefined;
  const invoker = new InProcessInvoker(async (event) => {
    workerDeps ??= shardDeps(withWorkers);
    return fanOutWorker(event, workerDeps);
  });
  const withWorkers: D & HandlerDeps = { ...deps, invokeWorker: invoker.invoke };
  invokers.set(withWorkers, invoker);
  return withWorkers;
}

/** The in-process invoker of deps built by {@link withInProcessWorkers}: `idle()` waits for their shards. */
export function inProcessWorkers(deps: HandlerDeps): InProcessInvoker {
  const invoker = invokers.get(deps);
  if (!invoker) throw new Error("these handler deps hand shards to the worker Lambda, not to in-process workers");
  return invoker;
}

/** What a worker has of its own: a `@connections` client (and agent), sized to the fan-out's concurrency. */
function shardDeps(deps: HandlerDeps): HandlerDeps {
  const own = requireConnections(deps);
  const settings = deps.env.fanOut ?? DEFAULT_FANOUT;
  const connections = ConnectionsApi.forEndpoint(deps.env.callbackUrl ?? "", {
    ...own.postOptions,
    maxSockets: Math.min(settings.concurrency, own.maxSockets),
  });
  return { ...deps, connections };
}
