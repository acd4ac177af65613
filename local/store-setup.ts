/**
 * Chooses and prepares the connection store for a local run, and produces the store's part of the Lambda
 * environment contract (contract/env.ts) for the handlers:
 *
 * - `memory`: nothing to set up (one process, nothing persisted).
 * - `redis`: `--redis-url`, else REDIS_URL, else redis://127.0.0.1:6379; checked with PING (bounded) and a version
 *   check (the store needs Redis >= 6.2).
 * - `dynamodb`: AWS_ENDPOINT_URL_DYNAMODB when set (the table is created there if missing), otherwise an embedded
 *   dynalite on a free loopback port with the table created as infra would (localCreateTableInput).
 *
 * Failures throw {@link StoreSetupError} with a one-line message.
 */
import type { Server } from "node:http";
import type { AddressInfo } from "node:net";
import { CreateTableCommand, DescribeTableCommand, type DynamoDBClient } from "@aws-sdk/client-dynamodb";
import { Redis } from "ioredis";
import { STORE_KINDS, type StoreKind } from "../contract/connection-store";
import { ENV } from "../contract/env";
import { createDynamoDbClient } from "../stores/dynamodb";
import { localCreateTableInput } from "../stores/dynamodb-table";

export const DEFAULT_REDIS_URL = "redis://127.0.0.1:6379";
export const DEFAULT_TABLE_NAME = "websocket-chat-connections";
/** How long the startup check of a store may take. */
const CHECK_TIMEOUT_MS = 5000;

export class StoreSetupError extends Error {
  override readonly name = "StoreSetupError";
}

export interface StoreChoice {
  readonly kind: StoreKind;
  /** Why this store, for the startup banner. */
  readonly reason: string;
}

type Env = Readonly<Record<string, string | undefined>>;

const set = (env: Env, key: string): string | undefined => {
  const value = env[key]?.trim();
  return value ? value : undefined;
};

/**
 * `--store` wins; else `--redis-url` or REDIS_URL selects redis; else AWS_ENDPOINT_URL_DYNAMODB selects dynamodb; else memory,
 * which needs nothing reachable.
 */
export function chooseStore(flag: string | undefined, env: Env, redisUrlFlag?: string): StoreChoice {
  if (flag !== undefined) {
    if (!(STORE_KINDS as readonly string[]).includes(flag)) {
      throw new StoreSetupError(`--store must be one of ${STORE_KINDS.join(", ")}, got "${flag}"`);
    }
    return { kind: flag as StoreKind, reason: "--store" };
  }
  if (redisUrlFlag !== undefined) return { kind: "redis", reason: "--redis-url" };
  if (set(env, ENV.REDIS_URL)) return { kind: "redis", reason: `${ENV.REDIS_URL} is set` };
  if (set(env, ENV.AWS_ENDPOINT_URL_DYNAMODB))
    return { kind: "dynamodb", reason: `${ENV.AWS_ENDPOINT_URL_DYNAMODB} is set` };
  return { kind: "memory", reason: `default: no --store, ${ENV.REDIS_URL} or ${ENV.AWS_ENDPOINT_URL_DYNAMODB}` };
}

export interface PreparedStore {
  readonly kind: StoreKind;
  /** Variables for the handlers' environment (STORE and the store's settings). */
  readonly env: Readonly<Record<string, string>>;
  /** Where the data lives, for the startup banner. */
  readonly description: string;
  /** Stops what was started for the store (embedded dynalite); idempotent. */
  stop(): Promise<void>;
}

export interface PrepareOptions {
  readonly redisUrl?: string;
  readonly tableName?: string;
  readonly env?: Env;
}

export async function prepareStore(kind: StoreKind, options: PrepareOptions = {}): Promise<PreparedStore> {
  const env = options.env ?? process.env;
  switch (kind) {
    case "memory":
      return {
        kind,
        env: { [ENV.STORE]: "memory" },
        description: "in memory (this process only)",
        stop: async () => {},
      };
    case "redis": {
      const url = options.redisUrl ?? set(env, ENV.REDIS_URL) ?? DEFAULT_REDIS_URL;
      await checkRedis(url);
      return {
        kind,
        env: { [ENV.STORE]: "redis", [ENV.REDIS_URL]: url },
        description: `Redis at ${redact(url)}`,
        stop: async () => {},
      };
    }
    case "dynamodb": {
      const tableName = options.tableName ?? set(env, ENV.TABLE_NAME) ?? DEFAULT_TABLE_NAME;
      const external = set(env, ENV.AWS_ENDPOINT_URL_DYNAMODB);
      const embedded = external ? undefined : await startDynalite();
      const endpoint = external ?? embedded!.endpoint;
      try {
        await ensureTable(endpoint, tableName);
      } catch (error) {
        await embedded?.stop();
        throw error;
      }
      return {
        kind,
        env: { [ENV.STORE]: "dynamodb", [ENV.TABLE_NAME]: tableName, [ENV.AWS_ENDPOINT_URL_DYNAMODB]: endpoint },
        description: `DynamoDB table "${tableName}" at ${endpoint}${embedded ? " (embedded dynalite, in memory)" : ""}`,
        stop: async () => embedded?.stop(),
      };
    }
  }
}

/** `redis://user:secret@host` → `redis://user:***@host`. */
function redact(url: string): string {
  return url.replace(/^(\w+:\/\/[^:/@]*:)[^@]*@/, "$1***@");
}

async function checkRedis(url: string): Promise<void> {
  let client: Redis;
  try {
    client = new Redis(url, {
      lazyConnect: true,
      connectTimeout: 2000,
      commandTimeout: 2000,
      maxRetriesPerRequest: 0,
      retryStrategy: () => null,
      enableOfflineQueue: false,
    });
  } catch (error) {
    throw new StoreSetupError(`invalid Redis URL ${redact(url)}: ${(error as Error).message}`);
  }
  // ioredis reports the cause (ECONNREFUSED, auth, DNS) here; the awaited call only says "Connection is closed".
  let cause: unknown;
  client.on("error", (error: unknown) => (cause ??= error));
  try {
    await withTimeout(client.connect(), CHECK_TIMEOUT_MS, "no answer");
    const info = await withTimeout(client.info("server"), CHECK_TIMEOUT_MS, "no answer to INFO");
    const version = /redis_version:(\d+)\.(\d+)/.exec(info);
    if (version && (Number(version[1]) < 6 || (Number(version[1]) === 6 && Number(version[2]) < 2))) {
      throw new StoreSetupError(
        `Redis at ${redact(url)} is ${version[1]}.${version[2]}; the redis store needs Redis >= 6.2`,
      );
    }
  } catch (error) {
    if (error instanceof StoreSetupError) throw error;
    throw new StoreSetupError(`cannot reach Redis at ${redact(url)}: ${oneLine(cause ?? error)}`);
  } finally {
    client.disconnect();
  }
}

interface EmbeddedDynamoDb {
  readonly endpoint: string;
  stop(): Promise<void>;
}

async function startDynalite(): Promise<EmbeddedDynamoDb> {
  let dynalite: (options: { createTableMs?: number; deleteTableMs?: number; updateTableMs?: number }) => Server;
  try {
    // A dev dependency without type declarations; loaded only when an embedded DynamoDB is wanted.
    dynalite = require("dynalite") as typeof dynalite;
  } catch {
    throw new StoreSetupError(
      "dynalite is not installed (run npm install), or set AWS_ENDPOINT_URL_DYNAMODB to a local DynamoDB",
    );
  }
  const server = dynalite({ createTableMs: 0, deleteTableMs: 0, updateTableMs: 0 });
  await new Promise<void>((resolve, reject) => {
    server.once("error", (error) =>
      reject(new StoreSetupError(`cannot start the embedded DynamoDB: ${oneLine(error)}`)),
    );
    server.listen(0, "127.0.0.1", () => resolve());
  });
  const { port } = server.address() as AddressInfo;
  let stopped: Promise<void> | undefined;
  return {
    endpoint: `http://127.0.0.1:${port}`,
    stop: () =>
      (stopped ??= new Promise<void>((resolve) => {
        server.closeAllConnections?.();
        server.close(() => resolve());
      })),
  };
}

async function ensureTable(endpoint: string, tableName: string): Promise<void> {
  const client: DynamoDBClient = createDynamoDbClient({ endpoint, maxAttempts: 1 });
  try {
    await withTimeout(describeOrCreate(client, tableName), CHECK_TIMEOUT_MS, "no answer");
  } catch (error) {
    throw new StoreSetupError(`cannot use DynamoDB at ${endpoint}: ${oneLine(error)}`);
  } finally {
    client.destroy();
  }
}

async function describeOrCreate(client: DynamoDBClient, tableName: string): Promise<void> {
  try {
    const { Table } = await client.send(new DescribeTableCommand({ TableName: tableName }));
    if (Table?.TableStatus === "ACTIVE") return;
  } catch (error) {
    if ((error as Error).name !== "ResourceNotFoundException") throw error;
    await client.send(new CreateTableCommand(localCreateTableInput(tableName)));
  }
  for (let i = 0; i < 100; i++) {
    const { Table } = await client.send(new DescribeTableCommand({ TableName: tableName }));
    if (Table?.TableStatus === "ACTIVE") return;
    await new Promise((resolve) => setTimeout(resolve, 50));
  }
  throw new Error(`table ${tableName} did not become ACTIVE`);
}

function withTimeout<T>(promise: Promise<T>, ms: number, what: string): Promise<T> {
  let timer: NodeJS.Timeout | undefined;
  const timeout = new Promise<never>(
    (_, reject) => (timer = setTimeout(() => reject(new Error(`${what} within ${ms} ms`)), ms)),
  );
  return Promise.race([promise, timeout]).finally(() => clearTimeout(timer));
}

/** An error as one line: its message (or code), never a stack. */
export function oneLine(error: unknown): string {
  if (error instanceof AggregateError && error.errors.length > 0) return oneLine(error.errors[0]);
  const e = error as { message?: string; code?: string; name?: string };
  const text = e?.message || e?.code || e?.name || String(error);
  return text.split("\n")[0]!.trim();
}
