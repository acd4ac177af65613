/**
 * The broadcast fan-out part of the stack configuration (the object key `fanout`): how many posts one invocation
 * keeps in flight, the per-post timeout, the memory (hence CPU) of the functions that post, and where a broadcast
 * is split into worker shards. Parsed here, collected into parse.ts's problem list; turned into the runtime's
 * FANOUT_* environment by {@link fanOutEnv}.
 */
import { ENV } from "../../contract/env";
import { CONFIG_SCHEMA } from "./schema";
import type { ConfigReader } from "./values";

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

/** What a stack that sets nothing gets (the schema's defaults). */
export const DEFAULT_FANOUT_CONFIG: FanOutConfig = {
  concurrency: CONFIG_SCHEMA.fanout.fields.concurrency.default,
  postTimeoutMs: CONFIG_SCHEMA.fanout.fields.postTimeoutMs.default,
  memorySize: CONFIG_SCHEMA.fanout.fields.memorySize.default,
  inlineMax: CONFIG_SCHEMA.fanout.fields.inlineMax.default,
  shardSize: CONFIG_SCHEMA.fanout.fields.shardSize.default,
};

export function parseFanOut(read: ConfigReader): { fanOut: FanOutConfig } {
  return {
    fanOut: {
      concurrency: read.integer("fanout.concurrency"),
      postTimeoutMs: read.integer("fanout.postTimeoutMs"),
      memorySize: read.integer("fanout.memorySize"),
      inlineMax: read.integer("fanout.inlineMax"),
      shardSize: read.integer("fanout.shardSize"),
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
