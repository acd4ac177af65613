/**
 * The connection store as one message sees it: a store that has lost the sender's record (a Redis restart or
 * failover, a flush, a `$connect` write that failed, a broadcast that removed it) gets it back from the message's
 * own `requestContext`, which API Gateway fills in for every event of a live connection with the same
 * `connectedAt` and authorizer context as on `$connect` (chat/connection-record.ts). So a store that lost data
 * heals as its clients talk, and no live client is left unknown for the rest of its 2 h.
 *
 * Finding out costs nothing extra: the heal rides on reads the routes make anyway.
 * - `get(sender)` (whoami, sendto, every sendmessage read the sender's record for its name and the envelope):
 *   `undefined` heals. A no-room sendmessage reads it before it lists its audience, so a healed sender is listed
 *   and gets its own message like every connected client.
 * - `join(sender, …)` answering `unknown-connection`: heal, then join again.
 * - `touch(sender)` (the `ping` heartbeat) answering `false`: heal, then touch again.
 * A record is only ever re-added for the connection that sent the message, once per message: API Gateway invokes
 * a message route only for an open connection, so that connection is live.
 */
import type { ConnectionRecord, ConnectionStore, JoinResult } from "../contract/connection-store";
import type { WebSocketEvent } from "../runtime/event";
import type { Logger } from "../runtime/logger";
import { connectionRecord } from "./connection-record";

export function senderStore(
  store: ConnectionStore,
  event: WebSocketEvent,
  ttlSeconds: number,
  log: Logger,
): ConnectionStore {
  const sender = event.requestContext.connectionId;
  let healed: Promise<ConnectionRecord> | undefined;
  const heal = (): Promise<ConnectionRecord> =>
    (healed ??= (async () => {
      const record = connectionRecord(event, ttlSeconds);
      await store.add(record);
      log.warn("connection re-registered from its message (the store had no record of it)", {
        outcome: "healed",
        connectedAt: record.connectedAt,
      });
      return record;
    })());

  const get = async (connectionId: string): Promise<ConnectionRecord | undefined> => {
    const record = await store.get(connectionId);
    return record === undefined && connectionId === sender ? heal() : record;
  };

  const join = async (
    connectionId: string,
    room: string,
    maxRooms: number,
    maxMembers?: number,
  ): Promise<JoinResult> => {
    const result = await store.join(connectionId, room, maxRooms, maxMembers);
    if (result !== "unknown-connection" || connectionId !== sender || healed) return result;
    await heal();
    return store.join(connectionId, room, maxRooms, maxMembers);
  };

  const touch = async (connectionId: string, now?: number): Promise<boolean> => {
    const known = await store.touch(connectionId, now);
    if (known || connectionId !== sender || healed) return known;
    await heal();
    return store.touch(connectionId, now);
  };

  const overrides: Partial<ConnectionStore> = { get, join, touch };
  return new Proxy(store, {
    get(target, property, receiver) {
      if (property in overrides) return overrides[property as keyof typeof overrides];
      const value = Reflect.get(target, property, receiver);
      return typeof value === "function" ? value.bind(target) : value;
    },
  });
}
