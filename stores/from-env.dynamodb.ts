/**
 * The DynamoDB store, built from the runtime environment. `stores/from-env.ts` uses {@link createDynamoDbStore}
 * for `STORE=dynamodb`; a DynamoDB stack's Lambda bundles use this file INSTEAD of `from-env.ts` (infra/bundle.ts
 * resolves `stores/from-env` here), so they carry neither ioredis nor the memory store.
 */
import type { RuntimeEnv } from "../functions/runtime/env";
import type * as FromEnv from "./from-env";
import { DynamoDbConnectionStore } from "./dynamodb";

export function createDynamoDbStore(env: RuntimeEnv): DynamoDbConnectionStore {
  if (!env.tableName) throw new Error("createStore: tableName is required for the dynamodb store");
  return new DynamoDbConnectionStore({ tableName: env.tableName });
}

/** `from-env.ts`'s `createStore` in a function bundled for the dynamodb store: any other store is a deploy mix-up. */
export const createStore: typeof FromEnv.createStore = (env) => {
  if (env.store !== "dynamodb") {
    throw new Error(`createStore: this function was bundled for the dynamodb store, but STORE is ${env.store}`);
  }
  return createDynamoDbStore(env);
};
