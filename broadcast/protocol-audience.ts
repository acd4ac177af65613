/**
 * A room-less broadcast has two payloads: the raw `data` for plain clients, and an envelope the server wrote for
 * typed clients (contract/frames.ts, `broadcastFrame`). The store lists both kinds in one listing
 * (`listByProtocol`, pages split by kind); here each id is tagged with the payload it gets, one character in front
 * of it, so the rest of the engine (the split, the shards, the inline lane, the stale-id batches) keeps moving
 * plain strings, one page at a time: memory stays bounded as before, and a shard carries both payloads once plus
 * its tagged ids. Only the two ends look at the tag: the post picks the payload and strips it, and the removal of
 * stale ids strips it.
 */
import type { ConnectionStore, ProtocolPage, RemovedConnection, RemoveOptions } from "../contract/connection-store";
import type { ConnectionsApi, PreparedPayload } from "../runtime/connections-api";
import type { AttemptPost } from "./target-poster";

/** The tag of a plain client's id (gets the raw payload) and of a typed client's (gets the envelope). */
export const PLAIN_TAG = "p";
export const TYPED_TAG = "t";

/** The two payloads of a room-less broadcast. */
export interface TwoPayloads {
  readonly plain: PreparedPayload;
  readonly typed: PreparedPayload;
}

/** The listing's pages as tagged ids: the plain ids of a page, then its typed ones. */
export async function* taggedPages(listing: AsyncIterable<ProtocolPage>): AsyncGenerator<string[]> {
  for await (const page of listing) {
    const tagged = new Array<string>(page.plain.length + page.typed.length);
    let i = 0;
    for (const id of page.plain) tagged[i++] = PLAIN_TAG + id;
    for (const id of page.typed) tagged[i++] = TYPED_TAG + id;
    if (tagged.length > 0) yield tagged;
  }
}

/** The connection id inside a tagged id. */
export function untag(tagged: string): string {
  return tagged.slice(1);
}

/** One post to a tagged id: the envelope to a typed client, the raw payload to a plain one. */
export function taggedAttempt(connections: Pick<ConnectionsApi, "attempt">, payloads: TwoPayloads): AttemptPost {
  return (tagged, timeoutMs, waitLimitMs) =>
    connections.attempt(
      tagged.slice(1),
      tagged[0] === TYPED_TAG ? payloads.typed : payloads.plain,
      timeoutMs,
      waitLimitMs,
    );
}

/** The store's `removeMany` for tagged ids (the 410s of a two-payload fan-out). */
export function untaggingRemover(store: Pick<ConnectionStore, "removeMany">): Pick<ConnectionStore, "removeMany"> {
  return {
    // The options carry the grace cutoff (`connectedBefore`): dropping them would remove clients in their first seconds.
    removeMany: (tagged: readonly string[], options?: RemoveOptions): Promise<RemovedConnection[]> =>
      store.removeMany(tagged.map(untag), options),
  };
}
