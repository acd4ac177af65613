/**
 * Per-connection abuse limits of the message routes, part of the runtime environment contract (env.ts):
 *
 * - a rate limit: at most `messages` per fixed window of `windowSeconds`, counted in the connection store so
 *   every Lambda container sees the same count (chat/rate-limit.ts applies it);
 * - the largest `data` a `sendmessage` may broadcast, in bytes of its wire form, below API Gateway's 128 KB.
 */
import { ENV, type Env, envInteger } from "./env-vars";

export interface MessageLimits {
  /** Messages per window; 0 turns the rate limit off. */
  readonly messages: number;
  readonly windowSeconds: number;
  /** Largest `data` (bytes of what is posted), at most {@link MAX_DATA_BYTES_CEILING}. */
  readonly maxDataBytes: number;
}

export const DEFAULT_MESSAGE_LIMITS: MessageLimits = Object.freeze({
  messages: 20,
  windowSeconds: 10,
  maxDataBytes: 32_768,
});

/**
 * `maxDataBytes` must stay below this: API Gateway's message payload limit (128 KB) and `PostToConnection`'s
 * 131,072-byte `Data` limit. One byte under, so a `data` at the limit still fits in a frame with its envelope.
 */
export const MAX_DATA_BYTES_CEILING = 131_071;

/**
 * A connection that sends more than this many times the limit within one window is abusing it on purpose (it
 * already received `RateLimited` frames for every message past the limit) and is disconnected.
 */
export const ABUSE_FACTOR = 3;

export function readMessageLimits(env: Env = process.env): MessageLimits {
  return {
    messages: envInteger(env, ENV.RATE_LIMIT_MESSAGES, DEFAULT_MESSAGE_LIMITS.messages, 0, 1_000_000),
    windowSeconds: envInteger(env, ENV.RATE_LIMIT_WINDOW_SECONDS, DEFAULT_MESSAGE_LIMITS.windowSeconds, 1, 86_400),
    maxDataBytes: envInteger(env, ENV.MAX_DATA_BYTES, DEFAULT_MESSAGE_LIMITS.maxDataBytes, 1, MAX_DATA_BYTES_CEILING),
  };
}

/** The environment variables for `limits` (what infra and the local CLI set). */
export function messageLimitsEnv(limits: MessageLimits): Record<string, string> {
  return {
    [ENV.RATE_LIMIT_MESSAGES]: String(limits.messages),
    [ENV.RATE_LIMIT_WINDOW_SECONDS]: String(limits.windowSeconds),
    [ENV.MAX_DATA_BYTES]: String(limits.maxDataBytes),
  };
}
