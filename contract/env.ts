/**
 * The runtime environment contract: the variables infra sets on every Lambda and the local gateway sets for
 * the same handlers. Read once per container, validated, typed.
 */
import { STORE_KINDS, type StoreKind } from "./connection-store";
import { ENV, type Env, EnvError, envInteger, envText } from "./env-vars";
import { type MessageLimits, readMessageLimits } from "./message-limits";
import { type HistorySettings, readHistorySettings } from "./room-history";

export { ENV, EnvError } from "./env-vars";

/** Default of {@link ENV.MAX_ROOMS_PER_CONNECTION} (config `maxRoomsPerConnection`). */
export const DEFAULT_MAX_ROOMS_PER_CONNECTION = 10;
/** Largest allowed `maxRoomsPerConnection`: a connection's rooms are read whole on every removal. */
export const MAX_ROOMS_PER_CONNECTION_CEILING = 100;

/** Default of {@link ENV.MAX_MEMBERS_PER_ROOM} (config `maxMembersPerRoom`): 0, no bound. */
export const DEFAULT_MAX_MEMBERS_PER_ROOM = 0;
/** Largest allowed `maxMembersPerRoom`. */
export const MAX_MEMBERS_PER_ROOM_CEILING = 1_000_000;

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

/** How broadcasts fan out (see broadcast/fan-out.ts and broadcast/broadcast.ts). */
export interface FanOutSettings {
  readonly concurrency: number;
  readonly postTimeoutMs: number;
  readonly pageSize: number;
  readonly inlineMax: number;
  readonly shardSize: number;
  /** Unset: shards run in this process. */
  readonly workerFunction?: string;
  /** The SQS shard queue (preferred over `workerFunction`). */
  readonly shardQueueUrl?: string;
  /** The shard queue's dead-letter queue (the worker's, for ids that failed on every try). */
  readonly shardDlqUrl?: string;
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
  /** Rate limit and `data` size (contract/message-limits.ts). Absent: {@link DEFAULT_MESSAGE_LIMITS}. */
  readonly limits?: MessageLimits;
  /** Absent: {@link DEFAULT_FANOUT}. */
  readonly fanOut?: FanOutSettings;
  /** Rooms one connection may be in at once. Absent: {@link DEFAULT_MAX_ROOMS_PER_CONNECTION}. */
  readonly maxRoomsPerConnection?: number;
  /** Members one room may have at once; 0 for no bound. Absent: {@link DEFAULT_MAX_MEMBERS_PER_ROOM}. */
  readonly maxMembersPerRoom?: number;
  /** Room history bounds and the send-reference window (contract/room-history.ts). Absent: the defaults. */
  readonly history?: HistorySettings;
}

const nonEmpty = envText;

function required(env: Env, key: string, why: string): string {
  const value = nonEmpty(env, key);
  if (value === undefined) throw new EnvError(`${key} must be set ${why}`);
  return value;
}

const positiveInt = (env: Env, key: string, fallback: number): number =>
  envInteger(env, key, fallback, 1, Number.MAX_SAFE_INTEGER);

function readFanOut(env: Env): FanOutSettings {
  const settings: FanOutSettings = {
    concurrency: positiveInt(env, ENV.FANOUT_CONCURRENCY, DEFAULT_FANOUT.concurrency),
    postTimeoutMs: positiveInt(env, ENV.POST_TIMEOUT_MS, DEFAULT_FANOUT.postTimeoutMs),
    pageSize: positiveInt(env, ENV.FANOUT_PAGE_SIZE, DEFAULT_FANOUT.pageSize),
    // 0 is allowed: every broadcast goes to workers.
    inlineMax: envInteger(env, ENV.FANOUT_INLINE_MAX, DEFAULT_FANOUT.inlineMax, 0, Number.MAX_SAFE_INTEGER),
    shardSize: positiveInt(env, ENV.FANOUT_SHARD_SIZE, DEFAULT_FANOUT.shardSize),
  };
  const workerFunction = nonEmpty(env, ENV.FANOUT_WORKER_FUNCTION);
  const shardQueueUrl = nonEmpty(env, ENV.FANOUT_SHARD_QUEUE_URL);
  const shardDlqUrl = nonEmpty(env, ENV.FANOUT_SHARD_DLQ_URL);
  return {
    ...settings,
    ...(workerFunction ? { workerFunction } : {}),
    ...(shardQueueUrl ? { shardQueueUrl } : {}),
    ...(shardDlqUrl ? { shardDlqUrl } : {}),
  };
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
  const maxMembersPerRoom = envInteger(
    env,
    ENV.MAX_MEMBERS_PER_ROOM,
    DEFAULT_MAX_MEMBERS_PER_ROOM,
    0,
    MAX_MEMBERS_PER_ROOM_CEILING,
  );
  return {
    ...readStoreEnv(env),
    limits: readMessageLimits(env),
    maxRoomsPerConnection,
    maxMembersPerRoom,
    history: readHistorySettings(env),
  };
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
