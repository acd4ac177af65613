/**
 * `$default`: API Gateway sends here every frame whose `action` matches no route (and every non-JSON frame).
 * The sender learns what was wrong and which actions exist.
 */
import { CLIENT_ACTIONS } from "./routes";
import { containerDeps, type HandlerDeps } from "./runtime/container";
import { invocationLogger, type HandlerResult, type WebSocketEvent } from "./runtime/event";
import { parseBody } from "./runtime/message-body";
import { replyError } from "./runtime/reply";

export async function defaultRoute(event: WebSocketEvent, deps: HandlerDeps): Promise<HandlerResult> {
  const log = invocationLogger(deps.log, event);
  const availableActions = [...CLIENT_ACTIONS];
  const parsed = parseBody(event.body);
  if (!parsed.ok) {
    await replyError(deps, event, log, parsed.code, parsed.message, { availableActions });
    return { statusCode: 400 };
  }
  const { action } = parsed.value;
  if (action === undefined || action === null || action === "") {
    await replyError(deps, event, log, "MissingAction", 'The message has no "action" field.', { availableActions });
    return { statusCode: 400 };
  }
  await replyError(deps, event, log, "UnknownAction", `Unknown action ${JSON.stringify(action)}.`, { action, availableActions });
  return { statusCode: 400 };
}

export const handler = (event: WebSocketEvent): Promise<HandlerResult> => defaultRoute(event, containerDeps());
