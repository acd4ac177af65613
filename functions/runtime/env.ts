/**
 * The runtime environment contract: the variables infra sets on every Lambda and the local gateway sets for
 * the same handlers. Read once per container, validated, typed.
 */
import { STORE_KINDS, type StoreKind } from "../../stores/connection-store";
import { readMessageLimits, type MessageLimits } from "./message-limits";

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
   * fetched once per container, at cold start (functions/runtime/secrets.ts). Exclusive with REDIS_AUTH_TOKEN.
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
   * fan-out worker invocations. Default 40,000 (what one invocation posts within its budget; see the README).
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
  /** Rooms one connection may be in at once (default 10, at most {@link MAX_ROOMS_PER_CONNECTION_CEILING}). */
  MAX_ROOMS_PER_CONNECTION: "MAX_ROOMS_PER_CONNECTION",
} as const;

/** Default of {@link ENV.MAX_ROOMS_PER_CONNECTION} (config `maxRoomsPerConnection`). */
export const DEFAULT_MAX_ROOMS_PER_CONNECTION = 10;
/** Largest allowed `maxRoomsPerConnection`: a connection's rooms are read whole on every removal. */
export const MAX_ROOMS_PER_CONNECTION_CEILING = 100;

/** API Gateway's hard 2 h connection limit plus a margin, so a record never expires before its connection. */
export const DEFAULT_CONNECTION_TTL_SECONDS = 2 * 60 * 60 + 5 * 60;

export type RedisEnv =
  | { readonly url: string; readonly keyPrefix: string }
  | {
      readonly host: string;
      readonly port: number;
      readonly tls: boolean;
      readonly authToken?: string;
      /** Where the token is to be fetched from; resolved into `authToken` before a client is built. */
      readonly authSecretArn?: string;
      readonly keyPrefix: string;
    };

/** How broadcasts fan out (see functions/fan-out.ts and functions/broadcast.ts). */
export interface FanOutSettings {
  readonly concurrency: number;
  readonly postTimeoutMs: number;
  readonly pageSize: number;
  readonly inlineMax: number;
  readonly shardSize: number;
  /** Unset: shards run in this process. */
  readonly workerFunction?: string;
}

export const DEFAULT_FANOUT: FanOutSettings = {
  concurrency: 256,
  postTimeoutMs: 3_000,
  pageSize: 1_000,
  inlineMax: 40_000,
  shardSize: 5_000,
};

export interface RuntimeEnv {
  readonly store: StoreKind;
  readonly tableName?: string;
  readonly redis?: RedisEnv;
  readonly callbackUrl?: string;
  readonly connectionTtlSeconds: number;
  /** Rate limit and `data` size (functions/runtime/message-limits.ts). Absent: {@link DEFAULT_MESSAGE_LIMITS}. */
  readonly limits?: MessageLimits;
  /** Absent: {@link DEFAULT_FANOUT}. */
  readonly fanOut?: FanOutSettings;
  /** Rooms one connection may be in at once. Absent: {@link DEFAULT_MAX_ROOMS_PER_CONNECTION}. */
  readonly maxRoomsPerConnection?: number;
}

/** Thrown when the environment does not satisfy the contract; the message names the variable. */
export class EnvError extends Error {
  override readonly name = "EnvError";
}

type Env = Readonly<Record<string, string | undefined>>;

function nonEmpty(env: Env, key: string): string | undefined {
  const value = env[key]?.trim();
  return value ? value : undefined;
}

function required(env: Env, key: string, why: string): string {
  const value = nonEmpty(env, key);
  if (value === undefined) throw new EnvError(`${key} must be set ${why}`);
  return value;
}

function positiveInt(env: Env, key: string, fallback: number): number {
  const raw = nonEmpty(env, key);
  if (raw === undefined) return fallback;
  const value = Number(raw);
  if (!Number.isInteger(value) || value <= 0) throw new EnvError(`${key} must be a positive integer, got "${raw}"`);
  return value;
}

const raw = (env: Env, key: string) => env[key]?.trim();

function readFanOut(env: Env): FanOutSettings {
  const settings: FanOutSettings = {
    concurrency: positiveInt(env, ENV.FANOUT_CONCURRENCY, DEFAULT_FANOUT.concurrency),
    postTimeoutMs: positiveInt(env, ENV.POST_TIMEOUT_MS, DEFAULT_FANOUT.postTimeoutMs),
    pageSize: positiveInt(env, ENV.FANOUT_PAGE_SIZE, DEFAULT_FANOUT.pageSize),
    // 0 is allowed: every broadcast goes to workers.
    inlineMax:
      raw(env, ENV.FANOUT_INLINE_MAX) === "0" ? 0 : positiveInt(env, ENV.FANOUT_INLINE_MAX, DEFAULT_FANOUT.inlineMax),
    shardSize: positiveInt(env, ENV.FANOUT_SHARD_SIZE, DEFAULT_FANOUT.shardSize),
  };
  const workerFunction = nonEmpty(env, ENV.FANOUT_WORKER_FUNCTION);
  return workerFunction ? { ...settings, workerFunction } : settings;
}

/** The token itself (local runs) or the secret holding it (deployed), never both: which one would win is a guess. */
function redisAuth(env: Env): { authToken?: string; authSecretArn?: string } {
  const authToken = nonEmpty(env, ENV.REDIS_AUTH_TOKEN);
  const authSecretArn = nonEmpty(env, ENV.REDIS_AUTH_SECRET_ARN);
  if (authToken && authSecretArn) {
    throw new EnvError(`${ENV.REDIS_AUTH_TOKEN} and ${ENV.REDIS_AUTH_SECRET_ARN} are both set; set one`);
  }
  return authSecretArn ? { authSecretArn } : authToken ? { authToken } : {};
}

export function readRuntimeEnv(env: Env = process.env): RuntimeEnv {
  const maxRoomsPerConnection = positiveInt(env, ENV.MAX_ROOMS_PER_CONNECTION, DEFAULT_MAX_ROOMS_PER_CONNECTION);
  if (maxRoomsPerConnection > MAX_ROOMS_PER_CONNECTION_CEILING) {
    throw new EnvError(
      `${ENV.MAX_ROOMS_PER_CONNECTION} must be at most ${MAX_ROOMS_PER_CONNECTION_CEILING}, got ${maxRoomsPerConnection}`,
    );
  }
  return { ...readStoreEnv(env), limits: readMessageLimits(env), maxRoomsPerConnection };
}

function readStoreEnv(env: Env): RuntimeEnv {
  const store = nonEmpty(env, ENV.STORE) ?? "";
  if (!(STORE_KINDS as readonly string[]).includes(store)) {
    throw new EnvError(`${ENV.STORE} must be one of ${STORE_KINDS.join(", ")}, got "${store}"`);
  }
  const kind = store as StoreKind;
  const connectionTtlSeconds = positiveInt(env, ENV.CONNECTION_TTL_SECONDS, DEFAULT_CONNECTION_TTL_SECONDS);
  const callbackUrl = nonEmpty(env, ENV.CALLBACK_URL);
  const fanOut = readFanOut(env);

  if (kind === "dynamodb") {
    return {
      store: kind,
      tableName: required(env, ENV.TABLE_NAME, "when STORE=dynamodb"),
      callbackUrl,
      connectionTtlSeconds,
      fanOut,
    };
  }
  if (kind === "redis") {
    const keyPrefix = nonEmpty(env, ENV.REDIS_KEY_PREFIX) ?? "wsc";
    const url = nonEmpty(env, ENV.REDIS_URL);
    const redis: RedisEnv = url
      ? { url, keyPrefix }
      : {
          host: required(env, ENV.REDIS_HOST, `when STORE=redis and ${ENV.REDIS_URL} is not set`),
          port: positiveInt(env, ENV.REDIS_PORT, 6379),
          tls: nonEmpty(env, ENV.REDIS_TLS) === "true",
          ...redisAuth(env),
          keyPrefix,
        };
    return { store: kind, redis, callbackUrl, connectionTtlSeconds, fanOut };
  }
  return { store: kind, callbackUrl, connectionTtlSeconds, fanOut };
}
