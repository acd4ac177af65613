/**
 * `TokenSweeper`: the function that closes idle connections whose token has expired (handlers/token-sweeper.ts),
 * as a component: the function (with log group, least-privilege role and policy, handler-function.ts: store read,
 * POST and DELETE on `@connections`, nothing else) and an EventBridge schedule rule that invokes it every
 * `tokenSweepMinutes`. Behind no route; deployed only with `auth: jwt`, since without tokens nothing expires.
 */
import * as aws from "@pulumi/aws";
import * as pulumi from "@pulumi/pulumi";
import { TOKEN_SWEEPER } from "../contract/routes";
import { createHandlerFunction, type FunctionContext } from "./handler-function";
import { movedChildOptions } from "./moved-children";

export const TOKEN_SWEEPER_TYPE = "websocket-chat:index:TokenSweeper";

export interface TokenSweeperArgs {
  /** What every function of the `ChatApi` shares: the API, the store, settings and environment. */
  readonly context: FunctionContext;
  /** Minutes between sweeps, at least 1. */
  readonly everyMinutes: number;
}

/**
 * EventBridge's rate expression: the unit is singular for 1 and plural above ("rate(1 minute)", "rate(5 minutes)";
 * anything else is refused). Amazon EventBridge User Guide, "Rate expressions reference".
 */
export function rateExpression(minutes: number): string {
  if (!Number.isSafeInteger(minutes) || minutes < 1) throw new RangeError(`minutes must be >= 1, got ${minutes}`);
  return minutes === 1 ? "rate(1 minute)" : `rate(${minutes} minutes)`;
}

/**
 * The token sweeper.
 * @example
 * ```ts
 * const sweeper = new TokenSweeper(`${name}-sweeper`, { context, everyMinutes: 1 }, { parent: chatApi });
 * ```
 */
export class TokenSweeper extends pulumi.ComponentResource {
  /** The sweeper function, named `{apiName}-token-sweeper`. */
  public readonly fn: aws.lambda.Function;
  /** The schedule that invokes it. */
  public readonly rule: aws.cloudwatch.EventRule;

  constructor(name: string, args: TokenSweeperArgs, opts?: pulumi.ComponentResourceOptions) {
    super(TOKEN_SWEEPER_TYPE, name, {}, opts);
    const children = movedChildOptions(this, opts);
    const prefix = `${args.context.apiName}-${TOKEN_SWEEPER.name}`;

    const { fn } = createHandlerFunction({ definition: TOKEN_SWEEPER, context: args.context }, children);
    // A failed sweep is not retried: the next scheduled one does the same work (a sweep is idempotent).
    new aws.lambda.FunctionEventInvokeConfig(
      `${prefix}-async`,
      { functionName: fn.name, maximumRetryAttempts: 0, maximumEventAgeInSeconds: 60 * args.everyMinutes },
      children,
    );
    const rule = new aws.cloudwatch.EventRule(
      `${prefix}-schedule`,
      {
        description: "Closes idle WebSocket connections whose token has expired",
        scheduleExpression: rateExpression(args.everyMinutes),
      },
      children,
    );
    // EventBridge may invoke this function, and only for this rule.
    const permission = new aws.lambda.Permission(
      `${prefix}-schedule-invoke`,
      { action: "lambda:InvokeFunction", function: fn.name, principal: "events.amazonaws.com", sourceArn: rule.arn },
      children,
    );
    new aws.cloudwatch.EventTarget(
      `${prefix}-schedule-target`,
      { rule: rule.name, arn: fn.arn },
      { ...children, dependsOn: [permission] },
    );

    this.fn = fn;
    this.rule = rule;
    this.registerOutputs({ functionName: fn.name, ruleName: rule.name });
  }
}
