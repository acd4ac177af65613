/**
 * Room history for clients: reading a page (`join` with `after`, and the `history` route), validating what the
 * client asked for, and cutting the page to fit one `@connections` post (docs/history.md).
 */
import { HISTORY_FRAME_OVERHEAD_BYTES, historyFrame, withSeq } from "../contract/frames";
import {
  DEFAULT_HISTORY_SETTINGS,
  type HistoryEntry,
  type HistoryPage,
  historyBounds,
  type ResumePage,
} from "../contract/room-history";
import { MAX_POST_BYTES } from "../runtime/connections-api";
import type { HandlerDeps } from "./deps";

/** Most messages one `history` frame carries; a client asks for 1 to this many. */
export const HISTORY_PAGE_LIMIT = 100;
/** Messages per page when the client names no `limit` (and for the page `join` answers with). */
export const DEFAULT_HISTORY_PAGE = 50;

/** What a client asked for, validated: a forward page (`after`) or a backward one (`before`, or the newest). */
export type HistoryQuery =
  | { readonly direction: "after"; readonly after: number; readonly limit: number }
  | { readonly direction: "before"; readonly before?: number; readonly limit: number };

/** A validation failure: the `InvalidHistoryQuery` frame's message and extra fields. */
export interface QueryError {
  readonly message: string;
  readonly extra: Record<string, unknown>;
}

const isSeq = (value: unknown, min: number): value is number =>
  typeof value === "number" && Number.isSafeInteger(value) && value >= min;

/** `join`'s optional `after`: absent, or a non-negative integer. */
export function checkAfter(value: unknown): { ok: true; after?: number } | ({ ok: false } & QueryError) {
  if (value === undefined || value === null) return { ok: true };
  if (isSeq(value, 0)) return { ok: true, after: value };
  return {
    ok: false,
    message: '"after" must be a non-negative integer: the last seq you saw in the room (0: none).',
    extra: { field: "after" },
  };
}

/** The `history` action's `after` / `before` / `limit`. */
export function checkHistoryQuery(
  body: Record<string, unknown>,
): { ok: true; query: HistoryQuery } | ({ ok: false } & QueryError) {
  const { after, before, limit } = body;
  let size = DEFAULT_HISTORY_PAGE;
  if (limit !== undefined && limit !== null) {
    if (!isSeq(limit, 1) || limit > HISTORY_PAGE_LIMIT) {
      return {
        ok: false,
        message: `"limit" must be an integer from 1 to ${HISTORY_PAGE_LIMIT}.`,
        extra: { field: "limit", limit: HISTORY_PAGE_LIMIT },
      };
    }
    size = limit;
  }
  const hasAfter = after !== undefined && after !== null;
  const hasBefore = before !== undefined && before !== null;
  if (hasAfter && hasBefore)
    return { ok: false, message: 'Give "after" or "before", not both.', extra: { field: "before" } };
  if (hasAfter) {
    const checked = checkAfter(after);
    if (!checked.ok) return checked;
    return { ok: true, query: { direction: "after", after: checked.after ?? 0, limit: size } };
  }
  if (hasBefore && !isSeq(before, 1))
    return { ok: false, message: '"before" must be a positive integer (a seq).', extra: { field: "before" } };
  return {
    ok: true,
    query: { direction: "before", ...(hasBefore ? { before: before as number } : {}), limit: size },
  };
}

/** Reads the page `query` asks for and renders it as one `history` frame that fits a post. */
export async function readHistoryFrame(deps: HandlerDeps, room: string, query: HistoryQuery): Promise<string> {
  const bounds = historyBounds(deps.env.history ?? DEFAULT_HISTORY_SETTINGS);
  if (query.direction === "after") {
    const page: ResumePage = await deps.store.historyAfter(room, { after: query.after, limit: query.limit }, bounds);
    const { messages, cut } = fitPage(page.entries, "oldest");
    return historyFrame(
      { room, latestSeq: page.latestSeq, more: page.more || cut, complete: page.reachesBack },
      messages,
    );
  }
  const page: HistoryPage = await deps.store.historyBefore(
    room,
    { ...(query.before !== undefined ? { before: query.before } : {}), limit: query.limit },
    bounds,
  );
  const { messages, cut } = fitPage(page.entries, "newest");
  return historyFrame({ room, latestSeq: page.latestSeq, more: page.more || cut }, messages);
}

/**
 * The entries (with their seq) that fit one post with the frame around them, kept from the `keep` end: a forward
 * page keeps its oldest (the client asks again after the last), a backward page its newest (it asks again before
 * the first). Every stored frame fits alone (handlers/send-message.ts bounds it), so a page is never empty while
 * entries remain.
 */
function fitPage(entries: readonly HistoryEntry[], keep: "oldest" | "newest"): { messages: string[]; cut: boolean } {
  const budget = MAX_POST_BYTES - HISTORY_FRAME_OVERHEAD_BYTES;
  const ordered = keep === "oldest" ? entries : [...entries].reverse();
  const messages: string[] = [];
  let bytes = 0;
  for (const entry of ordered) {
    const posted = withSeq(entry.frame, entry.seq);
    const size = Buffer.byteLength(posted) + (messages.length > 0 ? 1 : 0);
    if (bytes + size > budget && messages.length > 0) break;
    messages.push(posted);
    bytes += size;
  }
  const cut = messages.length < entries.length;
  return { messages: keep === "oldest" ? messages : messages.reverse(), cut };
}
