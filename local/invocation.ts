/**
 * Invoking a route's handler as API Gateway's integration does: the event in, the result (or the throw) out,
 * bounded by the integration timeout (29 s on AWS). A handler that outlives the timeout keeps running,
 * unobserved, as it would on Lambda; nothing waits for it.
 */
import type { HandlerResult, WebSocketEvent } from "../runtime/event";
import { delay } from "./delay";
import { describeError } from "./gateway-log";
import type { RouteHandler } from "./route-handlers";

/** How an invocation ended. */
export type Invocation =
  | { readonly kind: "result"; readonly result: HandlerResult | undefined; readonly durationMs: number }
  | { readonly kind: "error"; readonly error: unknown; readonly durationMs: number }
  | { readonly kind: "timeout"; readonly durationMs: number }
  | { readonly kind: "no-route" };

/** Runs `handler` (none: `no-route`) with `event`, giving up after `timeoutMs`; never rejects. */
export async function invokeHandler(
  handler: RouteHandler | undefined,
  event: WebSocketEvent,
  timeoutMs: number,
): Promise<Invocation> {
  if (!handler) return { kind: "no-route" };
  const started = Date.now();
  const run = (async (): Promise<Invocation> => {
    try {
      const result = await handler(event);
      return { kind: "result", result, durationMs: Date.now() - started };
    } catch (error) {
      return { kind: "error", error, durationMs: Date.now() - started };
    }
  })();
  const timeout = delay(timeoutMs);
  const timedOut = timeout.promise.then((): Invocation => ({ kind: "timeout", durationMs: Date.now() - started }));
  try {
    return await Promise.race([run, timedOut]);
  } finally {
    timeout.cancel();
  }
}

/** The status column of the invocation's log line. */
export function outcomeStatus(outcome: Invocation): string {
  switch (outcome.kind) {
    case "result":
      return String(outcome.result?.statusCode ?? "-");
    case "error":
      return "ERR";
    case "timeout":
      return "TIMEOUT";
    case "no-route":
      return "-";
  }
}

/** The note of the invocation's log line, when it failed. */
export function outcomeNote(outcome: Invocation): string | undefined {
  if (outcome.kind === "error") return `handler threw: ${describeError(outcome.error)}`;
  if (outcome.kind === "timeout") return "integration timeout";
  return undefined;
}

export function durationOf(outcome: Invocation): number {
  return outcome.kind === "no-route" ? 0 : outcome.durationMs;
}
