/**
 * The frames the client speaks, as the SDK sees them. Server frames are parsed defensively: a frame that is not a
 * JSON object with a known `type` is ignored, never thrown on.
 */

/** The WebSocket subprotocol a typed client asks for at connect. */
export const CHAT_SUBPROTOCOL = "websocket-chat.v1";

export interface MemberInfo {
  readonly connectionId: string;
  readonly userId?: string;
  readonly name?: string;
}

/** A chat message as the server wrote it: a room `message`, a room-less `broadcast`, or a `direct` one. */
export interface MessageEvent {
  readonly type: "message" | "broadcast" | "direct";
  /** The server's id: the same message delivered twice has the same id. */
  readonly id?: string;
  /** Room messages: the place in the room's order. */
  readonly seq?: number;
  readonly room?: string;
  readonly from: string;
  readonly userId?: string;
  readonly name?: string;
  readonly data: unknown;
  readonly ts: number;
}

export interface HistoryFrame {
  readonly type: "history";
  readonly room: string;
  readonly messages: MessageEvent[];
  /** The last frame of this answer. */
  readonly done?: boolean;
  /** `false` when the history no longer reaches back to what was asked for. */
  readonly complete?: boolean;
}

export type ServerFrame =
  | MessageEvent
  | HistoryFrame
  | { readonly type: "members"; readonly room: string; readonly members: MemberInfo[]; readonly more: boolean }
  | ({ readonly type: "joined" | "left"; readonly room: string; readonly ts: number } & MemberInfo)
  | ({ readonly type: "whoami"; readonly rooms: string[] } & MemberInfo)
  | { readonly type: "ack"; readonly ref: string; readonly id: string; readonly seq?: number; readonly room?: string }
  | { readonly type: "pong"; readonly ts: number }
  | {
      readonly type: "error";
      readonly code: string;
      readonly message: string;
      readonly retryable?: boolean;
      readonly ref?: string;
      readonly room?: string;
      readonly retryAfterMs?: number;
    };

export type ClientFrame = Record<string, unknown> & { readonly action: string };

const TYPES = new Set([
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
  return typeof type === "string" && TYPES.has(type) ? (value as ServerFrame) : undefined;
}
