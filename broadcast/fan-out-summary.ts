/** What one fan-out reports: its tallies, flags and first few distinct errors. */

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

/** Distinct errors kept in a summary at most. */
const MAX_ERRORS = 5;

export function emptySummary(concurrency: number): FanOutSummary {
  return {
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
}

export function errorText(error: unknown): string {
  return error instanceof Error ? `${error.name}: ${error.message}` : String(error);
}

/** Adds `error` to the summary's errors, unless it is already there or the list is full. */
export function noteError(summary: FanOutSummary, error: unknown): void {
  if (summary.errors.length >= MAX_ERRORS) return;
  const text = errorText(error);
  if (!summary.errors.includes(text)) summary.errors.push(text);
}

/** Counts `n` targets as failed for want of time (the deadline left them unanswered or unstarted). */
export function noteExpired(summary: FanOutSummary, n = 1): void {
  summary.failed += n;
  summary.expired += n;
}
