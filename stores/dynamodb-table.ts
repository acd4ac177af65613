/**
 * The DynamoDB table layout, shared by infra (which creates the table), the store (which reads and writes it)
 * and local runs / tests (which create it on dynalite).
 */
import type { CreateTableCommandInput } from "@aws-sdk/client-dynamodb";

/** Partition key: API Gateway's connection id (string). */
export const HASH_KEY = "connectionId";
/** Epoch SECONDS after which DynamoDB's TTL deletes the item (DynamoDB TTL requires seconds). */
export const TTL_ATTRIBUTE = "ttl";

/** CreateTable input for local servers (dynalite, DynamoDB Local); infra declares the same key in Pulumi. */
export function localCreateTableInput(tableName: string): CreateTableCommandInput {
  return {
    TableName: tableName,
    AttributeDefinitions: [{ AttributeName: HASH_KEY, AttributeType: "S" }],
    KeySchema: [{ AttributeName: HASH_KEY, KeyType: "HASH" }],
    BillingMode: "PAY_PER_REQUEST",
  };
}
