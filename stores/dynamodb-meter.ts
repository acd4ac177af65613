/**
 * The rate-limit counter of the DynamoDB store (`ConnectionStore.countMessage`), kept on the connection's own
 * item as two attributes: `rateWindow` (the fixed window's index) and `rateCount`. One conditional UpdateItem
 * per message in the usual case:
 *
 * 1. `ADD rateCount 1` if `rateWindow = :w` (same window): the new count.
 * 2. Otherwise `SET rateWindow = :w, rateCount = 1` if `rateWindow <> :w` or it is absent (a new window): 1.
 * 3. Both conditions failing means another caller moved the window between the two calls: start over (bounded).
 *
 * UpdateItem creates the item when the connection's record is missing (its `$connect` write failed, or
 * `$disconnect` already removed it). Such an item has no `expiresAt`, so `get` and `list` never see it, and it
 * gets a TTL a window after the current one ends, so DynamoDB deletes it. An existing record keeps its TTL.
 * A later `add` (PutItem) replaces the item, counters included.
 */
import { type DynamoDBClient, UpdateItemCommand } from "@aws-sdk/client-dynamodb";
import { rateWindow } from "../contract/connection-store";
import { HASH_KEY, TTL_ATTRIBUTE } from "./dynamodb-table";

export const RATE_WINDOW_ATTRIBUTE = "rateWindow";
export const RATE_COUNT_ATTRIBUTE = "rateCount";

const MAX_ROUNDS = 4;

function isConditionFailure(error: unknown): boolean {
  return (error as Error)?.name === "ConditionalCheckFailedException";
}

export async function countMessageOnItem(
  client: DynamoDBClient,
  tableName: string,
  connectionId: string,
  windowMs: number,
  now: number,
): Promise<number> {
  const { index, endsAt } = rateWindow(windowMs, now);
  const key = { [HASH_KEY]: { S: connectionId } };
  const names = { "#w": RATE_WINDOW_ATTRIBUTE, "#c": RATE_COUNT_ATTRIBUTE };
  const window = { N: String(index) };
  for (let round = 1; round <= MAX_ROUNDS; round++) {
    try {
      const { Attributes } = await client.send(
        new UpdateItemCommand({
          TableName: tableName,
          Key: key,
          UpdateExpression: "ADD #c :one",
          ConditionExpression: "#w = :w",
          ExpressionAttributeNames: names,
          ExpressionAttributeValues: { ":one": { N: "1" }, ":w": window },
          ReturnValues: "UPDATED_NEW",
        }),
      );
      return Number(Attributes?.[RATE_COUNT_ATTRIBUTE]?.N ?? "1");
    } catch (error) {
      if (!isConditionFailure(error)) throw error;
    }
    try {
      await client.send(
        new UpdateItemCommand({
          TableName: tableName,
          Key: key,
          UpdateExpression: "SET #w = :w, #c = :one, #t = if_not_exists(#t, :ttl)",
          ConditionExpression: "attribute_not_exists(#w) OR #w <> :w",
          ExpressionAttributeNames: { ...names, "#t": TTL_ATTRIBUTE },
          ExpressionAttributeValues: {
            ":one": { N: "1" },
            ":w": window,
            ":ttl": { N: String(Math.ceil((endsAt + windowMs) / 1000)) },
          },
        }),
      );
      return 1;
    } catch (error) {
      if (!isConditionFailure(error)) throw error;
    }
  }
  throw new Error(`rate counter of ${connectionId} kept changing windows under ${MAX_ROUNDS} rounds of updates`);
}
