/**
 * What a refused handshake means for the client. API Gateway answers a refused `$connect` with an HTTP status
 * (401 or 403 from the authorizer, 429 when throttled or past the per-user connection limit, 5xx when the
 * authorizer failed). Browsers never show that status to a page (the WebSocket API reports only a close with code
 * 1006); the `ws` package does, in its error event ("Unexpected server response: 401"), so on Node the SDK can say
 * which refusal it was, and elsewhere it can only say that the handshake failed.
 */
import { ChatError } from "./chat-error";

/** The HTTP status of a refused handshake, when the WebSocket implementation exposes it. */
export function handshakeStatusOf(event: unknown): number | undefined {
  const message = (event as { message?: unknown } | undefined)?.message;
  if (typeof message !== "string") return undefined;
  const status = /server response: (\d{3})\b/.exec(message)?.[1];
  return status === undefined ? undefined : Number(status);
}

/**
 * The error for a handshake that did not open. `freshToken`: a token function is called before every attempt, so a
 * refused token may be followed by a good one; a fixed token refused once is refused every time, and the client
 * gives up (`retryable: false`).
 */
export function handshakeError(
  status: number | undefined,
  closeCode: number | undefined,
  freshToken: boolean,
): ChatError {
  if (status === 401 || status === 403) {
    return new ChatError(
      "AuthRefused",
      `The server refused the connection (HTTP ${status}): ${
        status === 401 ? "the token is missing, invalid or expired" : "not allowed (the token, or this page's origin)"
      }${freshToken ? "; retrying with a fresh token." : "."}`,
      freshToken,
    );
  }
  if (status === 429) {
    return new ChatError(
      "RateLimited",
      "The server refused the connection (HTTP 429): too many connections or requests; retrying.",
      true,
    );
  }
  const why = status !== undefined ? `HTTP ${status}` : `close ${closeCode ?? "?"}`;
  return new ChatError("ConnectFailed", `The handshake failed (${why}); retrying.`, true);
}
