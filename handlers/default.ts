/**
 * `$default`: API Gateway sends here every frame whose `action` matches no route (and every non-JSON frame).
 * The sender learns what was wrong and which actions exist; the invocation itself succeeds (reply.ts).
 */
import { containerDeps } from "../app/container";
import { lambdaHandler } from "../app/lambda-handler";
import { messageRoute } from "../chat/pipeline";
import { replyError } from "../chat/reply";
import { CLIENT_ACTIONS } from "../contract/routes";

const availableActions = [...CLIENT_ACTIONS];

export const defaultRoute = messageRoute(
  async ({ event, deps, log, body }) => {
    const { action } = body;
    if (action === undefined || action === null || action === "") {
      return replyError(deps, event, log, "MissingAction", 'The message has no "action" field.', { availableActions });
    }
    // Echoed back bounded: a 128 KB action echoed twice would not fit in one post, and the sender would get nothing.
    const shown = echoable(action);
    return replyError(deps, event, log, "UnknownAction", `Unknown action ${JSON.stringify(shown)}.`, {
      action: shown,
      availableActions,
    });
  },
  { availableActions },
);

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

export const handler = lambdaHandler(defaultRoute, containerDeps);
