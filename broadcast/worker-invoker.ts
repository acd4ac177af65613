/**
 * How `sendmessage` hands a shard of a large broadcast to the fan-out worker:
 * - on AWS, a durable SQS queue the worker consumes ({@link SqsShardQueue}, sqs-shard-queue.ts), or Lambda's
 *   asynchronous `Invoke` ({@link LambdaInvoker}, lambda-invoker.ts) when only the worker function is named;
 * - locally and in tests, the worker module in the same process ({@link InProcessInvoker}, in-process-invoker.ts).
 */
export { InProcessInvoker } from "./in-process-invoker";
export { InvokeError, LambdaInvoker } from "./lambda-invoker";
export { MAX_DELAY_SECONDS, SqsError, SqsShardQueue, sqsMessageBody } from "./sqs-shard-queue";
