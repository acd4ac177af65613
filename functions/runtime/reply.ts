/** Answers the connection that sent the current message, through `@connections` (routes are one-way). */
import type { HandlerDeps } from "./container";
import { requireConnections } from "./container";
import type { WebSocketEvent } from "./event";
import { errorFrame, type ErrorCode } from "./frames";
import type { Logger } from "./logger";

export async function replyError(
  deps: HandlerDeps,
  event: WebSocketEvent,
  log: Logger,
  code: ErrorCode,
  message: string,
  extra: Record<string, unknown> = {},
): Promise<void> {
  const outcome = await requireConnections(deps).post(
    event.requestContext.connectionId,
    errorFrame(code, message, extra),
  );
  if (outcome.kind === "delivered") {
    log.info("rejected message", { outcome: "client-error", code });
  } else {
    // The sender may have gone in the meantime; nothing else to do.
    log.warn("could not deliver error frame", {
      outcome: outcome.kind,
      code,
      error: "error" in outcome ? outcome.error : undefined,
    });
  }
}
