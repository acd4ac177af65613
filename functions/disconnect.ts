/** `$disconnect`: forgets the connection. Best effort: API Gateway ignores the result and may never call it. */
import { containerDeps, type HandlerDeps } from "./runtime/container";
import { invocationLogger, type HandlerResult, type WebSocketEvent } from "./runtime/event";

export async function disconnect(event: WebSocketEvent, deps: HandlerDeps): Promise<HandlerResult> {
  const log = invocationLogger(deps.log, event);
  const started = Date.now();
  const { disconnectStatusCode, disconnectReason } = event.requestContext;
  try {
    await deps.store.remove(event.requestContext.connectionId);
    log.info("disconnected", { outcome: "ok", disconnectStatusCode, disconnectReason, durationMs: Date.now() - started });
  } catch (error) {
    // Not fatal: the record expires on its own, and the next broadcast's 410 removes it.
    log.warn("disconnect cleanup failed", { outcome: "error", error, durationMs: Date.now() - started });
  }
  return { statusCode: 200 };
}

export const handler = (event: WebSocketEvent): Promise<HandlerResult> => disconnect(event, containerDeps());
