/**
 * A broadcast end to end: list the audience, post to as much of it as this invocation can within its budget,
 * and hand the rest, in shards, to asynchronous invocations of the fan-out worker (handlers/fan-out-worker.ts).
 *
 * Why split: one invocation pushes a bounded number of posts per second (CPU: ~5,000 per vCPU with the signed
 * poster; window / latency; the account throttle), and API Gateway abandons `sendmessage` after 29 s. The
 * README's fan-out section has the measurement; below ~`inlineMax` connections nothing is split.
 *
 * How (memory bounded by one shard plus a few pages, whatever N is):
 * - The listing is read ahead of the posting into a buffer. The inline lane (this invocation's `fanOut`) takes
 *   pages from the head of the buffer as its window frees up, until it has taken `inlineMax` ids.
 * - Whenever the buffer holds a full shard, the listing is running ahead of what this invocation posts, so the
 *   shard is dispatched to a worker at once: workers start while the listing is still running.
 * - When the listing ends, what is left in the buffer stays inline if the inline budget covers it, else it is
 *   dispatched too. Small broadcasts (the whole audience fits in one shard) therefore never leave the invocation.
 * - The inline lane stops taking ids a few seconds before its deadline (the intake deadline), leaving time for its
 *   posts in flight to finish; whatever it has not taken is dispatched. So a broadcast never depends on this
 *   invocation being fast enough: under a saturated throttle it simply posts less itself.
 * - If a dispatch fails, its ids go back to the buffer, dispatching stops, and the inline lane takes everything
 *   (bounded by its deadline) rather than losing them.
 */
import type { ConnectionStore, RemovedConnection } from "../contract/connection-store";
import { fanOut, type FanOutPolicy, type FanOutSummary } from "./fan-out";
import { FANOUT_WORKER } from "../contract/routes";
import type { ConnectionsApi, PreparedPayload } from "../runtime/connections-api";
import { DEFAULT_FANOUT, type FanOutSettings } from "../contract/env";

/** Lambda's limit on an asynchronous invocation's payload (256 KB). */
export const ASYNC_PAYLOAD_LIMIT_BYTES = 256 * 1024;
/** API Gateway's integration timeout: `sendmessage` must have answered by then. */
export const INTEGRATION_TIMEOUT_MS = 29_000;
/** The fan-out worker's Lambda timeout (infra deploys it with this). */
export const FANOUT_WORKER_TIMEOUT_SECONDS = FANOUT_WORKER.timeoutSeconds;
/** Time kept back from an invocation's budget for dispatching, cleanup and the summary log. */
export const DEADLINE_MARGIN_MS = 3_000;
/**
 * `sendmessage` stops taking ids this long (at least; twice the post timeout if more) before its deadline, so
 * the posts in flight finish in time; the ids it has not taken go to workers.
 */
export const HANDOFF_DRAIN_MS = 3_000;

/** The event of one fan-out worker invocation. */
export interface FanOutShardEvent {
  readonly type: "fanout-shard";
  readonly version: 1;
  /** The `sendmessage` request id: every shard's log line carries it. */
  readonly broadcastId: string;
  /** 1-based shard number within the broadcast. */
  readonly shard: number;
  /** The connection that sent the message. */
  readonly sender?: string;
  /** The payload as text, or… */
  readonly data?: string;
  /** …as base64, when JSON-escaping the text would make it larger. */
  readonly dataBase64?: string;
  readonly connectionIds: readonly string[];
}

export function isFanOutShardEvent(event: unknown): event is FanOutShardEvent {
  const e = event as Partial<FanOutShardEvent> | null;
  return (
    typeof e === "object" &&
    e !== null &&
    e.type === "fanout-shard" &&
    e.version === 1 &&
    Array.isArray(e.connectionIds) &&
    (typeof e.data === "string" || typeof e.dataBase64 === "string")
  );
}

/** The payload field of a shard event: text when that is smaller on the wire than base64. */
export function shardData(payload: Buffer): Pick<FanOutShardEvent, "data" | "dataBase64"> {
  const text = payload.toString("utf8");
  const lossless = Buffer.from(text, "utf8").equals(payload);
  const base64 = payload.toString("base64");
  return lossless && JSON.stringify(text).length <= base64.length + 2 ? { data: text } : { dataBase64: base64 };
}

export function shardPayload(event: FanOutShardEvent): Buffer {
  return event.dataBase64 !== undefined
    ? Buffer.from(event.dataBase64, "base64")
    : Buffer.from(event.data ?? "", "utf8");
}

/** Sends one shard to a worker; resolves once the invocation is accepted (not run). */
export type InvokeWorker = (event: FanOutShardEvent) => Promise<void>;

/** What Lambda passes as the handler's second argument (the part used here). */
export interface InvocationContext {
  getRemainingTimeInMillis(): number;
}

/** The epoch-ms deadline of an invocation: its remaining time (or `budgetMs` outside Lambda) minus a margin. */
export function deadlineOf(context: InvocationContext | undefined, budgetMs: number, now = Date.now()): number {
  const remaining = context ? Math.min(budgetMs, context.getRemainingTimeInMillis()) : budgetMs;
  return now + Math.max(1_000, remaining - DEADLINE_MARGIN_MS);
}

/** The fan-out policy of an invocation: the env's concurrency, bounded by the agent's sockets, and its post options. */
export function fanOutPolicy(
  connections: ConnectionsApi,
  settings: FanOutSettings = DEFAULT_FANOUT,
): Partial<FanOutPolicy> {
  const post = connections.postOptions;
  return {
    concurrency: Math.min(settings.concurrency, connections.maxSockets),
    postTimeoutMs: post.timeoutMs,
    maxAttempts: post.maxAttempts,
    backoffBaseMs: post.backoffBaseMs,
    backoffCapMs: post.backoffCapMs,
  };
}

/**
 * A dispatch that failed after handing part of its ids to workers: only `undispatched` may go back to the inline
 * lane, or the part already dispatched would be posted twice.
 */
export class PartialDispatchError extends Error {
  override readonly name = "PartialDispatchError";
  constructor(
    override readonly cause: unknown,
    readonly undispatched: string[],
  ) {
    super(cause instanceof Error ? cause.message : String(cause));
  }
}

/**
 * Sends one shard to the worker, halving it until each event fits Lambda's 256 KB async payload. If a part fails,
 * the error names exactly the ids no worker got.
 */
export function shardDispatcher(
  base: Omit<FanOutShardEvent, "shard" | "connectionIds">,
  invokeWorker: InvokeWorker,
): (ids: string[]) => Promise<void> {
  let shard = 0;
  const dispatch = async (ids: string[]): Promise<void> => {
    const event: FanOutShardEvent = { ...base, shard: ++shard, connectionIds: ids };
    if (ids.length > 1 && Buffer.byteLength(JSON.stringify(event)) > ASYNC_PAYLOAD_LIMIT_BYTES - 1024) {
      shard--;
      const half = Math.ceil(ids.length / 2);
      const second = ids.slice(half);
      try {
        await dispatch(ids.slice(0, half));
      } catch (error) {
        throw new PartialDispatchError(error, [...undispatchedOf(error, ids.slice(0, half)), ...second]);
      }
      await dispatch(second);
      return;
    }
    try {
      await invokeWorker(event);
    } catch (error) {
      throw new PartialDispatchError(error, ids);
    }
  };
  return dispatch;
}

function undispatchedOf(error: unknown, ids: string[]): string[] {
  return error instanceof PartialDispatchError ? error.undispatched : ids;
}

export interface SplitPlan {
  /** Ids the inline lane takes at most. */
  readonly inlineMax: number;
  /** Ids per dispatched shard (a dispatcher may split further to fit the payload limit). */
  readonly shardSize: number;
  /** Ids per page handed to the inline lane. */
  readonly pageSize: number;
  readonly dispatch: (connectionIds: string[]) => Promise<void>;
}

export interface SplitStats {
  /** Ids the listing produced. */
  listed: number;
  /** Ids handed to the inline lane. */
  inline: number;
  /** Ids handed to workers. */
  dispatched: number;
  shards: number;
  dispatchFailed: boolean;
  /** Ids neither posted inline nor dispatched (the inline lane stopped and dispatching had failed). */
  dropped: number;
  listingError?: unknown;
  dispatchError?: unknown;
}

/** A FIFO of ids kept as the listing's pages (no per-id copying). */
class IdQueue {
  private pages: string[][] = [];
  private offset = 0;
  count = 0;

  push(ids: readonly string[]): void {
    if (ids.length === 0) return;
    this.pages.push([...ids]);
    this.count += ids.length;
  }

  unshift(ids: string[]): void {
    if (ids.length === 0) return;
    if (this.offset > 0) {
      this.pages[0] = this.pages[0]!.slice(this.offset);
      this.offset = 0;
    }
    this.pages.unshift(ids);
    this.count += ids.length;
  }

  take(n: number): string[] {
    const out: string[] = [];
    while (out.length < n && this.pages.length > 0) {
      const page = this.pages[0]!;
      const want = n - out.length;
      const end = Math.min(page.length, this.offset + want);
      for (let i = this.offset; i < end; i++) out.push(page[i]!);
      this.offset = end;
      if (this.offset === page.length) {
        this.pages.shift();
        this.offset = 0;
      }
    }
    this.count -= out.length;
    return out;
  }
}

/** Wakes every waiter on `notify()`; waiters re-check their condition in a loop. */
class Signal {
  private waiters: (() => void)[] = [];
  wait(): Promise<void> {
    return new Promise((resolve) => this.waiters.push(resolve));
  }
  notify(): void {
    const waiters = this.waiters;
    this.waiters = [];
    for (const w of waiters) w();
  }
}

/**
 * Splits a listing between the inline lane (the returned iterable, for `fanOut`) and worker shards (`plan.dispatch`).
 * `done` resolves once every listed id has been handed to one or the other.
 */
export function splitListing(
  listing: AsyncIterable<readonly string[]>,
  plan: SplitPlan,
): { inline: AsyncIterable<string[]>; giveBack: (ids: readonly string[]) => void; done: Promise<SplitStats> } {
  const stats: SplitStats = { listed: 0, inline: 0, dispatched: 0, shards: 0, dispatchFailed: false, dropped: 0 };
  const buffer = new IdQueue();
  const toInline = new Signal();
  const toRouter = new Signal();
  let listingDone = false;
  let routerDone = false;
  /** The listing has ended and the buffer is empty: the router waits only for the inline lane to close. */
  let drained = false;
  let inlineClosed = false;
  const shardSize = Math.max(1, plan.shardSize);

  const dispatchShard = async (n: number) => {
    const ids = buffer.take(n);
    try {
      await plan.dispatch(ids);
      stats.shards++;
      stats.dispatched += ids.length;
    } catch (error) {
      // Only what no worker got goes back to the inline lane; the rest is already being posted.
      const back = undispatchedOf(error, ids);
      stats.dispatched += ids.length - back.length;
      stats.dispatchFailed = true;
      stats.dispatchError = error instanceof PartialDispatchError ? error.cause : error;
      buffer.unshift(back);
      toInline.notify();
    }
  };

  const inlineBudget = () => (stats.dispatchFailed ? Infinity : plan.inlineMax - stats.inline);

  const router = (async () => {
    try {
      for await (const page of listing) {
        stats.listed += page.length;
        buffer.push(page);
        toInline.notify();
        while (!stats.dispatchFailed && buffer.count >= shardSize) await dispatchShard(shardSize);
        // Dispatching failed: everything goes inline, and the listing waits for it (memory stays bounded).
        while (stats.dispatchFailed && !inlineClosed && buffer.count >= shardSize) await toRouter.wait();
        if (stats.dispatchFailed && inlineClosed) break;
      }
    } catch (error) {
      stats.listingError = error;
    }
    listingDone = true;
    for (;;) {
      // What the inline budget does not cover goes to workers; once the inline lane has closed, everything left does.
      while (buffer.count > 0 && !stats.dispatchFailed && (inlineClosed || buffer.count > inlineBudget())) {
        await dispatchShard(Math.min(shardSize, buffer.count));
      }
      // Done when the inline lane has closed and nothing is left (or nothing left can go anywhere). An empty buffer
      // with the inline lane open is not the end: it may still give ids back (`giveBack`) before it closes.
      if (inlineClosed && (buffer.count === 0 || stats.dispatchFailed)) break;
      drained = buffer.count === 0;
      toInline.notify();
      await toRouter.wait();
    }
    stats.dropped += buffer.count;
    routerDone = true;
    toInline.notify();
    return stats;
  })();

  async function* inline(): AsyncGenerator<string[]> {
    try {
      for (;;) {
        const budget = inlineBudget();
        if (budget <= 0) {
          // Out of budget, but a dispatch still running may fail and hand its ids back (budget then unbounded):
          // close only once the router has nothing left to dispatch.
          if (routerDone || drained) return;
          await toInline.wait();
          continue;
        }
        // Once the listing has ended, what is in the buffer is either inline's or being dispatched (router decides).
        if (buffer.count > 0 && !(listingDone && !routerDone && !stats.dispatchFailed && buffer.count > budget)) {
          const ids = buffer.take(Math.min(plan.pageSize, budget, buffer.count));
          stats.inline += ids.length;
          toRouter.notify();
          yield ids;
          continue;
        }
        if ((routerDone || drained) && buffer.count === 0) return;
        await toInline.wait();
      }
    } finally {
      inlineClosed = true;
      toRouter.notify();
    }
  }

  /**
   * The inline lane gives back ids it took but did not start (its deadline came mid-page): they go back to the
   * front of the buffer, and to workers once the lane has closed. Call before closing the lane.
   */
  const giveBack = (ids: readonly string[]): void => {
    if (ids.length === 0) return;
    buffer.unshift([...ids]);
    stats.inline -= ids.length;
    toRouter.notify();
  };

  return { inline: inline(), giveBack, done: router };
}

export interface BroadcastOptions {
  readonly store: ConnectionStore;
  readonly connections: ConnectionsApi;
  readonly settings: FanOutSettings;
  readonly payload: PreparedPayload;
  readonly broadcastId: string;
  readonly sender?: string;
  readonly deadline: number;
  readonly invokeWorker: InvokeWorker;
  /** Only this room's members (`store.list({ room })`); default every connection. */
  readonly room?: string;
  /** Told what each removal of stale ids (410s of the inline lane) removed, e.g. to announce `left` in their rooms. */
  readonly onRemoved?: (removed: RemovedConnection[]) => void;
}

export interface BroadcastSummary extends FanOutSummary {
  /** Ids listed: the audience (inline + dispatched). */
  listed: number;
  /** Ids handed to worker invocations, and how many invocations. */
  dispatched: number;
  shards: number;
  dispatchFailed: boolean;
  dropped: number;
}

export async function broadcast(options: BroadcastOptions): Promise<BroadcastSummary> {
  const { settings, payload } = options;
  const base = {
    type: "fanout-shard",
    version: 1,
    broadcastId: options.broadcastId,
    sender: options.sender,
    ...shardData(payload.body),
  } as const;
  const dispatch = shardDispatcher(base, options.invokeWorker);
  const split = splitListing(
    options.store.list({ pageSize: settings.pageSize, ...(options.room !== undefined ? { room: options.room } : {}) }),
    {
      inlineMax: settings.inlineMax,
      shardSize: settings.shardSize,
      pageSize: settings.pageSize,
      dispatch,
    },
  );
  const policy = fanOutPolicy(options.connections, settings);
  const summary = await fanOut({
    targets: split.inline,
    // Ids the deadline leaves unstarted mid-page go back to the split, and on to workers.
    giveBack: split.giveBack,
    // The split already reads the listing ahead; a prefetched page would be lost at the intake deadline.
    prefetch: false,
    attempt: (connectionId, timeoutMs) => options.connections.attempt(connectionId, payload, timeoutMs),
    store: options.store,
    onRemoved: options.onRemoved,
    deadline: options.deadline,
    // Stop taking ids early enough for the posts in flight to finish: workers take the rest.
    intakeDeadline: options.deadline - Math.max(HANDOFF_DRAIN_MS, 2 * (policy.postTimeoutMs ?? 0)),
    ...policy,
  });
  const stats = await split.done;
  if (stats.listingError !== undefined && !summary.listingFailed) {
    summary.listingFailed = true;
    const e = stats.listingError;
    summary.errors.push(e instanceof Error ? `${e.name}: ${e.message}` : String(e));
  }
  if (stats.dispatchError !== undefined) {
    const e = stats.dispatchError;
    summary.errors.push(`dispatch: ${e instanceof Error ? `${e.name}: ${e.message}` : String(e)}`);
  }
  // Ids neither posted nor dispatched (the inline lane stopped after dispatching had failed) were never answered.
  summary.failed += stats.dropped;
  summary.expired += stats.dropped;
  return {
    ...summary,
    listed: stats.listed,
    dispatched: stats.dispatched,
    shards: stats.shards,
    dispatchFailed: stats.dispatchFailed,
    dropped: stats.dropped,
  };
}
