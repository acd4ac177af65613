/**
 * The frames the client speaks, as the SDK sees them: the server's own frame types (contract/frames.ts, imported
 * type-only, so one definition serves both and the SDK's bundle takes no server code), and the subprotocol from
 * its import-free contract file. Server frames are parsed defensively: a frame that is not a JSON object with a
 * known `type` is ignored, never thrown on.
 */
import type {
  AckFrame,
  BroadcastFrame,
  DirectFrame,
  ErrorFrame,
  HistoryFrame,
  MemberEntry,
  MessageFrame,
  ServerFrame,
} from "../contract/frames";
import { CHAT_PROTOCOL } from "../contract/subprotocol";

export type { AckFrame, ErrorFrame, HistoryFrame, MessageFrame, ServerFrame };

/** The WebSocket subprotocol a typed client asks for at connect. */
export const CHAT_SUBPROTOCOL = CHAT_PROTOCOL;

export type MemberInfo = MemberEntry;

/** A chat message as the server wrote it: a room `message` (with `seq`), a room-less `broadcast`, or a `direct` one. */
export type MessageEvent = MessageFrame | BroadcastFrame | DirectFrame;

export type ClientFrame = Record<string, unknown> & { readonly action: string };

const TYPES = new Set<ServerFrame["type"]>([
  "message",
  "broadcast",
  "direct",
  "history",
  "members",
  "joined",
  "left",
  "whoami",
  "ack",
  "pong",
  "error",
]);

export function parseServerFrame(text: string): ServerFrame | undefined {
  let value: unknown;
  try {
    value = JSON.parse(text);
  } catch {
    return undefined;
  }
  if (typeof value !== "object" || value === null || Array.isArray(value)) return undefined;
  const type = (value as { type?: unknown }).type;
  return typeof type === "string" && TYPES.has(type as ServerFrame["type"]) ? (value as ServerFrame) : undefined;
}
