/**
 * Broadcast fan-out: one message in, N posts out, in one invocation.
 *
 * - Streaming: pages of connection ids are consumed as the store yields them (the next page is fetched while
 *   the current one is posted, see read-ahead.ts) and posts start before the listing ends. Memory is bounded by
 *   the window, the page size and the batch of stale ids, never by N.
 * - Bounded, adaptive concurrency: at most `concurrency` posts are in flight, and within that bound an AIMD
 *   window (adaptive-window.ts) offers the throttle about what it admits; twenty workers starting together do not
 *   fire thousands of posts (and hold thousands of requests in memory) into a throttle they have not measured yet.
 * - Retries, timeouts and the answers that stop a post or the broadcast: target-poster.ts.
 * - 410 GoneException ids are removed from the store in batches (gone-batches.ts); 413 stops the broadcast (the
 *   payload is the same for everyone) and is reported to the caller.
 *
 * This file is the orchestration: set up a run, take targets until the listing ends or a deadline comes, wait for
 * the posts in flight and the cleanup, report.
 */
import type { ConnectionStore, RemovedConnection } from "../contract/connection-store";
import { AimdWindow } from "./adaptive-window";
import { type FanOutPolicy, resolvePolicy } from "./fan-out-policy";
import { emptySummary, type FanOutSummary, noteError, noteExpired } from "./fan-out-summary";
import { GoneBatches, type GoneSink } from "./gone-batches";
import { InFlight } from "./in-flight";
import { readAhead } from "./read-ahead";
import { type AttemptPost, TargetPoster } from "./target-poster";

export { AimdWindow } from "./adaptive-window";
export { DEFAULT_FAN_OUT_POLICY, type FanOutPolicy } from "./fan-out-policy";
export type { FanOutSummary } from "./fan-out-summary";
export { readAhead } from "./read-ahead";

export interface FanOutOptions extends Partial<FanOutPolicy>, GoneSink {
  /** Ids to post to, as pages (usually `store.list()`). */
  readonly targets: AsyncIterable<readonly string[]>;
  /** One attempt to post to one connection, aborted after `timeoutMs`; must not throw. */
  readonly attempt: AttemptPost;
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
  /**
   * Told each id that was not delivered: its post failed (after its retries, or at once for a 403/400) or
   * expired at the deadline. Not told after a 413 (the payload is too large for everyone). A worker re-queues
   * these as a smaller shard (chat/shard-batch.ts), so no failed post goes untraced.
   */
  readonly onUndelivered?: (connectionId: string) => void;
  /** Fetch the next page while posting the current one (default true; off when `targets` is already in memory). */
  readonly prefetch?: boolean;
  /** Clock (tests). */
  readonly now?: () => number;
}

/** One fan-out in progress: its clock and deadlines, its tallies, and the parts that post. */
interface FanOutRun {
  readonly options: FanOutOptions;
  readonly now: () => number;
  readonly started: number;
  readonly deadline: number;
  readonly intakeDeadline: number;
  readonly summary: FanOutSummary;
  readonly window: AimdWindow;
  readonly gone: GoneBatches;
  readonly poster: TargetPoster;
  readonly inFlight: InFlight;
}

export async function fanOut(options: FanOutOptions): Promise<FanOutSummary> {
  const run = startRun(options);
  await takeTargets(run, options.prefetch === false ? options.targets : readAhead(options.targets));
  await run.inFlight.waitForAll();
  await run.gone.finish();
  return finish(run);
}

function startRun(options: FanOutOptions): FanOutRun {
  const policy = resolvePolicy(options);
  const concurrency = Math.max(1, Math.floor(policy.concurrency));
  const now = options.now ?? Date.now;
  const deadline = options.deadline ?? Infinity;
  const started = now();
  const summary = emptySummary(concurrency);
  const window = new AimdWindow(concurrency);
  const gone = new GoneBatches(options, policy.goneBatchSize, summary);
  const poster = new TargetPoster(options, policy, deadline, now, window, gone, summary);
  return {
    options,
    now,
    started,
    deadline,
    intakeDeadline: Math.min(deadline, options.intakeDeadline ?? Infinity),
    summary,
    window,
    gone,
    poster,
    inFlight: new InFlight(poster, window, summary),
  };
}

/**
 * Takes pages from `targets` and starts a post per id as the window frees up, until the listing ends or fails, a
 * deadline comes, or a 413 stops the broadcast; then closes `targets` if it has not ended.
 */
async function takeTargets(run: FanOutRun, targets: AsyncIterable<readonly string[]>): Promise<void> {
  const { summary, inFlight, poster } = run;
  const iterator = targets[Symbol.asyncIterator]();
  let listing: "open" | "ended" = "open";
  try {
    outer: for (;;) {
      if (run.now() >= run.intakeDeadline) {
        intakeClosed(run);
        break;
      }
      const next = await iterator.next();
      if (next.done) {
        listing = "ended";
        break;
      }
      const page = next.value;
      for (let i = 0; i < page.length; i++) {
        await inFlight.waitForSlot();
        if (poster.stopped || run.now() >= run.deadline) {
          stoppedMidPage(run, page.slice(i));
          break outer;
        }
        summary.targets++;
        inFlight.start(page[i]!);
      }
    }
  } catch (error) {
    listing = "ended";
    summary.listingFailed = true;
    noteError(summary, error);
  }
  if (listing === "open") await iterator.return?.()?.catch?.(() => undefined);
}

/** Past the intake deadline no page is taken: the caller hands what is left to someone else. */
function intakeClosed(run: FanOutRun): void {
  if (run.options.intakeDeadline !== undefined) run.summary.handedBack = true;
  else run.summary.truncated = true;
}

/** The deadline or a 413 came mid-page: the ids not started go back to the caller, or are counted, never lost silently. */
function stoppedMidPage(run: FanOutRun, unstarted: string[]): void {
  const { summary } = run;
  if (!run.poster.stopped && run.options.giveBack) {
    run.options.giveBack(unstarted);
    summary.handedBack = true;
    return;
  }
  summary.truncated = true;
  // After a 413 the rest of the audience is simply not attempted; after the deadline it expired.
  if (!run.poster.stopped) {
    summary.targets += unstarted.length;
    noteExpired(summary, unstarted.length);
    if (run.options.onUndelivered) for (const id of unstarted) run.options.onUndelivered(id);
  }
}

function finish(run: FanOutRun): FanOutSummary {
  run.summary.minWindow = run.window.minReached;
  run.summary.durationMs = run.now() - run.started;
  return run.summary;
}
