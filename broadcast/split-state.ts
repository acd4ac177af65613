/**
 * The state of a listing split (splitter.ts), as three small state machines with named transitions: the router
 * (reading → settling ⇄ drained → done), the inline lane (open → closed) and dispatching (dispatching → failed).
 * The coroutines read it through the guards below rather than combining flags themselves.
 */

/** The router: the coroutine that reads the listing and hands ids to workers. */
export type RouterState =
  /** Reading the listing: a full shard in the buffer goes to a worker at once. */
  | { readonly kind: "reading" }
  /** The listing has ended: the router dispatches what the inline budget does not cover; the lane takes the rest. */
  | { readonly kind: "settling" }
  /**
   * Settling, and the router found the buffer empty with no dispatch running: it waits for the lane to close or
   * to give ids back. The lane may close now: no dispatch can fail and hand it ids.
   */
  | { readonly kind: "drained" }
  /** Every listed id went to the lane or to a worker, or was dropped: nothing more comes. */
  | { readonly kind: "done" };

/** The inline lane: the iterable `fanOut` pulls its pages from. */
export type LaneState = { readonly kind: "open" } | { readonly kind: "closed" };

/** Dispatching works, or has failed once: from then on everything goes inline (bounded by the lane's deadline). */
export type DispatchState = { readonly kind: "dispatching" } | { readonly kind: "failed"; readonly error: unknown };

const READING: RouterState = { kind: "reading" };
const SETTLING: RouterState = { kind: "settling" };
const DRAINED: RouterState = { kind: "drained" };
const DONE: RouterState = { kind: "done" };
const OPEN: LaneState = { kind: "open" };
const CLOSED: LaneState = { kind: "closed" };
const DISPATCHING: DispatchState = { kind: "dispatching" };

/** The split's state, and the only transitions between states. */
export class SplitMachine {
  router: RouterState = READING;
  lane: LaneState = OPEN;
  dispatch: DispatchState = DISPATCHING;

  /** reading → settling: the listing has ended (or failed, or is abandoned). */
  listingEnded(): void {
    if (this.router.kind === "reading") this.router = SETTLING;
  }

  /** settling ⇄ drained: the router goes to wait, having found the buffer empty or not. */
  routerWaits(bufferEmpty: boolean): void {
    if (this.router.kind === "settling" || this.router.kind === "drained")
      this.router = bufferEmpty ? DRAINED : SETTLING;
  }

  /** settling | drained → done. */
  routerFinished(): void {
    if (this.router.kind !== "reading") this.router = DONE;
  }

  /** open → closed. */
  laneClosed(): void {
    this.lane = CLOSED;
  }

  /** dispatching → failed (once: nothing is dispatched after a failure). */
  dispatchFailed(error: unknown): void {
    if (this.dispatch.kind === "dispatching") this.dispatch = { kind: "failed", error };
  }

  get dispatching(): boolean {
    return this.dispatch.kind === "dispatching";
  }

  get laneOpen(): boolean {
    return this.lane.kind === "open";
  }

  /** The listing has ended and the router is still deciding what goes to workers. */
  get routerAllotting(): boolean {
    return this.router.kind === "settling" || this.router.kind === "drained";
  }

  /** Nothing more can reach the buffer except what the lane gives back: the lane may close once it is empty. */
  get routerQuiet(): boolean {
    return this.router.kind === "drained" || this.router.kind === "done";
  }
}
