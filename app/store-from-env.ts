import type { RuntimeEnv } from "../contract/env";
import type { ConnectionStore } from "../contract/connection-store";
import { createDynamoDbStore } from "./store-from-env.dynamodb";
import { createRedisStore } from "./store-from-env.redis";
import { MemoryConnectionStore } from "../stores/memory";

/** One per process: the local gateway runs every handler in one process, and they must see the same connections. */
let memoryStore: MemoryConnectionStore | undefined;

/**
 * The store selected by `env.store`: every store, for the local gateway and tests. Lambda bundles are built per
 * store and get `from-env.<store>.ts` in place of this file (infra/bundle.ts), so each carries one store client.
 * DynamoDB and Redis stores are new on every call, each with its own client,
 * so call this once per container and reuse the result.
 */
export function createStore(env: RuntimeEnv): ConnectionStore {
  switch (env.store) {
    case "dynamodb":
      return createDynamoDbStore(env);
    case "redis":
      return createRedisStore(env);
    case "memory":
      return (memoryStore ??= new MemoryConnectionStore());
  }
}
