/**
 * The time budgets of a broadcast: API Gateway's integration timeout, the worker's Lambda timeout, and the
 * deadlines derived from an invocation's remaining time.
 */
import { FANOUT_WORKER } from "../contract/routes";

/** API Gateway's integration timeout: `sendmessage` must have answered by then. */
export const INTEGRATION_TIMEOUT_MS = 29_000;
/** The fan-out worker's Lambda timeout (infra deploys it with this). */
export const FANOUT_WORKER_TIMEOUT_SECONDS = FANOUT_WORKER.timeoutSeconds;
/** Time kept back from an invocation's budget for dispatching, cleanup and the summary log. */
export const DEADLINE_MARGIN_MS = 3_000;
/**
 * `sendmessage` stops taking ids this long (at least; twice the post timeout if more) before its deadline, so
 * the posts in flight finish in time; the ids it has not taken go to workers.
 */
export const HANDOFF_DRAIN_MS = 3_000;

/** What Lambda passes as the handler's second argument (the part used here). */
export interface InvocationContext {
  getRemainingTimeInMillis(): number;
}

/** The epoch-ms deadline of an invocation: its remaining time (or `budgetMs` outside Lambda) minus a margin. */
export function deadlineOf(context: InvocationContext | undefined, budgetMs: number, now = Date.now()): number {
  const remaining = context ? Math.min(budgetMs, context.getRemainingTimeInMillis()) : budgetMs;
  return now + Math.max(1_000, remaining - DEADLINE_MARGIN_MS);
}

/** When the inline lane stops taking ids: early enough before `deadline` for the posts in flight to finish. */
export function intakeDeadlineOf(deadline: number, postTimeoutMs: number): number {
  return deadline - Math.max(HANDOFF_DRAIN_MS, 2 * postTimeoutMs);
}
