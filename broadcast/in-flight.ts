/**
 * The posts in flight of one fan-out, bounded by the adaptive window: `start` launches a post without waiting for
 * it, and the intake waits for a free slot before each. The conditions are bound once, so waiting allocates no
 * closure per post.
 */
import type { AimdWindow } from "./adaptive-window";
import type { FanOutSummary } from "./fan-out-summary";
import type { TargetPoster } from "./target-poster";

export class InFlight {
  private count = 0;
  private wake: (() => void) | undefined;

  constructor(
    private readonly poster: TargetPoster,
    private readonly window: AimdWindow,
    private readonly summary: FanOutSummary,
  ) {}

  start(connectionId: string): void {
    this.count++;
    if (this.count > this.summary.maxInFlight) this.summary.maxInFlight = this.count;
    void this.poster.post(connectionId).finally(this.settled);
  }

  /** Resolves once fewer posts than the window allows are in flight. */
  waitForSlot(): Promise<void> {
    return this.waitFor(this.slotFree);
  }

  /** Resolves once no post is in flight. */
  waitForAll(): Promise<void> {
    return this.waitFor(this.idle);
  }

  private readonly slotFree = () => this.count < this.window.limit;
  private readonly idle = () => this.count === 0;

  private readonly settled = () => {
    this.count--;
    const w = this.wake;
    this.wake = undefined;
    w?.();
  };

  private async waitFor(condition: () => boolean): Promise<void> {
    while (!condition()) await new Promise<void>((resolve) => (this.wake = resolve));
  }
}
