/**
 * What the client reports instead of failing silently: the server's error frames (their stable `code`), and the
 * client's own conditions (`ConnectFailed`, `QueueFull`, `Closed`, `Timeout`), and frames that are not the server's
 * (`GatewayError` for API Gateway's own, `UnexpectedFrame` for anything else: sdk/unexpected-frame.ts).
 */
export class ChatError extends Error {
  override readonly name = "ChatError";

  constructor(
    /** The server's error code (`RateLimited`, `PayloadTooLarge`, `TooManyRooms`, …) or the client's own. */
    readonly code: string,
    message: string,
    /** Whether trying again may succeed. */
    readonly retryable: boolean,
    /** The server's error frame, when it came from one. */
    readonly frame?: Readonly<Record<string, unknown>>,
  ) {
    super(message);
  }
}
