/**
 * `secrets.ts` in a DynamoDB stack's Lambda bundles (infra/bundle.ts resolves `runtime/secrets` here):
 * the only secret the functions read is the Redis AUTH token, so these bundles leave out the Secrets Manager
 * client. Exports what the handlers import from `secrets.ts`; a bundle that imports more fails to build.
 */
import type * as Secrets from "./secrets";

export const resolveRedisAuth: typeof Secrets.resolveRedisAuth = async (env) => {
  const redis = env.redis;
  if (redis && !("url" in redis) && redis.authSecretArn) {
    throw new Error("this function was bundled for the dynamodb store and cannot read the Redis AUTH secret");
  }
  return env;
};
