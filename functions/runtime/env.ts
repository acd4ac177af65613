/**
 * The runtime environment contract: the variables infra sets on every Lambda and the local gateway sets for
 * the same handlers. Read once per container, validated, typed.
 */
import { STORE_KINDS, type StoreKind } from "../../stores/connection-store";

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
  /** Redis AUTH token. */
  REDIS_AUTH_TOKEN: "REDIS_AUTH_TOKEN",
  /** Alternative to host/port/TLS/auth: one `redis://` or `rediss://` URL (local runs, tests). */
  REDIS_URL: "REDIS_URL",
  /** Prefix of every Redis key, default `wsc`. */
  REDIS_KEY_PREFIX: "REDIS_KEY_PREFIX",
  /** The `@connections` management endpoint: `https://{apiId}.execute-api.{region}.amazonaws.com/{stage}`. */
  CALLBACK_URL: "CALLBACK_URL",
  /** How long a stored connection lives without `$disconnect`, seconds (default 7,500: 2 h + 5 min). */
  CONNECTION_TTL_SECONDS: "CONNECTION_TTL_SECONDS",
  /** Standard AWS SDK override, honoured by the DynamoDB client (points it at a local server). */
  AWS_ENDPOINT_URL_DYNAMODB: "AWS_ENDPOINT_URL_DYNAMODB",
} as const;

/** API Gateway's hard 2 h connection limit plus a margin, so a record never expires before its connection. */
export const DEFAULT_CONNECTION_TTL_SECONDS = 2 * 60 * 60 + 5 * 60;

export type RedisEnv =
  | { readonly url: string; readonly keyPrefix: string }
  | {
      readonly host: string;
      readonly port: number;
      readonly tls: boolean;
      readonly authToken?: string;
      readonly keyPrefix: string;
    };

export interface RuntimeEnv {
  readonly store: StoreKind;
  readonly tableName?: string;
  readonly redis?: RedisEnv;
  readonly callbackUrl?: string;
  readonly connectionTtlSeconds: number;
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

export function readRuntimeEnv(env: Env = process.env): RuntimeEnv {
  const store = nonEmpty(env, ENV.STORE) ?? "";
  if (!(STORE_KINDS as readonly string[]).includes(store)) {
    throw new EnvError(`${ENV.STORE} must be one of ${STORE_KINDS.join(", ")}, got "${store}"`);
  }
  const kind = store as StoreKind;
  const connectionTtlSeconds = positiveInt(env, ENV.CONNECTION_TTL_SECONDS, DEFAULT_CONNECTION_TTL_SECONDS);
  const callbackUrl = nonEmpty(env, ENV.CALLBACK_URL);

  if (kind === "dynamodb") {
    return { store: kind, tableName: required(env, ENV.TABLE_NAME, "when STORE=dynamodb"), callbackUrl, connectionTtlSeconds };
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
          authToken: nonEmpty(env, ENV.REDIS_AUTH_TOKEN),
          keyPrefix,
        };
    return { store: kind, redis, callbackUrl, connectionTtlSeconds };
  }
  return { store: kind, callbackUrl, connectionTtlSeconds };
}
