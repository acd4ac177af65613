/**
 * The Redis store's factory, registered on import. Its `prepare` reads the AUTH token from Secrets Manager
 * (runtime/secrets.ts) once per container, before the client is built. A Redis stack's Lambda bundles are their
 * handler plus this module (infra/bundle.ts), so they carry no DynamoDB client.
 */
import type { RuntimeEnv } from "../../contract/env";
import { resolveRedisAuth } from "../../runtime/secrets";
import { RedisConnectionStore } from "../../stores/redis";
import { registerStore } from "../store-registry";

export function createRedisStore(env: RuntimeEnv): RedisConnectionStore {
  if (!env.redis) throw new Error("createStore: redis settings are required for the redis store");
  return new RedisConnectionStore(env.redis);
}

registerStore("redis", { prepare: (env) => resolveRedisAuth(env), create: createRedisStore });
