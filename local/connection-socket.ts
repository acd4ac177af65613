/**
 * Wires an upgraded socket to its Connection: the frame guard (per-frame limits `ws` cannot express), `ws`'s
 * protocol errors, inbound messages and the close. Everything here runs per frame, so it stays minimal.
 */
import type { Duplex } from "node:stream";
import type { RawData, WebSocket } from "ws";
import type { Connection } from "./connection";
import { FrameGuard, type FrameViolation } from "./frame-guard";
import { CLOSE, type GatewayLimits, NO_STATUS_REASON } from "./limits";

/** A text frame that is not valid UTF-8: RFC 6455 §8.1 requires failing the connection with 1007. */
const INVALID_UTF8 = { code: 1007, reason: "Invalid UTF-8 in text frame" } as const;
/** Any other framing violation `ws` detects (bad opcode, RSV bits, unmasked frame, bad close code). */
const PROTOCOL_ERROR = { code: 1002, reason: "Protocol error" } as const;

/** Called with each inbound text message of an open connection. */
export type TextMessageHandler = (conn: Connection, body: string) => void;

/** Opens `conn` on `ws` and routes the socket's events to it. */
export function attachSocket(
  conn: Connection,
  ws: WebSocket,
  socket: Duplex,
  limits: GatewayLimits,
  onText: TextMessageHandler,
): void {
  conn.open(ws, limits);
  ws.on("error", (error: Error & { code?: string }) => {
    // `ws` has already sent its close frame for these; this records the close and fires `$disconnect`.
    // Its own message limit (a backstop for the frame guard) closes with 1009.
    if (error.code === "WS_ERR_UNSUPPORTED_MESSAGE_LENGTH") conn.close(CLOSE.tooBig);
    else if (error.code === "WS_ERR_INVALID_UTF8") conn.close(INVALID_UTF8, error.message);
    else if (error.code?.startsWith("WS_ERR_")) conn.close(PROTOCOL_ERROR, error.message);
  });
  const guard = new FrameGuard(limits, (violation) =>
    conn.close(violation.kind === "binary" ? CLOSE.binary : CLOSE.tooBig, describeViolation(violation)),
  );
  // Prepended: the guard sees each chunk before `ws` parses it, so an oversized frame is refused on its header.
  socket.prependListener("data", (chunk: Buffer) => guard.push(chunk));
  ws.on("message", (data: RawData, isBinary: boolean) => {
    if (!conn.isOpen) return; // frames that were already in flight when the close started
    if (isBinary) return conn.close(CLOSE.binary);
    conn.touch();
    onText(conn, rawToBuffer(data).toString("utf8"));
  });
  ws.on("close", (code: number, reason: Buffer) =>
    conn.socketClosed(code, code === 1005 ? NO_STATUS_REASON : reason.toString("utf8")),
  );
}

function describeViolation(violation: FrameViolation): string {
  switch (violation.kind) {
    case "binary":
      return "binary frame";
    case "frame-too-big":
      return `frame of ${violation.frameBytes} bytes > ${violation.limit}`;
    case "message-too-big":
      return `message of ${violation.messageBytes}+ bytes > ${violation.limit}`;
  }
}

function rawToBuffer(data: RawData): Buffer {
  if (Buffer.isBuffer(data)) return data;
  if (Array.isArray(data)) return Buffer.concat(data);
  return Buffer.from(data as ArrayBuffer);
}
