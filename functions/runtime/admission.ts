/**
 * What every message route does before its own work: count the message against the sender's rate limit, then
 * parse the frame. A refused message has already been answered (an error frame to the sender) when this returns.
 */
import type { HandlerDeps } from "./container";
import { invocationLogger, type HandlerResult, type WebSocketEvent } from "./event";
import type { Logger } from "./logger";
import { parseBody } from "./message-body";
import { enforceRateLimit } from "./rate-limit";
import { replyError } from "./reply";

export type Admission =
  | { readonly ok: true; readonly log: Logger; readonly body: Record<string, unknown> }
  | { readonly ok: false; readonly result: HandlerResult };

/** `parseErrorExtra` is added to the error frame of a body that is not a JSON object. */
export async function admitMessage(
  event: WebSocketEvent,
  deps: HandlerDeps,
  parseErrorExtra: Record<string, unknown> = {},
): Promise<Admission> {
  const log = invocationLogger(deps.log, event);
  if ((await enforceRateLimit(event, deps, log)).kind !== "allowed") return { ok: false, result: { statusCode: 429 } };
  const parsed = parseBody(event.body);
  if (!parsed.ok) {
    await replyError(deps, event, log, parsed.code, parsed.message, parseErrorExtra);
    return { ok: false, result: { statusCode: 400 } };
  }
  return { ok: true, log, body: parsed.value };
}
