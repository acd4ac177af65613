/**
 * Abuse limits of the message routes and of `$connect`, part of the runtime environment contract (env.ts):
 *
 * - a rate limit: at most `messages` per fixed window of `windowSeconds` per connection, and at most
 *   `userMessages` per window per user (the authorizer's user id, summed over the user's connections), counted in
 *   the connection store so every Lambda container sees the same count (chat/rate-limit.ts applies it);
 * - room-less broadcasts (a `sendmessage` to every connection) have their own, smaller budget: `broadcasts` per
 *   window, per user (per connection without auth), on top of the message counts;
 * - at most `connectionsPerUser` live connections per user, refused at `$connect` (chat/user-connections.ts);
 * - the largest `data` a `sendmessage` may broadcast, in bytes of its wire form, below API Gateway's 128 KB.
 */
import { ENV, type Env, envInteger } from "./env-vars";

export interface MessageLimits {
  /** Messages per window; 0 turns the rate limit off. */
  readonly messages: number;
  readonly windowSeconds: number;
  /** Largest `data` (bytes of what is posted), at most {@link MAX_DATA_BYTES_CEILING}. */
  readonly maxDataBytes: number;
  /** Messages per window of one user over all its connections (authorized connections only); 0: no per-user limit. */
  readonly userMessages: number;
  /** Room-less broadcasts per window, per user (per connection without auth); 0: no separate broadcast limit. */
  readonly broadcasts: number;
  /** Live connections per user, refused at `$connect` past it (authorized connections only); 0: no cap. */
  readonly connectionsPerUser: number;
}

export const DEFAULT_MESSAGE_LIMITS: MessageLimits = Object.freeze({
  messages: 20,
  windowSeconds: 10,
  maxDataBytes: 32_768,
  // Two connections' worth: a user with a phone and a laptop open is not limited more than one connection is,
  // but ten tabs do not buy ten budgets.
  userMessages: 40,
  // A room-less broadcast is one post per connection of the whole API. Half the message budget: one a second,
  // a person chatting in the lobby is not limited, a script is held to half the posts it would otherwise make.
  broadcasts: 10,
  connectionsPerUser: 5,
});

/**
 * Minutes between runs of the token sweeper (infra's schedule; the local gateway's timer defaults to the same):
 * an idle connection lives at most this long past its token's expiry.
 */
export const DEFAULT_TOKEN_SWEEP_MINUTES = 1;

/** Upper bound of `connectionsPerUser`: the store keeps the user's live connection ids in one item / key. */
export const MAX_CONNECTIONS_PER_USER_CEILING = 1_000;

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
    userMessages: envInteger(env, ENV.RATE_LIMIT_USER_MESSAGES, DEFAULT_MESSAGE_LIMITS.userMessages, 0, 1_000_000),
    broadcasts: envInteger(env, ENV.RATE_LIMIT_BROADCASTS, DEFAULT_MESSAGE_LIMITS.broadcasts, 0, 1_000_000),
    connectionsPerUser: envInteger(
      env,
      ENV.MAX_CONNECTIONS_PER_USER,
      DEFAULT_MESSAGE_LIMITS.connectionsPerUser,
      0,
      MAX_CONNECTIONS_PER_USER_CEILING,
    ),
  };
}

/** The environment variables for `limits` (what infra and the local CLI set). */
export function messageLimitsEnv(limits: MessageLimits): Record<string, string> {
  return {
    [ENV.RATE_LIMIT_MESSAGES]: String(limits.messages),
    [ENV.RATE_LIMIT_WINDOW_SECONDS]: String(limits.windowSeconds),
    [ENV.MAX_DATA_BYTES]: String(limits.maxDataBytes),
    [ENV.RATE_LIMIT_USER_MESSAGES]: String(limits.userMessages),
    [ENV.RATE_LIMIT_BROADCASTS]: String(limits.broadcasts),
    [ENV.MAX_CONNECTIONS_PER_USER]: String(limits.connectionsPerUser),
  };
}
