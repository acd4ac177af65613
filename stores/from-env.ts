import type { RuntimeEnv } from "../functions/runtime/env";
import type { ConnectionStore } from "./connection-store";
import { DynamoDbConnectionStore } from "./dynamodb";
import { MemoryConnectionStore } from "./memory";
import { RedisConnectionStore } from "./redis";

/** One per process: the local gateway runs every handler in one process, and they must see the same connections. */
let memoryStore: MemoryConnectionStore | undefined;

/**
 * The store selected by `env.store`. DynamoDB and Redis stores are new on every call, each with its own client,
 * so call this once per container and reuse the result.
 */
export function createStore(env: RuntimeEnv): ConnectionStore {
  switch (env.store) {
    case "dynamodb":
      if (!env.tableName) throw new Error("createStore: tableName is required for the dynamodb store");
      return new DynamoDbConnectionStore({ tableName: env.tableName });
    case "redis":
      if (!env.redis) throw new Error("createStore: redis settings are required for the redis store");
      return new RedisConnectionStore(env.redis);
    case "memory":
      return (memoryStore ??= new MemoryConnectionStore());
  }
}
