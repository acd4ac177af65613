/** The knobs of one fan-out (window bound, timeouts, retries, backoff, cleanup batches): defaults and sources. */
import { DEFAULT_FANOUT, type FanOutSettings } from "../contract/env";
import type { ConnectionsApi } from "../runtime/connections-api";

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

/** The policy a fan-out runs with: what the caller set, the defaults for the rest. */
export function resolvePolicy(given: Partial<FanOutPolicy>): FanOutPolicy {
  return {
    concurrency: given.concurrency ?? DEFAULT_FAN_OUT_POLICY.concurrency,
    postTimeoutMs: given.postTimeoutMs ?? DEFAULT_FAN_OUT_POLICY.postTimeoutMs,
    maxAttempts: given.maxAttempts ?? DEFAULT_FAN_OUT_POLICY.maxAttempts,
    backoffBaseMs: given.backoffBaseMs ?? DEFAULT_FAN_OUT_POLICY.backoffBaseMs,
    backoffCapMs: given.backoffCapMs ?? DEFAULT_FAN_OUT_POLICY.backoffCapMs,
    throttleBackoffBaseMs: given.throttleBackoffBaseMs ?? DEFAULT_FAN_OUT_POLICY.throttleBackoffBaseMs,
    throttleBackoffCapMs: given.throttleBackoffCapMs ?? DEFAULT_FAN_OUT_POLICY.throttleBackoffCapMs,
    goneBatchSize: given.goneBatchSize ?? DEFAULT_FAN_OUT_POLICY.goneBatchSize,
  };
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
