/**
 * The connection store as one message sees it: a store that has lost the sender's record (a Redis restart or
 * failover, a flush, a `$connect` write that failed, a broadcast that removed it) gets it back from the message's
 * own `requestContext`, which API Gateway fills in for every event of a live connection with the same
 * `connectedAt` and authorizer context as on `$connect` (chat/connection-record.ts). So a store that lost data
 * heals as its clients talk, and no live client is left unknown for the rest of its 2 h.
 *
 * Finding out costs nothing extra: the heal rides on reads the routes make anyway.
 * - `get(sender)` (whoami, sendto, a room sendmessage read the sender's record for its name): `undefined` heals.
 * - `join(sender, …)` answering `unknown-connection`: heal, then join again.
 * - the listing of every connection (the no-room sendmessage broadcast): a listing that ends without the sender
 *   heals, and the sender is added as a last page, so it gets its own message like every connected client.
 * A record is only ever re-added for the connection that sent the message, once per message: API Gateway invokes
 * a message route only for an open connection, so that connection is live.
 */
import type { ConnectionRecord, ConnectionStore, JoinResult, ListOptions } from "../contract/connection-store";
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

  const join = async (connectionId: string, room: string, maxRooms: number): Promise<JoinResult> => {
    const result = await store.join(connectionId, room, maxRooms);
    if (result !== "unknown-connection" || connectionId !== sender || healed) return result;
    await heal();
    return store.join(connectionId, room, maxRooms);
  };

  async function* list(options?: ListOptions): AsyncGenerator<string[]> {
    if (options?.room !== undefined) {
      yield* store.list(options);
      return;
    }
    let seen = false;
    for await (const page of store.list(options)) {
      if (!seen && page.includes(sender)) seen = true;
      yield page;
    }
    // Reached only when the listing ended (not when its reader stopped early or it failed): the sender is not in it.
    if (!seen) {
      await heal();
      yield [sender];
    }
  }

  const overrides: Partial<ConnectionStore> = { get, join, list };
  return new Proxy(store, {
    get(target, property, receiver) {
      if (property in overrides) return overrides[property as keyof typeof overrides];
      const value = Reflect.get(target, property, receiver);
      return typeof value === "function" ? value.bind(target) : value;
    },
  });
}
