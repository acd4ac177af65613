/**
 * One post to one target, with its retries: the per-post hot path of a fan-out.
 *
 * - 429 LimitExceededException is retried after a full-jitter backoff and does NOT count toward `maxAttempts`: a
 *   throttled post is never dropped while the bucket refills, only when the broadcast's deadline comes.
 * - 5xx, dropped sockets and timeouts count toward `maxAttempts` (then the post fails). Every attempt is aborted
 *   after `postTimeoutMs` (or at the deadline, whichever is first), so a hanging post cannot hold a slot.
 * - 410 GoneException ids go to the stale-id batches; 413 stops the broadcast (the payload is the same for everyone).
 *
 * Nothing here allocates per post beyond the attempt itself: tallies go straight into the summary.
 */
import { type Attempt, backoffMs } from "../runtime/connections-api";
import type { AimdWindow } from "./adaptive-window";
import type { FanOutPolicy } from "./fan-out-policy";
import { type FanOutSummary, noteError, noteExpired } from "./fan-out-summary";
import type { GoneBatches } from "./gone-batches";

/**
 * One attempt to post to one connection, aborted `timeoutMs` after it got a socket, or after `waitLimitMs`
 * waiting for one; must not throw.
 */
export type AttemptPost = (connectionId: string, timeoutMs: number, waitLimitMs?: number) => Promise<Attempt>;

/** What a post does after an answer: stop (it is settled), or retry after this many ms. */
const SETTLED = -1;

const sleep = (ms: number) => new Promise<void>((resolve) => setTimeout(resolve, ms));

export class TargetPoster {
  /** A target answered 413: the payload is too large for everyone, so nothing more is attempted. */
  stopped = false;

  constructor(
    private readonly source: {
      readonly attempt: AttemptPost;
      /** Told each id whose post failed or expired (not after a 413): a worker re-queues them. */
      readonly onUndelivered?: (connectionId: string) => void;
    },
    private readonly policy: FanOutPolicy,
    private readonly deadline: number,
    private readonly now: () => number,
    private readonly window: AimdWindow,
    private readonly gone: GoneBatches,
    private readonly summary: FanOutSummary,
  ) {}

  async post(connectionId: string): Promise<void> {
    let attempts = 0;
    let failures = 0;
    let throttles = 0;
    try {
      for (;;) {
        const remaining = this.deadline - this.now();
        if (remaining <= 0 || this.stopped) {
          if (!this.stopped) this.source.onUndelivered?.(connectionId);
          return noteExpired(this.summary);
        }
        attempts++;
        const sentAt = this.now();
        let result: Attempt;
        try {
          // Queued for a socket, the attempt may wait until the deadline; once sent, `postTimeoutMs` at most.
          result = await this.source.attempt(connectionId, Math.min(this.policy.postTimeoutMs, remaining), remaining);
        } catch (error) {
          result = { kind: "fatal", error: error instanceof Error ? error : new Error(String(error)) };
        }
        let pause: number;
        switch (result.kind) {
          case "delivered":
            this.summary.delivered++;
            this.window.onSuccess(this.now() - sentAt);
            return;
          case "gone":
            this.summary.gone++;
            this.window.onSuccess(this.now() - sentAt);
            this.gone.add(connectionId);
            return;
          case "too-large":
            this.summary.tooLarge++;
            this.stopped = true;
            return;
          case "fatal":
            this.summary.failed++;
            noteError(this.summary, result.error);
            this.source.onUndelivered?.(connectionId);
            return;
          case "throttled":
            pause = this.afterThrottle(++throttles);
            break;
          case "retryable":
            pause = this.afterFailure(result, ++failures);
            break;
        }
        if (pause === SETTLED) {
          this.source.onUndelivered?.(connectionId);
          return;
        }
        await sleep(pause);
      }
    } finally {
      this.summary.retried += Math.max(0, attempts - 1);
    }
  }

  /** A 429: shrink the window and back off, unless the backoff would outlast the deadline (then it expires). */
  private afterThrottle(throttles: number): number {
    this.summary.throttled++;
    this.window.onThrottle(this.now());
    const pause = backoffMs(this.policy.throttleBackoffBaseMs, this.policy.throttleBackoffCapMs, throttles);
    if (this.now() + pause >= this.deadline) {
      noteExpired(this.summary);
      return SETTLED;
    }
    return pause;
  }

  /** A 5xx, dropped socket or timeout: back off, unless this was the last attempt (then it fails). */
  private afterFailure(result: Attempt & { kind: "retryable" }, failures: number): number {
    if (result.timedOut) this.summary.timedOut++;
    if (failures >= this.policy.maxAttempts) {
      this.summary.failed++;
      noteError(this.summary, result.error);
      return SETTLED;
    }
    return backoffMs(this.policy.backoffBaseMs, this.policy.backoffCapMs, failures);
  }
}
