/**
 * The in-process stand-in for the worker Lambda (local runs, tests, bench): shards run one at a time in this
 * process, with their own keep-alive agent, as a separate Lambda would have. Whoever builds the deps chooses it
 * once: app/container.ts when no FANOUT_WORKER_FUNCTION is set and app/local-process.ts registered it (the local
 * gateway), tests and bench by hand.
 */
import type { FanOutShardEvent } from "../broadcast/broadcast";
import { InProcessInvoker } from "../broadcast/worker-invoker";
import { DEFAULT_FANOUT } from "../contract/env";
import { ConnectionsApi } from "../runtime/connections-api";
import { type HandlerDeps, requireConnections } from "./deps";
import { postShard } from "./fan-out-shard";
import { type ShardQueues, settleUndelivered } from "./shard-batch";

const invokers = new WeakMap<HandlerDeps, InProcessInvoker>();
/** Every invoker built in this process (weakly: tests build many), for {@link inProcessShardsIdle}. */
const built = new Set<WeakRef<InProcessInvoker>>();

/**
 * Resolves once no invoker of this process has a shard waiting, running or waiting out a re-queue delay: what a
 * local gateway's handler worker thread waits for before it stops, so a hot reload loses no broadcast.
 */
export async function inProcessShardsIdle(): Promise<void> {
  for (const ref of built) {
    const invoker = ref.deref();
    if (invoker) await invoker.idle();
    else built.delete(ref);
  }
}

/**
 * `deps` with shards run in this process against them. Built once per deps object: deps copied and changed
 * afterwards (another store, other settings) keep handing shards to the original, so build them again instead.
 */
export function withInProcessWorkers<D extends Omit<HandlerDeps, "invokeWorker">>(
  deps: D,
  options: InProcessWorkerOptions = {},
): D & HandlerDeps {
  let workerDeps: HandlerDeps | undefined;
  const invoker: InProcessInvoker = new InProcessInvoker(
    async (event) => {
      workerDeps ??= shardDeps(withWorkers);
      await runShard(event, workerDeps, invoker, options.retryDelayMs ?? LOCAL_RETRY_DELAY_MS);
    },
    1,
    options.delayScale ?? 1,
  );
  const withWorkers: D & HandlerDeps = {
    ...deps,
    invokeWorker: invoker.invoke,
    deadLetterShard: async (event) => invoker.deadLetter(event),
  };
  invokers.set(withWorkers, invoker);
  built.add(new WeakRef(invoker));
  return withWorkers;
}

export interface InProcessWorkerOptions {
  /** Multiplies the re-queue delays of failed ids (10 s, 20 s, 40 s); tests compress time with it. */
  readonly delayScale?: number;
  /** Pause before a shard that could not be posted at all is tried again. */
  readonly retryDelayMs?: number;
}

/** Tries of a shard that cannot be posted at all before it is dead-lettered (SQS: the queue's maxReceiveCount). */
export const LOCAL_SHARD_TRIES = 3;
const LOCAL_RETRY_DELAY_MS = 1_000;

/**
 * One shard, as the worker Lambda and its queue treat it: posted; its failed ids queued again (or dead-lettered
 * after their last hop); a shard that cannot be posted at all tried {@link LOCAL_SHARD_TRIES} times, then
 * dead-lettered. Every dead letter is logged, so a local run shows it at once.
 */
async function runShard(
  event: FanOutShardEvent,
  deps: HandlerDeps,
  invoker: InProcessInvoker,
  retryDelayMs: number,
): Promise<void> {
  const queues: ShardQueues = {
    requeue: async (next, delaySeconds) => invoker.requeue(next, delaySeconds),
    deadLetter: async (next) => {
      invoker.deadLetter(next);
      deps.log.error("fan-out shard dead-lettered: its ids failed on every try", {
        outcome: "dead-lettered",
        broadcastId: next.broadcastId,
        shard: next.shard,
        undelivered: next.connectionIds.length,
        deadLetters: invoker.deadLetters.length,
      });
    },
  };
  for (let attempt = 1; ; attempt++) {
    const result = await postShard(event, deps);
    if (result.kind === "posted") {
      await settleUndelivered(event, result.undelivered, queues);
      return;
    }
    if (result.kind === "invalid" || attempt >= LOCAL_SHARD_TRIES) {
      await queues.deadLetter(event);
      return;
    }
    await new Promise((resolve) => setTimeout(resolve, retryDelayMs));
  }
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
