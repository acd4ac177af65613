/**
 * The one pipeline every WebSocket route runs through, so a route's module holds only what is its own (after
 * AWS Powertools for Lambda: thin handlers, shared middleware). In order:
 *
 * 1. parse: the event is read into an invocation logger, whose every line carries the route, the connection id
 *    and the request id;
 * 2. admission, as the route asks: none (`$connect`, `$disconnect`), the sender's token expiry and rate limit
 *    alone (`whoami`), or those and then the body parsed as a JSON object (every other message route;
 *    admission.ts). A refused message is answered there and never reaches the route;
 * 3. the route's own handler;
 * 4. error mapping: a client's mistake is answered in-band with its error frame and 200, a fault of ours is 5xx
 *    (the rule and its reasons live in reply.ts). A store that failed or did not answer in time is answered with
 *    `StoreUnavailable` (retryable) and 502; any other error the route throws is a fault: logged here and thrown
 *    on, so Lambda counts it as a function error and API Gateway answers 5xx;
 * 5. one log line per invocation with its `outcome`: the route's (or admission's) own on every path it returns
 *    from, the pipeline's for a fault the route did not catch.
 *
 * Message routes (every route but `$connect` and `$disconnect`) see the store through two views, built per
 * invocation: bounded in time with a circuit (store-guard.ts), so the sender hears back within about a second
 * whatever the store does, and healing the sender's record if the store lost it (sender-store.ts).
 *
 * What comes out is the deps-taking form tests and bench call; app/lambda-handler.ts gives it the container's.
 */
import type { InvocationContext } from "../broadcast/broadcast";
import { type HandlerResult, invocationLogger, type WebSocketEvent } from "../runtime/event";
import type { Logger } from "../runtime/logger";
import { admitMessage, admitSender } from "./admission";
import type { HandlerDeps } from "./deps";
import { replyError } from "./reply";
import { senderStore } from "./sender-store";
import { guardStore, StoreUnavailableError } from "./store-guard";

/** What a route's own handler gets: the invocation, its deps and its logger. */
export interface RouteInvocation {
  readonly event: WebSocketEvent;
  readonly deps: HandlerDeps;
  readonly log: Logger;
  readonly context?: InvocationContext;
}

/** A message route's invocation once admitted: the frame's body, a JSON object. */
export interface MessageInvocation extends RouteInvocation {
  readonly body: Record<string, unknown>;
}

/** A route in its deps-taking form: what tests, bench and app/lambda-handler.ts call. */
export type Route = (event: WebSocketEvent, deps: HandlerDeps, context?: InvocationContext) => Promise<HandlerResult>;

/** Step 2's outcome: the route's input, or the result a refused message is answered with. */
type Admitted<I> = { readonly ok: true; readonly input: I } | { readonly ok: false; readonly result: HandlerResult };

type Admit<I> = (invocation: RouteInvocation) => Promise<Admitted<I>>;

/** A route that takes every event as it comes (`$connect`, `$disconnect`). */
export function plainRoute(handle: (invocation: RouteInvocation) => Promise<HandlerResult>): Route {
  return pipeline(async (invocation) => ({ ok: true, input: invocation }), handle, "plain");
}

/** A message route that reads no body: only the rate limit stands before it (`whoami`). */
export function rateLimitedRoute(handle: (invocation: RouteInvocation) => Promise<HandlerResult>): Route {
  return pipeline(
    async (invocation) => {
      const sender = await admitSender(invocation.event, invocation.deps, invocation.log);
      return sender.ok ? { ok: true, input: invocation } : sender;
    },
    handle,
    "message",
  );
}

/**
 * A message route: rate limit, then the body parsed as a JSON object. `parseErrorExtra` is added to the error frame
 * of a body that is not one.
 */
export function messageRoute(
  handle: (invocation: MessageInvocation) => Promise<HandlerResult>,
  parseErrorExtra: Record<string, unknown> = {},
): Route {
  return pipeline(
    async (invocation) => {
      const admitted = await admitMessage(invocation.event, invocation.deps, invocation.log, parseErrorExtra);
      return admitted.ok ? { ok: true, input: { ...invocation, body: admitted.body } } : admitted;
    },
    handle,
    "message",
  );
}

/** `plain` routes see the store as it is; `message` routes through the per-invocation views (see above). */
type StoreView = "plain" | "message";

function pipeline<I>(admit: Admit<I>, handle: (input: I) => Promise<HandlerResult>, view: StoreView): Route {
  return async (event, given, context) => {
    const started = Date.now();
    const log = invocationLogger(given.log, event);
    const deps = view === "message" ? messageDeps(given, event, log) : given;
    try {
      const admitted = await admit({ event, deps, log, context });
      return admitted.ok ? await handle(admitted.input) : admitted.result;
    } catch (error) {
      if (error instanceof StoreUnavailableError) return storeUnavailable(deps, event, log, error, started);
      log.error("route failed", { outcome: "error", error, durationMs: Date.now() - started });
      throw error;
    }
  };
}

function messageDeps(deps: HandlerDeps, event: WebSocketEvent, log: Logger): HandlerDeps {
  const store = senderStore(guardStore(deps.store), event, deps.env.connectionTtlSeconds, log);
  return { ...deps, store };
}

/** The store failed the route: the sender is told it may retry, and the invocation is a fault (reply.ts). */
async function storeUnavailable(
  deps: HandlerDeps,
  event: WebSocketEvent,
  log: Logger,
  error: StoreUnavailableError,
  started: number,
): Promise<HandlerResult> {
  log.error("route failed: store unavailable", {
    outcome: "store-unavailable",
    error: error.cause ?? error,
    durationMs: Date.now() - started,
  });
  return replyError(deps, event, log, "StoreUnavailable", "The server could not reach its store; try again.");
}
