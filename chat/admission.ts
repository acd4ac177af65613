/**
 * What every message route does before its own work (the admission step of pipeline.ts): count the message
 * against the sender's rate limit, then parse the frame. A refused message has already been answered (an error
 * frame to the sender) when this returns, and `result` is what the route returns for it: 200 for the client's
 * mistake, so that API Gateway's `IntegrationError` does not count it (reply.ts says why).
 */

import { encodeData, parseBody } from "../contract/message-body";
import { DEFAULT_MESSAGE_LIMITS } from "../contract/message-limits";
import { MAX_POST_BYTES } from "../runtime/connections-api";
import type { HandlerResult, WebSocketEvent } from "../runtime/event";
import type { Logger } from "../runtime/logger";
import type { HandlerDeps } from "./deps";
import { enforceRateLimit } from "./rate-limit";
import { replyError } from "./reply";
import { enforceTokenExpiry } from "./token-expiry";

export type Admission =
  | { readonly ok: true; readonly body: Record<string, unknown> }
  | { readonly ok: false; readonly result: HandlerResult };

/** `parseErrorExtra` is added to the error frame of a body that is not a JSON object. */
export async function admitMessage(
  event: WebSocketEvent,
  deps: HandlerDeps,
  log: Logger,
  parseErrorExtra: Record<string, unknown> = {},
): Promise<Admission> {
  const sender = await admitSender(event, deps, log);
  if (!sender.ok) return sender;
  const parsed = parseBody(event.body);
  if (!parsed.ok) {
    return { ok: false, result: await replyError(deps, event, log, parsed.code, parsed.message, parseErrorExtra) };
  }
  return { ok: true, body: parsed.value };
}

/**
 * What stands before every message route, body or not: a connection whose token has expired is closed (it is
 * not counted), then the message is counted against the rate limits.
 */
export async function admitSender(
  event: WebSocketEvent,
  deps: HandlerDeps,
  log: Logger,
): Promise<{ readonly ok: true } | { readonly ok: false; readonly result: HandlerResult }> {
  const token = await enforceTokenExpiry(event, deps, log);
  if (token.kind === "expired") return { ok: false, result: token.result };
  const rate = await enforceRateLimit(event, deps, log);
  return rate.kind === "allowed" ? { ok: true } : { ok: false, result: rate.result };
}

export type DataAdmission =
  | { readonly ok: true; readonly data: unknown; readonly wire: string; readonly maxDataBytes: number }
  | { readonly ok: false; readonly result: HandlerResult };

/**
 * The `data` of a `sendmessage` / `sendto`: present, encodable (a string as is, any other value as JSON text) and,
 * encoded, within the configured limit. `usage` is the example the MissingData frame shows.
 */
export async function admitData(
  event: WebSocketEvent,
  deps: HandlerDeps,
  log: Logger,
  body: Record<string, unknown>,
  usage: string,
): Promise<DataAdmission> {
  const { data } = body;
  if (data === undefined || data === null) {
    return { ok: false, result: await replyError(deps, event, log, "MissingData", usage) };
  }
  let wire: string;
  try {
    wire = encodeData(data);
  } catch {
    // JSON.stringify gives up on values nested thousands deep (JSON.parse accepted them).
    return {
      ok: false,
      result: await replyError(deps, event, log, "InvalidBody", '"data" is nested too deeply to send.'),
    };
  }
  // The configured limit (default 32 KB) sits below API Gateway's own 128 KB (MAX_POST_BYTES) by construction.
  const maxDataBytes = Math.min((deps.env.limits ?? DEFAULT_MESSAGE_LIMITS).maxDataBytes, MAX_POST_BYTES);
  const bytes = Buffer.byteLength(wire);
  if (bytes > maxDataBytes) {
    const message = `"data" is ${bytes} bytes; the limit is ${maxDataBytes}.`;
    return {
      ok: false,
      result: await replyError(deps, event, log, "PayloadTooLarge", message, { limit: maxDataBytes }),
    };
  }
  return { ok: true, data, wire, maxDataBytes };
}
