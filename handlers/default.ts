/**
 * `$default`: API Gateway sends here every frame whose `action` matches no route (and every non-JSON frame).
 * The sender learns what was wrong and which actions exist; the invocation itself succeeds (reply.ts).
 */
import { admitMessage } from "../chat/admission";
import { CLIENT_ACTIONS } from "../contract/routes";
import { containerDeps } from "../app/container";
import type { HandlerDeps } from "../chat/deps";
import type { HandlerResult, WebSocketEvent } from "../runtime/event";
import { replyError } from "../chat/reply";

export async function defaultRoute(event: WebSocketEvent, deps: HandlerDeps): Promise<HandlerResult> {
  const availableActions = [...CLIENT_ACTIONS];
  const admitted = await admitMessage(event, deps, { availableActions });
  if (!admitted.ok) return admitted.result;
  const { log } = admitted;
  const { action } = admitted.body;
  if (action === undefined || action === null || action === "") {
    return replyError(deps, event, log, "MissingAction", 'The message has no "action" field.', { availableActions });
  }
  // Echoed back bounded: a 128 KB action echoed twice would not fit in one post, and the sender would get nothing.
  const shown = echoable(action);
  return replyError(deps, event, log, "UnknownAction", `Unknown action ${JSON.stringify(shown)}.`, {
    action: shown,
    availableActions,
  });
}

/** Longest action echoed in an `UnknownAction` frame, in UTF-16 units of its text. */
export const MAX_ECHOED_ACTION = 200;

/** The action as sent when it is short; a long one (or the JSON text of a long non-string) cut to a string. */
function echoable(action: unknown): unknown {
  let text: string;
  try {
    text = typeof action === "string" ? action : JSON.stringify(action);
  } catch {
    return "(a value nested too deeply to show)";
  }
  if (text.length <= MAX_ECHOED_ACTION) return action;
  return `${text.slice(0, MAX_ECHOED_ACTION)}…`;
}

export const handler = async (event: WebSocketEvent): Promise<HandlerResult> =>
  defaultRoute(event, await containerDeps());
