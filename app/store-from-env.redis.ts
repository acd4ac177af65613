/**
 * The Redis store, built from the runtime environment. `app/store-from-env.ts` uses {@link createRedisStore} for
 * `STORE=redis`; a Redis stack's Lambda bundles use this file INSTEAD of `from-env.ts` (infra/bundle.ts resolves
 * `app/store-from-env` here), so they carry neither the DynamoDB client nor the memory store.
 */
import type { RuntimeEnv } from "../contract/env";
import type * as FromEnv from "./store-from-env";
import { RedisConnectionStore } from "../stores/redis";

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
