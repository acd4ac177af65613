/**
 * Reconnect delays: exponential backoff with full jitter, as AWS's Architecture Blog "Exponential Backoff And
 * Jitter" defines it: `sleep = random_between(0, min(cap, base * 2 ** attempt))`. Full jitter spreads a crowd of
 * clients that lost the same gateway at the same moment, so they do not come back in lock-step.
 */

export interface BackoffOptions {
  /** First ceiling, ms. @default 500 */
  readonly baseMs?: number;
  /** Largest ceiling, ms. @default 30000 */
  readonly capMs?: number;
}

export const DEFAULT_BACKOFF: Required<BackoffOptions> = { baseMs: 500, capMs: 30_000 };

/** The delay before reconnect attempt `attempt` (1 for the first retry); `random` returns [0, 1). */
export function fullJitterDelay(attempt: number, options: BackoffOptions = {}, random: () => number = Math.random) {
  const baseMs = options.baseMs ?? DEFAULT_BACKOFF.baseMs;
  const capMs = options.capMs ?? DEFAULT_BACKOFF.capMs;
  const ceiling = Math.min(capMs, baseMs * 2 ** Math.max(0, Math.min(attempt - 1, 30)));
  return Math.floor(random() * ceiling);
}
