/**
 * A user's connection slots on DynamoDB (`ConnectionStore.claimUserSlot` / `releaseUserSlot`): one item per user,
 * keyed `slots#<hashed user id>`, with a map `slots` (connection id → the slot's expiry, epoch ms) and a
 * `version` number. It carries neither `expiresAt` nor `room`, so connection scans and room queries never see it.
 *
 * Claim: a consistent GetItem, expired slots dropped, the count checked, then a PutItem of the whole map
 * conditional on the version read (optimistic concurrency): of two concurrent claims one writes, the other sees
 * the condition fail and starts over on the new map, so the cap holds. Release: an UpdateItem that removes the
 * connection's entry and bumps the version (so a claim that read the map before cannot write the entry back).
 * The item's TTL follows its last slot, so a user whose `$disconnect`s were all lost leaves nothing behind.
 */
import {
  type AttributeValue,
  type DynamoDBClient,
  GetItemCommand,
  PutItemCommand,
  UpdateItemCommand,
} from "@aws-sdk/client-dynamodb";
import { meterKey, type UserSlotClaim } from "../contract/connection-store";
import { HASH_KEY, TTL_ATTRIBUTE } from "./dynamodb-table";

const SLOTS_ATTRIBUTE = "slots";
const VERSION_ATTRIBUTE = "version";
/** Claims racing on one user's item are rare (one user connecting from many places at once). */
const MAX_ATTEMPTS = 8;

export function userSlotsKey(userId: string): string {
  return `slots#${meterKey("user", userId).slice("user:".length)}`;
}

function isConditionFailure(error: unknown): boolean {
  return (error as Error)?.name === "ConditionalCheckFailedException";
}

export async function claimUserSlotOnItem(
  client: DynamoDBClient,
  tableName: string,
  userId: string,
  connectionId: string,
  max: number,
  expiresAt: number,
  now: number,
): Promise<UserSlotClaim> {
  const key = { [HASH_KEY]: { S: userSlotsKey(userId) } };
  for (let attempt = 1; attempt <= MAX_ATTEMPTS; attempt++) {
    const { Item } = await client.send(new GetItemCommand({ TableName: tableName, Key: key, ConsistentRead: true }));
    const version = Item?.[VERSION_ATTRIBUTE]?.N;
    const slots = new Map<string, number>();
    for (const [id, value] of Object.entries(Item?.[SLOTS_ATTRIBUTE]?.M ?? {})) {
      const until = Number(value.N);
      if (until > now) slots.set(id, until);
    }
    if (!slots.has(connectionId) && slots.size >= max) return { claimed: false, live: slots.size };
    slots.set(connectionId, expiresAt);
    const map: Record<string, AttributeValue> = {};
    for (const [id, until] of slots) map[id] = { N: String(until) };
    try {
      await client.send(
        new PutItemCommand({
          TableName: tableName,
          Item: {
            ...key,
            [SLOTS_ATTRIBUTE]: { M: map },
            [VERSION_ATTRIBUTE]: { N: String(Number(version ?? "0") + 1) },
            [TTL_ATTRIBUTE]: { N: String(Math.ceil(Math.max(...slots.values()) / 1000)) },
          },
          ...(version === undefined
            ? { ConditionExpression: "attribute_not_exists(#k)", ExpressionAttributeNames: { "#k": HASH_KEY } }
            : {
                ConditionExpression: "#v = :v",
                ExpressionAttributeNames: { "#v": VERSION_ATTRIBUTE },
                ExpressionAttributeValues: { ":v": { N: version } },
              }),
        }),
      );
      return { claimed: true, live: slots.size };
    } catch (error) {
      if (!isConditionFailure(error)) throw error;
      // Full jitter: the claims that collided must not collide again.
      await new Promise((resolve) => setTimeout(resolve, Math.random() * 10 * attempt));
    }
  }
  throw new Error(`connection slots of a user kept changing under ${MAX_ATTEMPTS} attempts to claim one`);
}

export async function releaseUserSlotOnItem(
  client: DynamoDBClient,
  tableName: string,
  userId: string,
  connectionId: string,
): Promise<void> {
  try {
    await client.send(
      new UpdateItemCommand({
        TableName: tableName,
        Key: { [HASH_KEY]: { S: userSlotsKey(userId) } },
        UpdateExpression: "REMOVE #s.#id ADD #v :one",
        ConditionExpression: "attribute_exists(#s)",
        ExpressionAttributeNames: { "#s": SLOTS_ATTRIBUTE, "#id": connectionId, "#v": VERSION_ATTRIBUTE },
        ExpressionAttributeValues: { ":one": { N: "1" } },
      }),
    );
  } catch (error) {
    // No item: nothing to release.
    if (!isConditionFailure(error)) throw error;
  }
}
