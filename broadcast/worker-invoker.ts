/**
 * How `sendmessage` hands a shard of a large broadcast to the fan-out worker:
 * - on AWS, Lambda's asynchronous `Invoke` ({@link LambdaInvoker}, lambda-invoker.ts);
 * - locally and in tests, the worker module in the same process ({@link InProcessInvoker}, in-process-invoker.ts).
 */
export { InProcessInvoker } from "./in-process-invoker";
export { InvokeError, LambdaInvoker } from "./lambda-invoker";
