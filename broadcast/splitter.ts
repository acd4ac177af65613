/**
 * Splits a broadcast's listing between the inline lane (the ids this invocation posts itself, pulled by `fanOut`)
 * and worker shards (`plan.dispatch`). Two coroutines share one buffer of listed ids:
 *
 * - the router reads the listing into the buffer and dispatches a shard whenever the buffer holds a full one (the
 *   listing is then running ahead of the posting); once the listing has ended it dispatches what the inline
 *   budget does not cover, and, once the lane has closed, everything left;
 * - the lane takes pages from the head of the buffer while it has budget, and may give back ids it took but did
 *   not start (they go to workers).
 *
 * Where each stands is explicit state (split-state.ts), changed only by its transitions; the coroutines wake each
 * other with two signals and re-check.
 */
import { IdQueue } from "./id-queue";
import { dispatchCauseOf, undispatchedOf } from "./shard-dispatcher";
import { Signal } from "./signal";
import { SplitMachine } from "./split-state";

export interface SplitPlan {
  /** Ids the inline lane takes at most. */
  readonly inlineMax: number;
  /** Ids per dispatched shard (a dispatcher may split further to fit the payload limit). */
  readonly shardSize: number;
  /** Ids per page handed to the inline lane. */
  readonly pageSize: number;
  readonly dispatch: (connectionIds: string[]) => Promise<void>;
  /**
   * Epoch ms after which the router stops waiting for the listing: a store that hangs mid-listing must not hold
   * the invocation past its budget. What was listed by then is still posted or dispatched; the rest of the
   * audience is reported (`listingError`), never silently skipped. Default: none.
   */
  readonly deadline?: number;
}

/** The listing did not yield its next page before the split's deadline. */
export class ListingDeadlineError extends Error {
  override readonly name = "ListingDeadlineError";
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

/**
 * Splits a listing between the inline lane (the returned iterable, for `fanOut`) and worker shards (`plan.dispatch`).
 * `done` resolves once every listed id has been handed to one or the other.
 */
export function splitListing(
  listing: AsyncIterable<readonly string[]>,
  plan: SplitPlan,
): { inline: AsyncIterable<string[]>; giveBack: (ids: readonly string[]) => void; done: Promise<SplitStats> } {
  const split = new ListingSplit(plan);
  const done = split.route(listing);
  return { inline: split.lane(), giveBack: split.giveBack, done };
}

class ListingSplit {
  readonly stats: SplitStats = { listed: 0, inline: 0, dispatched: 0, shards: 0, dispatchFailed: false, dropped: 0 };
  private readonly state = new SplitMachine();
  private readonly buffer = new IdQueue();
  private readonly toLane = new Signal();
  private readonly toRouter = new Signal();
  private readonly shardSize: number;

  constructor(private readonly plan: SplitPlan) {
    this.shardSize = Math.max(1, plan.shardSize);
  }

  /** The router coroutine: read the listing, settle the rest, report. */
  async route(listing: AsyncIterable<readonly string[]>): Promise<SplitStats> {
    await this.readListing(listing);
    await this.settle();
    this.stats.dropped += this.buffer.count;
    this.state.routerFinished();
    this.toLane.notify();
    return this.stats;
  }

  /** The inline lane: pages from the head of the buffer, while its budget lasts and the router leaves them to it. */
  async *lane(): AsyncGenerator<string[]> {
    try {
      for (;;) {
        const budget = this.inlineBudget();
        if (budget <= 0) {
          // Out of budget, but a dispatch still running may fail and hand its ids back (budget then unbounded):
          // close only once the router has nothing left to dispatch.
          if (this.state.routerQuiet) return;
          await this.toLane.wait();
          continue;
        }
        if (this.laneMayTake(budget)) {
          const ids = this.buffer.take(Math.min(this.plan.pageSize, budget, this.buffer.count));
          this.stats.inline += ids.length;
          this.toRouter.notify();
          yield ids;
          continue;
        }
        if (this.state.routerQuiet && this.buffer.count === 0) return;
        await this.toLane.wait();
      }
    } finally {
      this.state.laneClosed();
      this.toRouter.notify();
    }
  }

  /**
   * The inline lane gives back ids it took but did not start (its deadline came mid-page): they go back to the
   * front of the buffer, and to workers once the lane has closed. Call before closing the lane.
   */
  readonly giveBack = (ids: readonly string[]): void => {
    if (ids.length === 0) return;
    this.buffer.unshift([...ids]);
    this.stats.inline -= ids.length;
    this.toRouter.notify();
  };

  private inlineBudget(): number {
    return this.state.dispatching ? this.plan.inlineMax - this.stats.inline : Infinity;
  }

  /**
   * Whether the lane may take from the buffer now. Once the listing has ended, what the buffer holds beyond the
   * lane's budget is the router's to dispatch, so the lane waits for it to decide.
   */
  private laneMayTake(budget: number): boolean {
    if (this.buffer.count === 0) return false;
    return !(this.state.routerAllotting && this.state.dispatching && this.buffer.count > budget);
  }

  /**
   * While the listing runs: buffer each page and dispatch whole shards (once dispatching has failed, pace the
   * listing to the lane instead). Ends in `settling`, in the same step as the listing, so the lane never sees a
   * finished listing as still running.
   */
  private async readListing(listing: AsyncIterable<readonly string[]>): Promise<void> {
    const { state, buffer, shardSize } = this;
    const pages = withDeadline(listing, this.plan.deadline);
    try {
      for await (const page of pages) {
        this.stats.listed += page.length;
        buffer.push(page);
        this.toLane.notify();
        while (state.dispatching && buffer.count >= shardSize) await this.dispatchShard(shardSize);
        // Dispatching failed: everything goes inline, and the listing waits for it (memory stays bounded).
        while (!state.dispatching && state.laneOpen && buffer.count >= shardSize) await this.toRouter.wait();
        if (!state.dispatching && !state.laneOpen) break;
      }
    } catch (error) {
      this.stats.listingError = error;
    }
    state.listingEnded();
  }

  /** Once the listing has ended: dispatch what the lane will not take, until the lane has closed. */
  private async settle(): Promise<void> {
    const { state, buffer } = this;
    for (;;) {
      // What the inline budget does not cover goes to workers; once the inline lane has closed, everything left does.
      while (buffer.count > 0 && state.dispatching && (!state.laneOpen || buffer.count > this.inlineBudget())) {
        await this.dispatchShard(Math.min(this.shardSize, buffer.count));
      }
      // Done when the inline lane has closed and nothing is left (or nothing left can go anywhere). An empty buffer
      // with the inline lane open is not the end: it may still give ids back (`giveBack`) before it closes.
      if (!state.laneOpen && (buffer.count === 0 || !state.dispatching)) return;
      state.routerWaits(buffer.count === 0);
      this.toLane.notify();
      await this.toRouter.wait();
    }
  }

  private async dispatchShard(n: number): Promise<void> {
    const ids = this.buffer.take(n);
    try {
      await this.plan.dispatch(ids);
      this.stats.shards++;
      this.stats.dispatched += ids.length;
    } catch (error) {
      // Only what no worker got goes back to the inline lane; the rest is already being posted.
      const back = undispatchedOf(error, ids);
      this.stats.dispatched += ids.length - back.length;
      this.stats.dispatchFailed = true;
      this.stats.dispatchError = dispatchCauseOf(error);
      this.state.dispatchFailed(this.stats.dispatchError);
      this.buffer.unshift(back);
      this.toLane.notify();
    }
  }
}

/**
 * `listing`, abandoned with a {@link ListingDeadlineError} when its next page has not come by `deadline`. The
 * abandoned listing is told to close, without waiting for it (it may be the part that hangs).
 */
async function* withDeadline(
  listing: AsyncIterable<readonly string[]>,
  deadline: number | undefined,
): AsyncGenerator<readonly string[]> {
  if (deadline === undefined || !Number.isFinite(deadline)) {
    yield* listing;
    return;
  }
  const iterator = listing[Symbol.asyncIterator]();
  let finished = false;
  try {
    for (;;) {
      const wait = deadline - Date.now();
      let timer: NodeJS.Timeout | undefined;
      const timeout = new Promise<never>((_, reject) => {
        timer = setTimeout(
          () => reject(new ListingDeadlineError("the listing had not ended by the broadcast's deadline")),
          Math.max(0, wait),
        );
      });
      let next: IteratorResult<readonly string[]>;
      try {
        const pending = iterator.next();
        // Settling after the deadline has been taken, the page is no one's: its failure must not go unhandled.
        pending.catch(() => undefined);
        next = await Promise.race([pending, timeout]);
      } finally {
        clearTimeout(timer);
      }
      if (next.done) {
        finished = true;
        return;
      }
      yield next.value;
    }
  } finally {
    if (!finished) void Promise.resolve(iterator.return?.()).catch(() => undefined);
  }
}
