/**
 * A frame the client cannot read as one of the server's: API Gateway's own (`{"message":"Internal server error",
 * "connectionId","requestId"}` when a handler failed, "Endpoint request timed out" after 29 s), or anything else
 * (never from this server to a typed client). Either is reported as an `error` rather than dropped, so a message
 * that failed on its way through the gateway is not silent.
 */
import { ChatError } from "./chat-error";

/** How much of an unreadable frame the error quotes. */
const QUOTED_CHARS = 200;

export function unexpectedFrameError(text: string): ChatError {
  const frame = objectOf(text);
  if (frame && frame.type === undefined && typeof frame.message === "string") {
    // API Gateway says nothing about whether the message was handled: not retryable as far as the client knows.
    return new ChatError("GatewayError", `API Gateway: ${frame.message}`, false, frame);
  }
  return new ChatError(
    "UnexpectedFrame",
    `Unexpected frame from the server: ${text.slice(0, QUOTED_CHARS)}`,
    false,
    frame ?? { text: text.slice(0, QUOTED_CHARS) },
  );
}

function objectOf(text: string): Record<string, unknown> | undefined {
  try {
    const value: unknown = JSON.parse(text);
    return typeof value === "object" && value !== null && !Array.isArray(value)
      ? (value as Record<string, unknown>)
      : undefined;
  } catch {
    return undefined;
  }
}
