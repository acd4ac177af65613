/**
 * The DynamoDB store, built from the runtime environment. `app/store-from-env.ts` uses {@link createDynamoDbStore}
 * for `STORE=dynamodb`; a DynamoDB stack's Lambda bundles use this file INSTEAD of `from-env.ts` (infra/bundle.ts
 * resolves `app/store-from-env` here), so they carry neither ioredis nor the memory store.
 */
import type { RuntimeEnv } from "../contract/env";
import type * as FromEnv from "./store-from-env";
import { DynamoDbConnectionStore } from "../stores/dynamodb";

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
