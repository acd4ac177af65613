/**
 * The token sweeper: closes connections whose token has expired and that have sent nothing since (a message
 * closes them itself, chat/token-expiry.ts). Invoked on a schedule (infra/token-sweeper.ts), behind no route; the
 * local gateway runs the same sweep on a timer. One log line per sweep with what it did. A sweep that cannot list
 * the store throws (after logging it): the function's Errors metric, and so its alarm, counts it, and the next
 * scheduled sweep starts over (a sweep is idempotent).
 */
import { containerDeps } from "../app/container";
import { lambdaHandler } from "../app/lambda-handler";
import { deadlineOf, type InvocationContext } from "../broadcast/broadcast";
import type { HandlerDeps } from "../chat/deps";
import { type SweepSummary, sweepExpiredTokens } from "../chat/token-expiry";
import { TOKEN_SWEEPER } from "../contract/routes";

/** A sweep's budget without a Lambda context (the local gateway's timer): its interval is a minute or more. */
const LOCAL_SWEEP_BUDGET_MS = 50_000;

/** One sweep with explicit deps (the handler below supplies the container's); tests and the local gateway call it. */
export async function sweepTokens(
  deps: HandlerDeps,
  now: number = Date.now(),
  context?: InvocationContext,
): Promise<SweepSummary> {
  const started = Date.now();
  const log = deps.log.child({ route: TOKEN_SWEEPER.name });
  try {
    const summary = await sweepExpiredTokens(deps, log, now, deadlineOf(context, LOCAL_SWEEP_BUDGET_MS));
    log.info("token sweep", {
      outcome: !summary.complete ? "incomplete" : summary.failed > 0 ? "partial" : "ok",
      ...summary,
      durationMs: Date.now() - started,
    });
    return summary;
  } catch (error) {
    log.error("token sweep failed", { outcome: "error", error, durationMs: Date.now() - started });
    throw error;
  }
}

export const handler = lambdaHandler(
  (_event: unknown, deps, context?: InvocationContext) => sweepTokens(deps, Date.now(), context),
  containerDeps,
);
