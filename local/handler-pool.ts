/**
 * The handlers in worker threads: what Lambda's containers are to API Gateway. The gateway's thread keeps the
 * sockets, timers and `@connections`; each worker thread (handler-worker.ts) loads the handler modules once, as a
 * cold start does, and runs the invocations posted to it. So a handler's CPU (its HTTP client posting a broadcast,
 * its JSON, a busy loop) runs beside the gateway instead of holding up every connection's frames, and a handler
 * that crashes its thread fails its own invocations, like a runtime crash, while a new worker takes its place.
 *
 * Invocations go to the worker with the fewest running (in turn, when several tie); a worker runs any number at once (a local run is one warm
 * container per worker, not one per concurrent event). The integration timeout stays with the caller
 * (invocation.ts): a timed-out invocation keeps running in its worker, unobserved, as on Lambda.
 *
 * Each worker has its own modules, clients and caches, but the memory store is the gateway's (the local
 * database); a worker reaches it through store-bridge.ts. Redis and DynamoDB stores are reached by each worker's
 * own client, as each Lambda container has one.
 */

import { join } from "node:path";
import { MessageChannel, type MessagePort, Worker } from "node:worker_threads";
import type { ConnectionStore, StoreKind } from "../contract/connection-store";
import type { HandlerResult, WebSocketEvent } from "../runtime/event";
import type { HandlerModules } from "./handler-modules";
import type { RouteHandlers } from "./route-handlers";
import { deserializeError, type SerializedError, serveStore } from "./store-bridge";

/** A store the gateway's thread holds and every worker shares (the memory store). */
export interface SharedStore {
  readonly kind: StoreKind;
  /** Read at every call: a hot reload may replace the store. */
  readonly store: () => ConnectionStore;
}

export interface HandlerPoolOptions {
  readonly modules: HandlerModules;
  /** Modules each worker loads first, for their side effects (the route table's store registrations). */
  readonly preload?: readonly string[];
  /** Worker threads, at least 1. */
  readonly size: number;
  readonly sharedStore?: SharedStore;
  /** One line when a worker exits unexpectedly or cannot be replaced. */
  readonly log: (line: string) => void;
}

/** What a worker is started with (structured clone; the port is transferred). */
export interface WorkerData {
  readonly modules: HandlerModules;
  readonly preload?: readonly string[];
  readonly store?: { readonly port: MessagePort; readonly kind: StoreKind };
}

/**
 * An invocation, posted to the worker as JSON text: events are JSON on Lambda anyway, and one string crosses a
 * thread faster than structured clone copies the event's nested objects.
 */
export interface WorkerRequest {
  readonly id: number;
  readonly routeKey: string;
  readonly event: WebSocketEvent;
}

export type WorkerReply =
  | { readonly kind: "ready" }
  | { readonly kind: "drained" }
  | { readonly kind: "load-failed"; readonly error: SerializedError }
  /** `json`: the handler's result as JSON text, as Lambda's runtime serialises it; absent when it returned nothing. */
  | { readonly kind: "result"; readonly id: number; readonly json?: string }
  | { readonly kind: "error"; readonly id: number; readonly error: SerializedError };

/** More threads than this is a mistake, not a tuning (`--workers` and `handlerWorkers` are checked against it). */
export const MAX_HANDLER_WORKERS = 64;

/**
 * A control message to a worker (invocations are JSON text): `drain` asks it to answer `drained` once the work its
 * invocations left running is done (the in-process fan-out shards of a large broadcast).
 */
export interface WorkerControl {
  readonly kind: "drain";
}

/** The handlers could not be loaded in a worker (the error names the module). */
export class HandlerLoadError extends Error {
  override readonly name = "HandlerLoadError";
}

const WORKER_FILE = join(__dirname, "handler-worker.ts");
/**
 * A worker thread does not inherit the ESM loader `tsx` registers for the main thread, only its CommonJS hook is
 * needed to load the `.ts` modules, so the worker is started with that hook alone.
 */
const WORKER_EXEC_ARGV = ["--require", require.resolve("tsx/cjs")];

type Waiter = { resolve: (result: HandlerResult | undefined) => void; reject: (error: Error) => void };

type WorkerState = "loading" | "ready" | "exited";

class PoolWorker {
  state: WorkerState = "loading";
  readonly running = new Map<number, Waiter>();
  /** The error the thread died of, when it did. */
  crash: Error | undefined;
  /** Resolves the wait for this worker's `drained`. */
  drained: (() => void) | undefined;

  constructor(
    readonly thread: Worker,
    readonly storePort: MessagePort | undefined,
  ) {}
}

/**
 * A worker that ends soon after loading is started again after a pause that doubles with each such end in the
 * last minute, from 100 ms to 10 s: a module that kills its thread from a timer must not become a loop of cold
 * starts.
 */
const RESPAWN_WINDOW_MS = 60_000;
const RESPAWN_FIRST_DELAY_MS = 100;
const RESPAWN_MAX_DELAY_MS = 10_000;

export class HandlerPool {
  private readonly workers = new Set<PoolWorker>();
  private nextId = 1;
  private turn = 0;
  private state: "running" | "retiring" | "closed" = "running";
  private retired: (() => void) | undefined;
  /** When workers ended unexpectedly, within the last minute. */
  private endings: number[] = [];
  private respawnTimer: NodeJS.Timeout | undefined;
  /** Resolves when the replacement of an ended worker has started (or failed to); events wait for it. */
  private replacement: Promise<void> | undefined;
  private replaced: (() => void) | undefined;

  private constructor(private readonly options: HandlerPoolOptions) {}

  /** Starts `size` workers and resolves once every one has loaded the handlers; rejects with the first load error. */
  static async start(options: HandlerPoolOptions): Promise<HandlerPool> {
    if (!Number.isInteger(options.size) || options.size < 1)
      throw new RangeError("a handler pool needs 1 or more workers");
    const pool = new HandlerPool(options);
    try {
      await Promise.all(Array.from({ length: options.size }, () => pool.spawn()));
    } catch (error) {
      await pool.close();
      throw error;
    }
    return pool;
  }

  /** Invocations running now, over every worker. */
  get running(): number {
    let count = 0;
    for (const worker of this.workers) count += worker.running.size;
    return count;
  }

  /** The gateway's view: one function per route, each posting the event to a worker. */
  handlers(): RouteHandlers {
    const handlers: Record<string, (event: WebSocketEvent) => Promise<HandlerResult | undefined>> = {};
    for (const routeKey of Object.keys(this.options.modules))
      handlers[routeKey] = (event) => this.invoke(routeKey, event);
    return handlers;
  }

  invoke(routeKey: string, event: WebSocketEvent): Promise<HandlerResult | undefined> {
    const worker = this.leastBusy();
    // Between a worker's end and its replacement's start, events wait for the replacement, as Lambda's would
    // for a new container.
    if (!worker && this.replacement) return this.replacement.then(() => this.invoke(routeKey, event));
    if (!worker) return Promise.reject(new Error("no handler worker is running now (the lines above say why)"));
    const id = this.nextId++;
    return new Promise((resolve, reject) => {
      worker.running.set(id, { resolve, reject });
      worker.thread.postMessage(JSON.stringify({ id, routeKey, event } satisfies WorkerRequest));
    });
  }

  /**
   * Stops the workers once their running invocations, and the fan-out shards those queued, are done (a hot
   * reload's previous pool), or after `deadlineMs`, whichever comes first. New invocations still go to them.
   */
  retire(deadlineMs: number): Promise<void> {
    if (this.state !== "running") return this.close();
    this.state = "retiring";
    clearTimeout(this.respawnTimer);
    this.replaced?.();
    const idle = new Promise<void>((resolve) => {
      this.retired = resolve;
      this.settleRetire();
    }).then(() => Promise.all([...this.workers].map((worker) => this.drain(worker))));
    let timer: NodeJS.Timeout | undefined;
    const deadline = new Promise<void>((resolve) => {
      timer = setTimeout(resolve, deadlineMs);
      timer.unref();
    });
    return Promise.race([idle, deadline]).then(() => {
      clearTimeout(timer);
      return this.close();
    });
  }

  /** Stops every worker now; invocations still running are rejected. */
  async close(): Promise<void> {
    if (this.state === "closed") return;
    this.state = "closed";
    clearTimeout(this.respawnTimer);
    this.replaced?.();
    const exits = [...this.workers].map((worker) => this.stopWorker(worker));
    await Promise.all(exits);
  }

  /** The worker with the fewest invocations running; ties go round, so every worker warms up and shares the load. */
  private leastBusy(): PoolWorker | undefined {
    const workers = [...this.workers].filter((worker) => worker.state !== "exited");
    let best: PoolWorker | undefined;
    for (let i = 0; i < workers.length; i++) {
      const worker = workers[(this.turn + i) % workers.length]!;
      if (!best || worker.running.size < best.running.size) best = worker;
    }
    this.turn++;
    return best;
  }

  /** Starts one worker; resolves once it has loaded the handlers. */
  private spawn(): Promise<void> {
    const shared = this.options.sharedStore;
    const channel = shared ? new MessageChannel() : undefined;
    if (shared && channel) serveStore(channel.port1, shared.store);
    const data: WorkerData = {
      modules: this.options.modules,
      ...(this.options.preload ? { preload: this.options.preload } : {}),
      ...(shared && channel ? { store: { port: channel.port2, kind: shared.kind } } : {}),
    };
    const thread = new Worker(WORKER_FILE, {
      workerData: data,
      transferList: channel ? [channel.port2] : [],
      execArgv: WORKER_EXEC_ARGV,
    });
    const worker = new PoolWorker(thread, channel?.port1);
    this.workers.add(worker);
    return new Promise<void>((resolve, reject) => {
      thread.on("message", (reply: WorkerReply) => {
        if (reply.kind === "ready") {
          worker.state = "ready";
          return resolve();
        }
        if (reply.kind === "drained") return worker.drained?.();
        if (reply.kind === "load-failed") {
          const error = deserializeError(reply.error);
          worker.crash = new HandlerLoadError(`loading the handlers in a worker failed: ${error.message}`, {
            cause: error,
          });
          void this.stopWorker(worker);
          return reject(worker.crash);
        }
        const waiter = worker.running.get(reply.id);
        if (!waiter) return;
        worker.running.delete(reply.id);
        if (reply.kind === "result")
          waiter.resolve(reply.json === undefined ? undefined : (JSON.parse(reply.json) as HandlerResult));
        else waiter.reject(deserializeError(reply.error));
        this.settleRetire();
      });
      thread.on("error", (error) => {
        worker.crash ??= error;
      });
      thread.on("exit", (code) => {
        const wasLoading = worker.state === "loading";
        this.exited(worker, code);
        if (wasLoading)
          reject(worker.crash ?? new HandlerLoadError(`a handler worker exited (code ${code}) while loading`));
      });
    });
  }

  /** A worker's thread ended: what it was running failed; an unexpected end gets a replacement. */
  private exited(worker: PoolWorker, code: number): void {
    if (worker.state === "exited") return;
    const wasReady = worker.state === "ready";
    worker.state = "exited";
    worker.storePort?.close();
    this.workers.delete(worker);
    const reason = worker.crash ? `${worker.crash.name}: ${worker.crash.message}` : `exit code ${code}`;
    for (const waiter of worker.running.values()) {
      waiter.reject(new Error(`the handler's worker thread ended while it ran (${reason})`));
    }
    worker.running.clear();
    worker.drained?.();
    this.settleRetire();
    if (this.state !== "running" || !wasReady) return;
    const now = Date.now();
    this.endings = [...this.endings.filter((at) => now - at < RESPAWN_WINDOW_MS), now];
    const delay = Math.min(RESPAWN_FIRST_DELAY_MS * 2 ** (this.endings.length - 1), RESPAWN_MAX_DELAY_MS);
    this.options.log(
      `a handler worker ended (${reason}); its running invocations failed; starting another in ${delay} ms`,
    );
    const replacement = new Promise<void>((resolve) => {
      this.replaced = resolve;
      this.respawnTimer = setTimeout(() => {
        if (this.state !== "running") return resolve();
        this.spawn()
          .catch((error: unknown) => {
            this.options.log(
              `the replacement handler worker failed to start: ${error instanceof Error ? error.message : error}`,
            );
          })
          .finally(resolve);
      }, delay);
      this.respawnTimer.unref();
    }).finally(() => {
      if (this.replacement === replacement) this.replacement = undefined;
    });
    this.replacement = replacement;
  }

  /** Asks `worker` for `drained` (see {@link WorkerControl}); resolves when it answers or ends. */
  private drain(worker: PoolWorker): Promise<void> {
    if (worker.state === "exited") return Promise.resolve();
    return new Promise<void>((resolve) => {
      worker.drained = resolve;
      worker.thread.postMessage({ kind: "drain" } satisfies WorkerControl);
    });
  }

  private async stopWorker(worker: PoolWorker): Promise<void> {
    if (worker.state === "exited") return;
    const exit = new Promise<void>((resolve) => worker.thread.once("exit", () => resolve()));
    worker.state = "exited";
    this.workers.delete(worker);
    worker.storePort?.close();
    for (const waiter of worker.running.values()) waiter.reject(new Error("the handler pool stopped"));
    worker.running.clear();
    await worker.thread.terminate();
    await exit;
  }

  private settleRetire(): void {
    if (this.state === "retiring" && this.running === 0) this.retired?.();
  }
}
