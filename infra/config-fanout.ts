/**
 * The broadcast fan-out part of the stack configuration (issue 4, `fanout.*`): how many posts one invocation
 * keeps in flight, the per-post timeout, the memory (hence CPU) of the functions that post, and where a broadcast
 * is split into worker shards. Parsed here, collected into config.ts's problem list; turned into the runtime's
 * FANOUT_* environment by {@link fanOutEnv}.
 */
import { ENV, DEFAULT_FANOUT } from "../functions/runtime/env";
import { MEMORY_SIZE_MB, fullKey, type ConfigKey } from "./config-schema";

export interface FanOutConfig {
  /** FANOUT_CONCURRENCY: posts in flight per invocation, and the keep-alive agent's sockets. */
  readonly concurrency: number;
  /** POST_TIMEOUT_MS: one attempt of one post is aborted after this. */
  readonly postTimeoutMs: number;
  /** Memory (MB) of `sendmessage` and the fan-out worker: Lambda's CPU share, which bounds posts per second. */
  readonly memorySize: number;
  /** FANOUT_INLINE_MAX: ids `sendmessage` posts itself at most; the rest goes to worker shards. */
  readonly inlineMax: number;
  /** FANOUT_SHARD_SIZE: ids per worker invocation (further split to fit Lambda's 256 KB async payload). */
  readonly shardSize: number;
}

/**
 * 1,769 MB is one full vCPU: where a Node.js process (one thread) stops getting faster. Measured: ~4,000 signed
 * posts per second per vCPU (README, "Broadcast fan-out").
 */
export const DEFAULT_FANOUT_MEMORY_MB = 1769;

export const DEFAULT_FANOUT_CONFIG: FanOutConfig = {
  concurrency: DEFAULT_FANOUT.concurrency,
  postTimeoutMs: DEFAULT_FANOUT.postTimeoutMs,
  memorySize: DEFAULT_FANOUT_MEMORY_MB,
  inlineMax: DEFAULT_FANOUT.inlineMax,
  shardSize: DEFAULT_FANOUT.shardSize,
};

/** Bounds of each key: [min, max]. */
export const FANOUT_BOUNDS = {
  "fanout.concurrency": [1, 2_000],
  // Below API Gateway's 29 s: a post that may take longer can never finish inside `sendmessage`.
  "fanout.postTimeoutMs": [100, 20_000],
  "fanout.memorySize": [MEMORY_SIZE_MB.min, MEMORY_SIZE_MB.max],
  "fanout.inlineMax": [0, 10_000_000],
  "fanout.shardSize": [1, 20_000],
} as const satisfies Partial<Record<ConfigKey, readonly [number, number]>>;

type Raw = Readonly<Record<string, string | undefined>>;

export function parseFanOut(raw: Raw, problems: string[]): { fanOut: FanOutConfig } {
  const integer = (key: keyof typeof FANOUT_BOUNDS, fallback: number): number => {
    const [min, max] = FANOUT_BOUNDS[key];
    const value = raw[key]?.trim();
    if (value === undefined || value === "") return fallback;
    const parsed = /^[+-]?\d+$/.test(value) ? Number(value) : Number.NaN;
    if (!Number.isSafeInteger(parsed) || parsed < min || parsed > max) {
      problems.push(
        `Invalid config ${fullKey(key)}: ${JSON.stringify(raw[key])} (allowed: an integer from ${min} to ${max})`,
      );
      return fallback;
    }
    return parsed;
  };
  return {
    fanOut: {
      concurrency: integer("fanout.concurrency", DEFAULT_FANOUT_CONFIG.concurrency),
      postTimeoutMs: integer("fanout.postTimeoutMs", DEFAULT_FANOUT_CONFIG.postTimeoutMs),
      memorySize: integer("fanout.memorySize", DEFAULT_FANOUT_CONFIG.memorySize),
      inlineMax: integer("fanout.inlineMax", DEFAULT_FANOUT_CONFIG.inlineMax),
      shardSize: integer("fanout.shardSize", DEFAULT_FANOUT_CONFIG.shardSize),
    },
  };
}

/** The FANOUT_* environment of the functions (the worker's name is added for `sendmessage` only). */
export function fanOutEnv(config: FanOutConfig): Record<string, string> {
  return {
    [ENV.FANOUT_CONCURRENCY]: String(config.concurrency),
    [ENV.POST_TIMEOUT_MS]: String(config.postTimeoutMs),
    [ENV.FANOUT_INLINE_MAX]: String(config.inlineMax),
    [ENV.FANOUT_SHARD_SIZE]: String(config.shardSize),
  };
}
