/**
 * The Redis store, built from the runtime environment. `stores/from-env.ts` uses {@link createRedisStore} for
 * `STORE=redis`; a Redis stack's Lambda bundles use this file INSTEAD of `from-env.ts` (infra/bundle.ts resolves
 * `stores/from-env` here), so they carry neither the DynamoDB client nor the memory store.
 */
import type { RuntimeEnv } from "../functions/runtime/env";
import type * as FromEnv from "./from-env";
import { RedisConnectionStore } from "./redis";

export function createRedisStore(env: RuntimeEnv): RedisConnectionStore {
  if (!env.redis) throw new Error("createStore: redis settings are required for the redis store");
  return new RedisConnectionStore(env.redis);
}

/** `from-env.ts`'s `createStore` in a function bundled for the redis store: any other store is a deploy mix-up. */
export const createStore: typeof FromEnv.createStore = (env) => {
  if (env.store !== "redis") {
    throw new Error(`createStore: this function was bundled for the redis store, but STORE is ${env.store}`);
  }
  return createRedisStore(env);
};
