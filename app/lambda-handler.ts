/**
 * The Lambda-facing end of the handler pipeline (chat/pipeline.ts): a deps-taking route becomes the `handler` a
 * function exports, fed by a dependency provider — in every handler module the container's (`containerDeps` of
 * container.ts), named where the handler is, so each entry shows its composition root.
 */
import type { InvocationContext } from "../broadcast/broadcast";
import type { HandlerDeps } from "../chat/deps";
import { Logger } from "../runtime/logger";

/** A handler in its deps-taking form. */
export type DepsTaking<E, R> = (event: E, deps: HandlerDeps, context?: InvocationContext) => Promise<R>;

/** Where a function's dependencies come from: built once per container, shared by its invocations. */
export type DepsProvider = () => Promise<HandlerDeps>;

/**
 * The Lambda handler of a route. A container that cannot be built fails the invocation (Lambda reports the
 * error; API Gateway answers 5xx), and the next one tries again.
 */
export function lambdaHandler<E, R>(
  route: DepsTaking<E, R>,
  deps: DepsProvider,
): (event: E, context?: InvocationContext) => Promise<R> {
  return async (event, context) => route(event, await deps(), context);
}

/** Names an asynchronously invoked function in its log lines: `route` as a field, `name` in messages. */
export interface FunctionName {
  readonly route: string;
  readonly name: string;
}

/**
 * The Lambda handler of an asynchronously invoked function that must never throw (Lambda would retry the event):
 * even a container that cannot be built is only logged. Resolves with nothing, whatever `run` says.
 */
export function neverThrowingHandler<E>(
  { route, name }: FunctionName,
  run: DepsTaking<E, unknown>,
  deps: DepsProvider,
): (event: E, context?: InvocationContext) => Promise<void> {
  return async (event, context) => {
    let built: HandlerDeps;
    try {
      built = await deps();
    } catch (error) {
      new Logger().error(`${name}: dependencies unavailable`, { outcome: "error", route, error });
      return;
    }
    await run(event, built, context);
  };
}
