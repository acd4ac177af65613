/**
 * The types, bounds and validation of the room-history part of the store contract (the methods themselves are
 * on `ConnectionStore`, contract/connection-store.ts): per-room sequence numbers, the bounded history they key,
 * idempotent send references and the connection heartbeat. The design, and how the handlers use it for resume,
 * history paging and acknowledgements: docs/history.md.
 */
import { ENV, type Env, envInteger } from "./env-vars";

/** How much of a room's history is kept: the newest `maxEntries`, none older than `maxAgeMs`. */
export interface HistoryBounds {
  /** Entries kept per room, 1 to {@link MAX_HISTORY_ENTRIES}. */
  readonly maxEntries: number;
  /** Age after which an entry is gone, ms, 1 s to {@link MAX_HISTORY_AGE_SECONDS}. */
  readonly maxAgeMs: number;
}

export const DEFAULT_HISTORY_MAX_ENTRIES = 100;
/**
 * Upper bound of `maxEntries`. A room's history may hold this many frames of up to {@link HISTORY_FRAME_MAX_BYTES}
 * each: 1,000 × 128 KB is 128 MB of one Redis node's memory in the worst case (docs/history.md).
 */
export const MAX_HISTORY_ENTRIES = 1_000;
export const DEFAULT_HISTORY_MAX_AGE_SECONDS = 24 * 60 * 60;
/** Upper bound of the history age: a week. */
export const MAX_HISTORY_AGE_SECONDS = 7 * 24 * 60 * 60;

/**
 * How long a room's sequence counter outlives its last append (at least the history age). The counter must outlive
 * the history it numbers: a client that resumes after the room's entries all expired must learn that nothing newer
 * exists (its seq is still the latest), not find the numbering started again at 1. After this much silence the
 * counter goes too, so rooms that anyone may name cannot pile up counters for ever (docs/history.md).
 */
export const HISTORY_SEQ_RETENTION_MS = 30 * 24 * 60 * 60 * 1000;

/** The counter's lifetime after an append: {@link HISTORY_SEQ_RETENTION_MS}, or the history age if longer. */
export function seqRetentionMs(bounds: HistoryBounds): number {
  return Math.max(HISTORY_SEQ_RETENTION_MS, bounds.maxAgeMs);
}

/**
 * Largest stored frame, in UTF-8 bytes: `PostToConnection`'s 131,072-byte `Data` limit, which every frame posted
 * must fit anyway (contract/message-limits.ts). Far below DynamoDB's 400 KB item limit, with the entry's other
 * attributes and key included.
 */
export const HISTORY_FRAME_MAX_BYTES = 131_072;
/** Longest server message id a history entry or a send claim keeps. */
export const MESSAGE_ID_MAX_LENGTH = 128;

/** One message of a room's history. */
export interface HistoryEntry {
  /** The room's sequence number of the message: 1, 2, 3… in the order the store accepted the appends. */
  readonly seq: number;
  /** The server's message id (the `id` of the `message` frame). */
  readonly id: string;
  /** Epoch ms of the append (the clock of the function that appended). */
  readonly ts: number;
  /**
   * The message as it is sent, a frame of at most {@link HISTORY_FRAME_MAX_BYTES}. Opaque to the store; it does not
   * contain `seq`, which is only known once the append has assigned it (docs/history.md says how the chat layer
   * adds it).
   */
  readonly frame: string;
}

/** What {@link ConnectionStore.appendHistory} stores: the entry without the seq and time the store assigns. */
export interface HistoryMessage {
  readonly id: string;
  readonly frame: string;
}

/** {@link ConnectionStore.historyAfter}: the entries a client missed since `after`. */
export interface HistoryAfterQuery {
  /** The last seq the client saw (0: none); entries with a greater seq are returned, oldest first. */
  readonly after: number;
  /** Entries per page, 1 to {@link MAX_HISTORY_PAGE}. */
  readonly limit: number;
}

/** {@link ConnectionStore.historyBefore}: a page of older entries, for a history action that pages backwards. */
export interface HistoryBeforeQuery {
  /** Entries with a smaller seq are returned (the newest `limit` of them, oldest first); absent: from the latest. */
  readonly before?: number;
  /** Entries per page, 1 to {@link MAX_HISTORY_PAGE}. */
  readonly limit: number;
}

export const MAX_HISTORY_PAGE = MAX_HISTORY_ENTRIES;

/** A page of history. */
export interface HistoryPage {
  /** Oldest first. */
  readonly entries: readonly HistoryEntry[];
  /** The room's latest seq (0: no message yet, or the counter expired; see {@link HISTORY_SEQ_RETENTION_MS}). */
  readonly latestSeq: number;
  /**
   * More entries lie beyond the page in its direction: after the last one returned (`historyAfter`: ask again with
   * `after` = its seq), or before the first (`historyBefore`: ask again with `before` = its seq).
   */
  readonly more: boolean;
}

/** A page of {@link ConnectionStore.historyAfter}. */
export interface ResumePage extends HistoryPage {
  /**
   * History still reaches back to `after`: no entry after it has been trimmed (by count or age) yet, so the page and
   * its continuations hold every message the client missed. `false`: some are gone for good. Memory and Redis know
   * exactly; DynamoDB answers `false` also when the number right after `after` has no entry because its append is
   * still in flight or failed (docs/history.md): never `true` when something is lost.
   */
  readonly reachesBack: boolean;
}

/** What {@link ConnectionStore.claimSend} found. */
export type SendClaim =
  /** The first claim of this reference within the window: deliver the message, then settle the claim. */
  | { readonly status: "claimed" }
  /**
   * The reference was claimed before, within the window: do not deliver again. `id` is the first send's message
   * id; `seq` its sequence number once that send settled with one (absent while it is still in progress, and for a
   * send that has no seq).
   */
  | { readonly status: "duplicate"; readonly id: string; readonly seq?: number };

/** How a claimed send ended, for {@link ConnectionStore.settleSend}. */
export type SendOutcome =
  /** Delivered; `seq` when it went into a room's history. */
  | { readonly id: string; readonly seq?: number }
  /** Not delivered (the append failed): the claim is released, so the client's retry is a first claim again. */
  | { readonly id: string; readonly released: true };

export const DEFAULT_SEND_REF_WINDOW_SECONDS = 600;
/** Upper bound of the idempotency window: a day. */
export const MAX_SEND_REF_WINDOW_SECONDS = 86_400;

/**
 * A client's send reference: 1-64 characters of `A-Z a-z 0-9 _ . : -` (a UUID fits). Never contains `#`, so a key
 * `<scope>#<ref>` splits unambiguously at its last `#`; safe in Redis keys and DynamoDB keys.
 */
export const SEND_REF_PATTERN = /^[A-Za-z0-9_.:-]{1,64}$/;
/**
 * Longest scope: who sent (a user id of up to 250 characters from a token, a connection id, or the shared anonymous
 * scope) and where the message went (a room of up to 64 characters, a connection id, or everyone).
 */
export const SEND_SCOPE_MAX_LENGTH = 512;
/**
 * Without auth, a ref at least this long is de-duplicated across connections (so a resend from the client's next
 * connection is recognised); a shorter one within its connection only. 22 characters of the ref alphabet carry at
 * least 128 bits when they are random, as the SDK's are (16 random bytes): another client cannot guess one to
 * suppress the message. A client that picks long refs that are not random gives that protection up.
 */
export const SHARED_SEND_REF_MIN_LENGTH = 22;

export function isValidSendRef(ref: unknown): ref is string {
  return typeof ref === "string" && SEND_REF_PATTERN.test(ref);
}

/** Throws a RangeError naming what is wrong; handlers validate first and answer the client. */
export function assertSendKey(scope: string, ref: string, id?: string): void {
  if (id !== undefined) assertMessageId(id);
  if (typeof scope !== "string" || scope.length < 1 || scope.length > SEND_SCOPE_MAX_LENGTH)
    throw new RangeError(`send scope must be 1-${SEND_SCOPE_MAX_LENGTH} characters`);
  if (!isValidSendRef(ref)) throw new RangeError(`invalid send reference ${JSON.stringify(ref)}`);
}

export function assertHistoryBounds(bounds: HistoryBounds): void {
  if (!Number.isSafeInteger(bounds.maxEntries) || bounds.maxEntries < 1 || bounds.maxEntries > MAX_HISTORY_ENTRIES)
    throw new RangeError(`maxEntries must be an integer from 1 to ${MAX_HISTORY_ENTRIES}, got ${bounds.maxEntries}`);
  if (
    !Number.isSafeInteger(bounds.maxAgeMs) ||
    bounds.maxAgeMs < 1000 ||
    bounds.maxAgeMs > MAX_HISTORY_AGE_SECONDS * 1000
  )
    throw new RangeError(
      `maxAgeMs must be an integer from 1000 to ${MAX_HISTORY_AGE_SECONDS * 1000}, got ${bounds.maxAgeMs}`,
    );
}

/** Validates what is appended (stores check the room name themselves, with `assertRoomName`). */
export function assertHistoryMessage(message: HistoryMessage): void {
  assertMessageId(message.id);
  // Never empty: DynamoDB refused empty strings until 2020, and a frame always has content.
  if (typeof message.frame !== "string" || message.frame === "")
    throw new RangeError("history frame must be a non-empty string");
  const bytes = utf8Length(message.frame);
  if (bytes > HISTORY_FRAME_MAX_BYTES)
    throw new RangeError(`history frame is ${bytes} bytes, more than ${HISTORY_FRAME_MAX_BYTES}`);
}

export function assertMessageId(id: string): void {
  if (typeof id !== "string" || id.length < 1 || id.length > MESSAGE_ID_MAX_LENGTH)
    throw new RangeError(`message id must be 1-${MESSAGE_ID_MAX_LENGTH} characters`);
}

/** Validates a page query; `after` / `before` are sequence numbers, `limit` a page size. */
export function assertHistoryQuery(query: HistoryAfterQuery | HistoryBeforeQuery): void {
  if (!Number.isSafeInteger(query.limit) || query.limit < 1 || query.limit > MAX_HISTORY_PAGE)
    throw new RangeError(`limit must be an integer from 1 to ${MAX_HISTORY_PAGE}, got ${query.limit}`);
  if ("after" in query && (!Number.isSafeInteger(query.after) || query.after < 0))
    throw new RangeError(`after must be an integer >= 0, got ${query.after}`);
  if ("before" in query && query.before !== undefined && (!Number.isSafeInteger(query.before) || query.before < 1))
    throw new RangeError(`before must be an integer >= 1, got ${query.before}`);
}

export function assertWindowMs(windowMs: number): void {
  if (!Number.isSafeInteger(windowMs) || windowMs < 1 || windowMs > MAX_SEND_REF_WINDOW_SECONDS * 1000)
    throw new RangeError(
      `windowMs must be an integer from 1 to ${MAX_SEND_REF_WINDOW_SECONDS * 1000}, got ${windowMs}`,
    );
}

/** UTF-8 length without Buffer (this floor is pure): surrogate pairs are 4 bytes, a lone surrogate 3 (U+FFFD). */
export function utf8Length(text: string): number {
  let bytes = 0;
  for (let i = 0; i < text.length; i++) {
    const code = text.charCodeAt(i);
    if (code < 0x80) bytes += 1;
    else if (code < 0x800) bytes += 2;
    else if (code >= 0xd800 && code <= 0xdbff && i + 1 < text.length) {
      const next = text.charCodeAt(i + 1);
      if (next >= 0xdc00 && next <= 0xdfff) {
        bytes += 4;
        i++;
      } else bytes += 3;
    } else bytes += 3;
  }
  return bytes;
}

/** The seq range a page covers, and what it says about the rest; see {@link pageRange}. */
export interface PageRange {
  /** First and last seq to return (none when `to < from`). */
  readonly from: number;
  readonly to: number;
  readonly more: boolean;
  /** `historyAfter` only. */
  readonly reachesBack: boolean;
}

/**
 * The seq range a page reads, given the room's latest seq and the oldest one it still keeps (`latest + 1` when it
 * keeps none). Pure, so the stores cannot disagree on the edges. An `after` beyond `latest` means the numbering
 * started again (the counter expired, or the store was emptied): the client saw none of what is there now, so the
 * page starts from the oldest entry and does not reach back.
 */
export function pageRange(query: HistoryAfterQuery | HistoryBeforeQuery, oldest: number, latest: number): PageRange {
  if ("after" in query) {
    const restarted = query.after > latest;
    const after = restarted ? 0 : query.after;
    const from = Math.max(after + 1, oldest);
    const to = Math.min(latest, from + query.limit - 1);
    return { from, to, more: to < latest, reachesBack: !restarted && oldest <= after + 1 };
  }
  const to = Math.min(latest, (query.before ?? latest + 1) - 1);
  const from = Math.max(oldest, to - query.limit + 1);
  return { from, to, more: from > oldest && to >= from, reachesBack: true };
}

/** The room-history settings of the runtime environment (env.ts reads them with the rest). */
export interface HistorySettings {
  readonly maxEntries: number;
  readonly maxAgeSeconds: number;
  /** How long a send reference is remembered. */
  readonly sendRefWindowSeconds: number;
}

export const DEFAULT_HISTORY_SETTINGS: HistorySettings = Object.freeze({
  maxEntries: DEFAULT_HISTORY_MAX_ENTRIES,
  maxAgeSeconds: DEFAULT_HISTORY_MAX_AGE_SECONDS,
  sendRefWindowSeconds: DEFAULT_SEND_REF_WINDOW_SECONDS,
});

export function readHistorySettings(env: Env = process.env): HistorySettings {
  return {
    maxEntries: envInteger(env, ENV.HISTORY_MAX_ENTRIES, DEFAULT_HISTORY_MAX_ENTRIES, 1, MAX_HISTORY_ENTRIES),
    maxAgeSeconds: envInteger(
      env,
      ENV.HISTORY_MAX_AGE_SECONDS,
      DEFAULT_HISTORY_MAX_AGE_SECONDS,
      1,
      MAX_HISTORY_AGE_SECONDS,
    ),
    sendRefWindowSeconds: envInteger(
      env,
      ENV.SEND_REF_WINDOW_SECONDS,
      DEFAULT_SEND_REF_WINDOW_SECONDS,
      1,
      MAX_SEND_REF_WINDOW_SECONDS,
    ),
  };
}

/** The environment variables for `settings` (what infra sets). */
export function historySettingsEnv(settings: HistorySettings): Record<string, string> {
  return {
    [ENV.HISTORY_MAX_ENTRIES]: String(settings.maxEntries),
    [ENV.HISTORY_MAX_AGE_SECONDS]: String(settings.maxAgeSeconds),
    [ENV.SEND_REF_WINDOW_SECONDS]: String(settings.sendRefWindowSeconds),
  };
}

/** The store's {@link HistoryBounds} of `settings`. */
export function historyBounds(settings: HistorySettings): HistoryBounds {
  return { maxEntries: settings.maxEntries, maxAgeMs: settings.maxAgeSeconds * 1000 };
}
