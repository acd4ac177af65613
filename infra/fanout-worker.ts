/**
 * `FanOutWorker`: the function `sendmessage` invokes asynchronously with shards of broadcasts too large for one
 * invocation (broadcast/broadcast.ts), as a component: the function (with log group, role and policy,
 * handler-function.ts) and its asynchronous invocation settings. It is behind no route.
 */
import * as aws from "@pulumi/aws";
import * as pulumi from "@pulumi/pulumi";
import { FANOUT_WORKER } from "../contract/routes";
import { createHandlerFunction, type FunctionContext } from "./handler-function";
import { movedChildOptions } from "./moved-children";

export const FANOUT_WORKER_TYPE = "websocket-chat:index:FanOutWorker";

/** A shard older than this is no longer a chat message worth sending. */
const MAX_EVENT_AGE_SECONDS = 300;

export interface FanOutWorkerArgs {
  /** What every function of the `ChatApi` shares: the API, the store, settings and environment. */
  readonly context: FunctionContext;
}

/**
 * The fan-out worker.
 * @example
 * ```ts
 * const worker = new FanOutWorker(`${name}-worker`, { context }, { parent: chatApi });
 * ```
 */
export class FanOutWorker extends pulumi.ComponentResource {
  /** The worker function, named `{apiName}-fanout-worker`. */
  public readonly fn: aws.lambda.Function;

  constructor(name: string, args: FanOutWorkerArgs, opts?: pulumi.ComponentResourceOptions) {
    super(FANOUT_WORKER_TYPE, name, {}, opts);
    const children = movedChildOptions(this, opts);
    const prefix = `${args.context.apiName}-${FANOUT_WORKER.name}`;

    const { fn } = createHandlerFunction({ definition: FANOUT_WORKER, context: args.context }, children);
    // A worker's shard must run once: Lambda would retry a failed asynchronous invocation (twice by default)
    // and post the whole shard again.
    new aws.lambda.FunctionEventInvokeConfig(
      `${prefix}-async`,
      { functionName: fn.name, maximumRetryAttempts: 0, maximumEventAgeInSeconds: MAX_EVENT_AGE_SECONDS },
      children,
    );

    this.fn = fn;
    this.registerOutputs({ functionName: fn.name });
  }
}
