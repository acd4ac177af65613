/**
 * Broadcast fan-out: one message in, N posts out, in one invocation.
 *
 * - Streaming: pages of connection ids are consumed as the store yields them (the next page is fetched while
 *   the current one is posted) and posts start before the listing ends. Memory is bounded by the window, the
 *   page size and the batch of stale ids, never by N.
 * - Bounded, adaptive concurrency: at most `concurrency` posts are in flight. Within that bound a window shaped
 *   like TCP's congestion window starts small and doubles every round trip (slow start), then shrinks by 30% on
 *   a 429 (at most once per round trip) and grows by one post per round trip of successes. So the invocation
 *   offers the throttle about what it admits instead of a storm of 429s — which on AWS would also throttle every
 *   other caller of the account, clients' messages included — and twenty workers starting together do not fire
 *   thousands of posts (and hold thousands of requests in memory) into a throttle they have not measured yet.
 * - Retries: 429 LimitExceededException is retried after a full-jitter backoff and does NOT count toward
 *   `maxAttempts`: a throttled post is never dropped while the bucket refills, only when the broadcast's deadline
 *   comes. 5xx, dropped sockets and timeouts count toward `maxAttempts` (then the post fails). Every attempt is
 *   aborted after `postTimeoutMs` (or at the deadline, whichever is first), so a hanging post cannot hold a slot.
 * - 410 GoneException ids are removed from the store in batches; 413 stops the broadcast (the payload is the
 *   same for everyone) and is reported to the caller.
 */
import type { ConnectionStore, RemovedConnection } from "../contract/connection-store";
import { backoffMs, type Attempt } from "../runtime/connections-api";

export interface FanOutPolicy {
  /** Maximum posts in flight. */
  readonly concurrency: number;
  /** Abort one attempt after this many ms. */
  readonly postTimeoutMs: number;
  /** Attempts of one post for 5xx, socket errors and timeouts (429s are not counted). */
  readonly maxAttempts: number;
  /** Backoff after a 5xx / timeout: full jitter, base and cap in ms. */
  readonly backoffBaseMs: number;
  readonly backoffCapMs: number;
  /** Backoff after a 429: full jitter, base and cap in ms (exponential in the post's consecutive 429s). */
  readonly throttleBackoffBaseMs: number;
  readonly throttleBackoffCapMs: number;
  /** Stale ids removed per `removeMany` call. */
  readonly goneBatchSize: number;
}

export const DEFAULT_FAN_OUT_POLICY: FanOutPolicy = {
  concurrency: 256,
  postTimeoutMs: 3_000,
  maxAttempts: 3,
  backoffBaseMs: 50,
  backoffCapMs: 1_000,
  throttleBackoffBaseMs: 25,
  throttleBackoffCapMs: 1_000,
  goneBatchSize: 100,
};

export interface FanOutOptions extends Partial<FanOutPolicy> {
  /** Ids to post to, as pages (usually `store.list()`). */
  readonly targets: AsyncIterable<readonly string[]>;
  /** One attempt to post to one connection, aborted after `timeoutMs`; must not throw. */
  readonly attempt: (connectionId: string, timeoutMs: number) => Promise<Attempt>;
  /** Where stale ids are removed. */
  readonly store: Pick<ConnectionStore, "removeMany">;
  /** Told what each removal of stale ids removed (their rooms: presence announces `left` there). */
  readonly onRemoved?: (removed: RemovedConnection[]) => void;
  /** Epoch ms by which every post must be done; posts not done by then count as `expired`. Default: none. */
  readonly deadline?: number;
  /**
   * Epoch ms after which no further page is taken from `targets` (the pages taken are still posted); the caller
   * hands the rest of the listing to someone else (broadcast/broadcast.ts). Default: none.
   */
  readonly intakeDeadline?: number;
  /**
   * Takes back the ids of a page that the deadline left unstarted, before `targets` is closed (the caller hands
   * them to someone else: broadcast/broadcast.ts). Without it, they count as `expired`.
   */
  readonly giveBack?: (ids: readonly string[]) => void;
  /** Fetch the next page while posting the current one (default true; off when `targets` is already in memory). */
  readonly prefetch?: boolean;
  /** Clock (tests). */
  readonly now?: () => number;
}

export interface FanOutSummary {
  /** Targets taken from the listing. */
  targets: number;
  delivered: number;
  /** Targets that answered 410 (removed from the store in batches). */
  gone: number;
  /** Targets that answered 413 (the broadcast stops at the first). */
  tooLarge: number;
  /** Targets not delivered for any other reason: retries exhausted, a fatal answer, or the deadline (`expired`). */
  failed: number;
  /** Of `failed`: targets the deadline left without an answer (or never started). */
  expired: number;
  /** Extra attempts (429s, 5xx, timeouts). */
  retried: number;
  /** Attempts answered 429. */
  throttled: number;
  /** Attempts aborted by the per-post timeout. */
  timedOut: number;
  /** Stale ids whose removal from the store failed (the next broadcast's 410 retries them). */
  cleanupFailed: number;
  /** Smallest window a 429 brought the AIMD window down to (the concurrency when nothing did). */
  minWindow: number;
  /** Posts in flight at most. */
  maxInFlight: number;
  /** The listing failed part-way (its error is in `errors`); the targets listed before were still posted. */
  listingFailed: boolean;
  /** The deadline or a 413 stopped the broadcast before the listing ended: `targets` is not the whole audience. */
  truncated: boolean;
  /** The intake deadline came before the listing ended: the rest was left to the caller (not lost). */
  handedBack: boolean;
  /** Up to 5 distinct errors, `name: message`. */
  errors: string[];
  durationMs: number;
}

/** Iterates `source` one item ahead: the next page is fetched while the current one is being posted. */
export async function* readAhead<T>(source: AsyncIterable<T>): AsyncGenerator<T> {
  const iterator = source[Symbol.asyncIterator]();
  let next = iterator.next();
  // A prefetch that fails while the consumer is busy must not count as an unhandled rejection.
  next.catch(() => {});
  let finished = false;
  try {
    for (;;) {
      const result = await next;
      if (result.done) {
        finished = true;
        return;
      }
      next = iterator.next();
      next.catch(() => {});
      yield result.value;
    }
  } finally {
    if (!finished) {
      // Stopped early: wait for the prefetch, then close the source (a generator queues return after next).
      await next.catch(() => undefined);
      await iterator.return?.()?.catch?.(() => undefined);
    }
  }
}

/** Posts in flight when an invocation starts (slow start, see {@link AimdWindow}). */
const INITIAL_WINDOW = 16;

/** The AIMD window: a float between `min` and `max`; `limit` posts may be in flight. */
export class AimdWindow {
  private size: number;
  private lastDecrease = -Infinity;
  /** Smoothed duration of a successful attempt: one "round trip" for the decrease hold-off. */
  private rttMs = 50;
  /** Slow start: the window doubles every round trip until the first 429, then grows linearly. */
  private slowStart = true;
  minReached: number;

  /**
   * @param initial the window at the start: small, so twenty workers starting together do not fire thousands of
   *   posts into a throttle they have not measured yet (and hold the memory of thousands of requests).
   */
  constructor(
    readonly max: number,
    readonly min: number = Math.min(max, 4),
    initial: number = Math.min(max, INITIAL_WINDOW),
  ) {
    this.size = Math.max(min, Math.min(max, initial));
    this.minReached = max;
  }

  get limit(): number {
    return Math.max(1, Math.floor(this.size));
  }

  /**
   * Growth: one post per success in slow start (the window doubles every round trip), then about one post per
   * round trip. Latency alone never shrinks the window: API Gateway's latency varies widely, and a window cut on
   * slow answers would cut throughput the throttle still allows (measured: under CPU contention it did).
   */
  onSuccess(latencyMs: number): void {
    this.rttMs += 0.1 * (latencyMs - this.rttMs);
    if (this.size < this.max) this.size = Math.min(this.max, this.size + (this.slowStart ? 1 : 1 / this.size));
  }

  /** Multiplicative decrease, once per round trip: the 429s of posts sent before the decrease do not count again. */
  onThrottle(now: number): void {
    this.slowStart = false;
    if (now - this.lastDecrease < Math.max(10, this.rttMs)) return;
    this.lastDecrease = now;
    this.size = Math.max(this.min, this.size * 0.7);
    this.minReached = Math.min(this.minReached, this.limit);
  }
}

const sleep = (ms: number) => new Promise<void>((resolve) => setTimeout(resolve, ms));

function errorText(error: unknown): string {
  return error instanceof Error ? `${error.name}: ${error.message}` : String(error);
}

export async function fanOut(options: FanOutOptions): Promise<FanOutSummary> {
  const policy: FanOutPolicy = {
    concurrency: options.concurrency ?? DEFAULT_FAN_OUT_POLICY.concurrency,
    postTimeoutMs: options.postTimeoutMs ?? DEFAULT_FAN_OUT_POLICY.postTimeoutMs,
    maxAttempts: options.maxAttempts ?? DEFAULT_FAN_OUT_POLICY.maxAttempts,
    backoffBaseMs: options.backoffBaseMs ?? DEFAULT_FAN_OUT_POLICY.backoffBaseMs,
    backoffCapMs: options.backoffCapMs ?? DEFAULT_FAN_OUT_POLICY.backoffCapMs,
    throttleBackoffBaseMs: options.throttleBackoffBaseMs ?? DEFAULT_FAN_OUT_POLICY.throttleBackoffBaseMs,
    throttleBackoffCapMs: options.throttleBackoffCapMs ?? DEFAULT_FAN_OUT_POLICY.throttleBackoffCapMs,
    goneBatchSize: options.goneBatchSize ?? DEFAULT_FAN_OUT_POLICY.goneBatchSize,
  };
  const concurrency = Math.max(1, Math.floor(policy.concurrency));
  const goneBatchSize = Math.max(1, policy.goneBatchSize);
  const now = options.now ?? Date.now;
  const deadline = options.deadline ?? Infinity;
  const intakeDeadline = Math.min(deadline, options.intakeDeadline ?? Infinity);
  const started = now();
  const window = new AimdWindow(concurrency);
  const summary: FanOutSummary = {
    targets: 0,
    delivered: 0,
    gone: 0,
    tooLarge: 0,
    failed: 0,
    expired: 0,
    retried: 0,
    throttled: 0,
    timedOut: 0,
    cleanupFailed: 0,
    minWindow: concurrency,
    maxInFlight: 0,
    listingFailed: false,
    truncated: false,
    handedBack: false,
    errors: [],
    durationMs: 0,
  };
  const noteError = (error: unknown) => {
    if (summary.errors.length >= 5) return;
    const text = errorText(error);
    if (!summary.errors.includes(text)) summary.errors.push(text);
  };

  // Stale ids, removed one batch at a time (in order, never more than one removeMany in flight).
  let goneBuffer: string[] = [];
  let cleanups: Promise<void> = Promise.resolve();
  const flushGone = () => {
    if (goneBuffer.length === 0) return;
    const batch = goneBuffer;
    goneBuffer = [];
    cleanups = cleanups.then(() =>
      options.store.removeMany(batch).then(
        (removed) => {
          try {
            options.onRemoved?.(removed);
          } catch (error) {
            noteError(error);
          }
        },
        (error: unknown) => {
          summary.cleanupFailed += batch.length;
          noteError(error);
        },
      ),
    );
  };

  let stop = false;
  let inFlight = 0;
  let wake: (() => void) | undefined;
  const slotFreed = () => {
    const w = wake;
    wake = undefined;
    w?.();
  };

  const postOne = async (connectionId: string): Promise<void> => {
    let attempts = 0;
    let failures = 0;
    let throttles = 0;
    try {
      for (;;) {
        const remaining = deadline - now();
        if (remaining <= 0 || stop) {
          summary.failed++;
          summary.expired++;
          return;
        }
        attempts++;
        const sentAt = now();
        let result: Attempt;
        try {
          result = await options.attempt(connectionId, Math.min(policy.postTimeoutMs, remaining));
        } catch (error) {
          result = { kind: "fatal", error: error instanceof Error ? error : new Error(String(error)) };
        }
        switch (result.kind) {
          case "delivered":
            summary.delivered++;
            window.onSuccess(now() - sentAt);
            return;
          case "gone":
            summary.gone++;
            window.onSuccess(now() - sentAt);
            goneBuffer.push(connectionId);
            if (goneBuffer.length >= goneBatchSize) flushGone();
            return;
          case "too-large":
            summary.tooLarge++;
            stop = true;
            return;
          case "fatal":
            summary.failed++;
            noteError(result.error);
            return;
          case "throttled": {
            summary.throttled++;
            throttles++;
            window.onThrottle(now());
            const pause = backoffMs(policy.throttleBackoffBaseMs, policy.throttleBackoffCapMs, throttles);
            if (now() + pause >= deadline) {
              summary.failed++;
              summary.expired++;
              return;
            }
            await sleep(pause);
            break;
          }
          case "retryable":
            failures++;
            if (result.timedOut) summary.timedOut++;
            if (failures >= policy.maxAttempts) {
              summary.failed++;
              noteError(result.error);
              return;
            }
            await sleep(backoffMs(policy.backoffBaseMs, policy.backoffCapMs, failures));
            break;
        }
      }
    } finally {
      summary.retried += Math.max(0, attempts - 1);
    }
  };

  const start = (connectionId: string) => {
    inFlight++;
    if (inFlight > summary.maxInFlight) summary.maxInFlight = inFlight;
    void postOne(connectionId).finally(() => {
      inFlight--;
      slotFreed();
    });
  };

  const waitFor = async (condition: () => boolean) => {
    while (!condition()) await new Promise<void>((resolve) => (wake = resolve));
  };

  const iterator = (options.prefetch === false ? options.targets : readAhead(options.targets))[Symbol.asyncIterator]();
  let exhausted = false;
  try {
    outer: for (;;) {
      // Past the intake deadline no page is taken: the caller hands what is left to someone else.
      if (now() >= intakeDeadline) {
        if (options.intakeDeadline !== undefined) summary.handedBack = true;
        else summary.truncated = true;
        break;
      }
      const next = await iterator.next();
      if (next.done) {
        exhausted = true;
        break;
      }
      const page = next.value;
      for (let i = 0; i < page.length; i++) {
        await waitFor(() => inFlight < window.limit);
        if (stop || now() >= deadline) {
          const unstarted = page.slice(i);
          if (!stop && options.giveBack) {
            // The deadline came mid-page: the ids not started go back to the caller (not lost).
            options.giveBack(unstarted);
            summary.handedBack = true;
          } else {
            summary.truncated = true;
            // Never lost silently: the ids the deadline left unstarted count as expired.
            if (!stop) {
              summary.targets += unstarted.length;
              summary.failed += unstarted.length;
              summary.expired += unstarted.length;
            }
          }
          break outer;
        }
        summary.targets++;
        start(page[i]!);
      }
    }
  } catch (error) {
    exhausted = true;
    summary.listingFailed = true;
    noteError(error);
  }
  if (!exhausted) await iterator.return?.()?.catch?.(() => undefined);
  await waitFor(() => inFlight === 0);
  flushGone();
  await cleanups;
  summary.minWindow = window.minReached;
  summary.durationMs = now() - started;
  return summary;
}
