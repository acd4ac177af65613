/**
 * API Gateway WebSocket limits the local gateway enforces (docs/local-gateway.md). Every value can be
 * overridden (tests use tiny timeouts); the defaults are AWS's, none of which AWS lets you raise.
 */

export interface GatewayLimits {
  /** Largest inbound data frame, bytes; a larger one closes the connection with 1009. AWS: 32 KB. */
  readonly maxFrameBytes: number;
  /** Largest inbound message (all fragments together), bytes; larger closes with 1009. AWS: 128 KB. */
  readonly maxMessageBytes: number;
  /** Largest `PostToConnection` body, bytes; larger answers 413 PayloadTooLargeException. AWS: 131072. */
  readonly maxPostBytes: number;
  /** Close with 1001 after this long without a data frame in either direction, ms. AWS: 10 min. */
  readonly idleTimeoutMs: number;
  /** Close with 1001 this long after the handshake whatever the activity, ms. AWS: 2 h. */
  readonly maxConnectionMs: number;
  /** Give up waiting for a route's handler after this long, ms. AWS: 29 s. */
  readonly integrationTimeoutMs: number;
}

export const DEFAULT_LIMITS: GatewayLimits = Object.freeze({
  maxFrameBytes: 32 * 1024,
  maxMessageBytes: 128 * 1024,
  maxPostBytes: 131_072,
  idleTimeoutMs: 10 * 60 * 1000,
  maxConnectionMs: 2 * 60 * 60 * 1000,
  integrationTimeoutMs: 29 * 1000,
});

/** Merges overrides over the defaults, rejecting values that are not positive numbers. */
export function resolveLimits(overrides: Partial<GatewayLimits> = {}): GatewayLimits {
  const limits: Record<string, number> = { ...DEFAULT_LIMITS };
  for (const [key, value] of Object.entries(overrides)) {
    if (value === undefined) continue;
    if (!(key in DEFAULT_LIMITS)) throw new RangeError(`unknown limit "${key}"`);
    if (typeof value !== "number" || !Number.isFinite(value) || value <= 0) {
      throw new RangeError(`limit ${key} must be a positive number, got ${String(value)}`);
    }
    limits[key] = value;
  }
  return Object.freeze(limits) as unknown as GatewayLimits;
}

/** Close codes and reasons the gateway sends when it ends a connection itself (§7.2 recommendations). */
export const CLOSE = Object.freeze({
  /** `DELETE @connections/{id}`: observed on AWS. */
  deleted: { code: 1000, reason: "Connection Closed Normally" },
  /** Idle timeout, 2 h limit and gateway shutdown (AWS's codes for the timeouts are not documented). */
  goingAway: { code: 1001, reason: "Going away" },
  /** Binary frame: AWS documents the code 1003; the reason text is ours. */
  binary: { code: 1003, reason: "Binary frames are not supported" },
  /** Frame > 32 KB or message > 128 KB: AWS documents the code 1009; the reason text is ours. */
  tooBig: { code: 1009, reason: "Message too big" },
});

/** `disconnectReason` API Gateway reports for a close frame that carried no status code (observed on AWS). */
export const NO_STATUS_REASON = "Client-side close frame status not set";
