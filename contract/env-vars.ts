/**
 * The names of the runtime environment variables (infra sets them, the runtime reads them), the error a broken
 * environment raises, and the one reader of an integer variable. The bottom of the env contract: the readers
 * of each part (env.ts, message-limits.ts, auth-settings.ts) build on it.
 */

/** Environment variable names, shared by infra (which sets them) and the runtime (which reads them). */
export const ENV = {
  /** `dynamodb` | `redis` | `memory`. */
  STORE: "STORE",
  /** DynamoDB table name (store `dynamodb`). */
  TABLE_NAME: "TABLE_NAME",
  /** Redis primary endpoint host (store `redis`). */
  REDIS_HOST: "REDIS_HOST",
  /** Redis port, default 6379. */
  REDIS_PORT: "REDIS_PORT",
  /** `true` to connect with TLS (ElastiCache in-transit encryption). */
  REDIS_TLS: "REDIS_TLS",
  /** Redis AUTH token itself: local runs and tests only. Deployed functions get {@link ENV.REDIS_AUTH_SECRET_ARN}. */
  REDIS_AUTH_TOKEN: "REDIS_AUTH_TOKEN",
  /**
   * ARN of the Secrets Manager secret whose SecretString is the Redis AUTH token (what infra sets): the token is
   * fetched once per container, at cold start (runtime/secrets.ts). Exclusive with REDIS_AUTH_TOKEN.
   */
  REDIS_AUTH_SECRET_ARN: "REDIS_AUTH_SECRET_ARN",
  /** Standard AWS SDK override for the Secrets Manager endpoint (tests point it at a loopback server). */
  AWS_ENDPOINT_URL_SECRETS_MANAGER: "AWS_ENDPOINT_URL_SECRETS_MANAGER",
  /** Alternative to host/port/TLS/auth: one `redis://` or `rediss://` URL (local runs, tests). */
  REDIS_URL: "REDIS_URL",
  /** Prefix of every Redis key, default `wsc`. */
  REDIS_KEY_PREFIX: "REDIS_KEY_PREFIX",
  /** The `@connections` management endpoint: `https://{apiId}.execute-api.{region}.amazonaws.com/{stage}`. */
  CALLBACK_URL: "CALLBACK_URL",
  /** How long a stored connection lives without `$disconnect`, seconds (default 7,500: 2 h + 5 min). */
  CONNECTION_TTL_SECONDS: "CONNECTION_TTL_SECONDS",
  /** Messages one connection may send per rate-limit window (default 20; 0 turns the limit off). */
  RATE_LIMIT_MESSAGES: "RATE_LIMIT_MESSAGES",
  /** Length of the rate-limit window, seconds (default 10). */
  RATE_LIMIT_WINDOW_SECONDS: "RATE_LIMIT_WINDOW_SECONDS",
  /** Messages one user may send per window over all its connections (default 40; 0: no per-user limit). */
  RATE_LIMIT_USER_MESSAGES: "RATE_LIMIT_USER_MESSAGES",
  /** Room-less broadcasts per window, per user (per connection without auth); default 10, 0: no separate limit. */
  RATE_LIMIT_BROADCASTS: "RATE_LIMIT_BROADCASTS",
  /** Live connections per user, refused at `$connect` with 429 past it (default 5; 0: no cap). */
  MAX_CONNECTIONS_PER_USER: "MAX_CONNECTIONS_PER_USER",
  /** Largest `data` sendmessage broadcasts, bytes of its wire form (default 32768; below 131072). */
  MAX_DATA_BYTES: "MAX_DATA_BYTES",
  /** Authorizer only: the JWT `iss` every token must carry. */
  AUTH_ISSUER: "AUTH_ISSUER",
  /** Authorizer only: the JWT `aud` every token must carry. */
  AUTH_AUDIENCE: "AUTH_AUDIENCE",
  /** Authorizer only: the issuer's JSON Web Key Set URL. */
  AUTH_JWKS_URL: "AUTH_JWKS_URL",
  /** Authorizer only: comma-separated JWS algorithms accepted (default the RS/PS/ES families; never none or HS*). */
  AUTH_ALGORITHMS: "AUTH_ALGORITHMS",
  /** Authorizer only: query-string parameter carrying the token (default `token`). */
  AUTH_QUERY_PARAM: "AUTH_QUERY_PARAM",
  /** Authorizer only: header carrying the token (`Bearer ` prefix optional), read when the query has none. */
  AUTH_HEADER: "AUTH_HEADER",
  /** Standard AWS SDK override, honoured by the DynamoDB client (points it at a local server). */
  AWS_ENDPOINT_URL_DYNAMODB: "AWS_ENDPOINT_URL_DYNAMODB",
  /** Posts one fan-out invocation keeps in flight at most (also the keep-alive agent's sockets). Default 256. */
  FANOUT_CONCURRENCY: "FANOUT_CONCURRENCY",
  /** Per-attempt timeout of one post, ms: a post can hang past the SDK's timeouts. Default 3,000. */
  POST_TIMEOUT_MS: "POST_TIMEOUT_MS",
  /** Connection ids per store page while a broadcast lists them. Default 1,000. */
  FANOUT_PAGE_SIZE: "FANOUT_PAGE_SIZE",
  /**
   * Ids the `sendmessage` invocation posts itself at most; a broadcast to more connections hands the rest to
   * fan-out worker invocations. Default 40,000 (what one invocation posts within its budget; see docs/fan-out.md).
   */
  FANOUT_INLINE_MAX: "FANOUT_INLINE_MAX",
  /** Ids per fan-out worker invocation (capped further by Lambda's 256 KB async payload). Default 5,000. */
  FANOUT_SHARD_SIZE: "FANOUT_SHARD_SIZE",
  /**
   * Name or ARN of the fan-out worker Lambda, invoked asynchronously with shards of a large broadcast. Unset
   * (local runs, tests): shards run in the same process.
   */
  FANOUT_WORKER_FUNCTION: "FANOUT_WORKER_FUNCTION",
  /** Standard AWS SDK override for the Lambda endpoint (the worker invoker honours it). */
  AWS_ENDPOINT_URL_LAMBDA: "AWS_ENDPOINT_URL_LAMBDA",
  /**
   * URL of the SQS queue that holds shards of large broadcasts until the fan-out worker has posted them (set by
   * infra on the functions that broadcast and on the worker, which queues failed ids again). Takes precedence
   * over FANOUT_WORKER_FUNCTION. Unset (local runs, tests): shards run in the same process.
   */
  FANOUT_SHARD_QUEUE_URL: "FANOUT_SHARD_QUEUE_URL",
  /** URL of the shard queue's dead-letter queue (the worker only): ids that failed on every try go there. */
  FANOUT_SHARD_DLQ_URL: "FANOUT_SHARD_DLQ_URL",
  /** Standard AWS SDK override for the SQS endpoint (the shard queue client honours it). */
  AWS_ENDPOINT_URL_SQS: "AWS_ENDPOINT_URL_SQS",
  /** Rooms one connection may be in at once (default 10, at most {@link MAX_ROOMS_PER_CONNECTION_CEILING}). */
  MAX_ROOMS_PER_CONNECTION: "MAX_ROOMS_PER_CONNECTION",
  /** Members one room may have at once; 0 (the default) for no bound, at most {@link MAX_MEMBERS_PER_ROOM_CEILING}. */
  MAX_MEMBERS_PER_ROOM: "MAX_MEMBERS_PER_ROOM",
  /** Messages kept in each room's history (default 100, at most 1,000): resume and the history action read them. */
  HISTORY_MAX_ENTRIES: "HISTORY_MAX_ENTRIES",
  /** Age after which a room's history entry is gone, seconds (default 86,400: a day; at most a week). */
  HISTORY_MAX_AGE_SECONDS: "HISTORY_MAX_AGE_SECONDS",
  /** How long a client's send reference is remembered, seconds (default 600; at most 86,400): a repeat is not delivered. */
  SEND_REF_WINDOW_SECONDS: "SEND_REF_WINDOW_SECONDS",
} as const;

/** Thrown when the environment does not satisfy the contract; the message names the variable. */
export class EnvError extends Error {
  override readonly name = "EnvError";
}

export type Env = Readonly<Record<string, string | undefined>>;

/** The variable's value without surrounding space; `undefined` when unset or blank. */
export function envText(env: Env, key: string): string | undefined {
  const value = env[key]?.trim();
  return value ? value : undefined;
}

/** A decimal integer within [min, max]; `fallback` when unset or blank. */
export function envInteger(env: Env, key: string, fallback: number, min: number, max: number): number {
  const raw = envText(env, key);
  if (raw === undefined) return fallback;
  const value = /^\d+$/.test(raw) ? Number(raw) : Number.NaN;
  if (!Number.isSafeInteger(value) || value < min || value > max) {
    const range = max === Number.MAX_SAFE_INTEGER ? `an integer >= ${min}` : `an integer from ${min} to ${max}`;
    throw new EnvError(`${key} must be ${range}, got "${raw}"`);
  }
  return value;
}
