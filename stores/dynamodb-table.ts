/**
 * The DynamoDB table layout, shared by infra (which creates the table), the store (which reads and writes it)
 * and local runs / tests (which create it on dynalite).
 *
 * One table, two kinds of item under the same partition key:
 * - a connection item, keyed by the connection id: `connectedAt`, `expiresAt`, `ttl`, `attributes`, the rate-limit
 *   counter, and `rooms` (a string set of the rooms it is in, which is how removal finds its memberships);
 * - a membership item per (room, connection), keyed by {@link membershipKey}: `room`, `member` (the connection id),
 *   `expiresAt` and `ttl` (the connection's). Only membership items carry `room`, so the {@link ROOM_INDEX} GSI
 *   (`room` → `member`) holds memberships only: a room is listed with a Query, never a Scan. Scans of connections
 *   skip membership items with a filter.
 */
import type { CreateTableCommandInput } from "@aws-sdk/client-dynamodb";

/** Partition key: API Gateway's connection id (string), or a membership's {@link membershipKey}. */
export const HASH_KEY = "connectionId";
/** Epoch SECONDS after which DynamoDB's TTL deletes the item (DynamoDB TTL requires seconds). */
export const TTL_ATTRIBUTE = "ttl";
/** Connection items: the set of rooms the connection is in. */
export const ROOMS_ATTRIBUTE = "rooms";
/** Membership items: the room (the index's partition key). */
export const ROOM_ATTRIBUTE = "room";
/** Membership items: the member's connection id (the index's sort key, so a room lists in id order, paged). */
export const MEMBER_ATTRIBUTE = "member";
/** The GSI that lists a room's members. */
export const ROOM_INDEX = "room-members";
/** Attributes projected into {@link ROOM_INDEX} besides the keys: listings skip expired members. */
export const ROOM_INDEX_PROJECTED = ["expiresAt"] as const;

/**
 * Key of the membership item of `connectionId` in `room`. Room names never contain `#` (connection-store.ts) and
 * API Gateway's ids never start with `room#`, so it cannot collide with a connection item.
 */
export function membershipKey(connectionId: string, room: string): string {
  return `room#${room}#${connectionId}`;
}

/** CreateTable input for local servers (dynalite, DynamoDB Local); infra declares the same layout in Pulumi. */
export function localCreateTableInput(tableName: string): CreateTableCommandInput {
  return {
    TableName: tableName,
    AttributeDefinitions: [
      { AttributeName: HASH_KEY, AttributeType: "S" },
      { AttributeName: ROOM_ATTRIBUTE, AttributeType: "S" },
      { AttributeName: MEMBER_ATTRIBUTE, AttributeType: "S" },
    ],
    KeySchema: [{ AttributeName: HASH_KEY, KeyType: "HASH" }],
    GlobalSecondaryIndexes: [
      {
        IndexName: ROOM_INDEX,
        KeySchema: [
          { AttributeName: ROOM_ATTRIBUTE, KeyType: "HASH" },
          { AttributeName: MEMBER_ATTRIBUTE, KeyType: "RANGE" },
        ],
        Projection: { ProjectionType: "INCLUDE", NonKeyAttributes: [...ROOM_INDEX_PROJECTED] },
      },
    ],
    BillingMode: "PAY_PER_REQUEST",
  };
}

// Room history, send claims (contract/room-history.ts; docs/history.md). Items of their own under the same partition
// key, read and written by key only. None carries `expiresAt` or `room`, so the connection Scan and the room index
// never return them.

/** Key of a room's sequence counter item (`seq`, `ttl`). */
export function historySeqKey(room: string): string {
  return `seq#${room}`;
}

/** Key of the history entry numbered `seq` of `room` (`seq`, `ts`, `messageId`, `frame`, `ttl`). */
export function historyEntryKey(room: string, seq: number): string {
  return `hist#${room}#${seq}`;
}

/**
 * Key of a send claim (`sendId`, `until`, `seq` once settled, `ttl`). A reference never contains `#`, so the key
 * splits at its last `#`: no two (scope, ref) pairs share a key.
 */
export function sendClaimKey(scope: string, ref: string): string {
  return `send#${scope}#${ref}`;
}
