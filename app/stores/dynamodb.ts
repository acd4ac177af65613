/**
 * The DynamoDB store's factory, registered on import. A DynamoDB stack's Lambda bundles are their handler plus
 * this module (infra/bundle.ts), so they carry neither ioredis nor the Secrets Manager client: the only secret the
 * functions read is the Redis AUTH token.
 */
import type { RuntimeEnv } from "../../contract/env";
import { DynamoDbConnectionStore } from "../../stores/dynamodb";
import { registerStore } from "../store-registry";

export function createDynamoDbStore(env: RuntimeEnv): DynamoDbConnectionStore {
  if (!env.tableName) throw new Error("createStore: tableName is required for the dynamodb store");
  return new DynamoDbConnectionStore({ tableName: env.tableName });
}

registerStore("dynamodb", { create: createDynamoDbStore });
