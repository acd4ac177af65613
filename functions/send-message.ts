/**
 * `sendmessage`: `{"action":"sendmessage","data":…}` is delivered to every live connection, `data` exactly as
 * given (a string as is, any other JSON value as its JSON text).
 */
import { fanOut } from "./fan-out";
import { MAX_POST_BYTES } from "./runtime/connections-api";
import { containerDeps, requireConnections, type HandlerDeps } from "./runtime/container";
import { invocationLogger, type HandlerResult, type WebSocketEvent } from "./runtime/event";
import { encodeData, parseBody } from "./runtime/message-body";
import { replyError } from "./runtime/reply";

export async function sendMessage(event: WebSocketEvent, deps: HandlerDeps): Promise<HandlerResult> {
  const log = invocationLogger(deps.log, event);
  const parsed = parseBody(event.body);
  if (!parsed.ok) {
    await replyError(deps, event, log, parsed.code, parsed.message);
    return { statusCode: 400 };
  }
  const { data } = parsed.value;
  if (data === undefined || data === null) {
    await replyError(deps, event, log, "MissingData", 'sendmessage needs a "data" field, e.g. {"action":"sendmessage","data":"hello"}.');
    return { statusCode: 400 };
  }
  const payload = Buffer.from(encodeData(data));
  if (payload.byteLength > MAX_POST_BYTES) {
    await replyError(deps, event, log, "PayloadTooLarge", `"data" is ${payload.byteLength} bytes; the limit is ${MAX_POST_BYTES}.`, {
      limit: MAX_POST_BYTES,
    });
    return { statusCode: 413 };
  }

  const connections = requireConnections(deps);
  const summary = await fanOut({
    targets: deps.store.list(),
    post: (connectionId) => connections.post(connectionId, payload),
    store: deps.store,
  });
  log.info("broadcast", { outcome: summary.failed === 0 ? "ok" : "partial", ...summary, bytes: payload.byteLength });
  return { statusCode: 200 };
}

export const handler = (event: WebSocketEvent): Promise<HandlerResult> => sendMessage(event, containerDeps());
