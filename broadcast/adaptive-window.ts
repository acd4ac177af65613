/**
 * The adaptive bound on posts in flight, shaped like TCP's congestion window (AIMD): it starts small and doubles
 * every round trip (slow start), then shrinks by 30 % on a 429 (at most once per round trip) and grows by one post
 * per round trip of successes. So an invocation offers the throttle about what it admits instead of a storm of
 * 429s — which on AWS would also throttle every other caller of the account, clients' messages included.
 */

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
