/**
 * The Pulumi program: read config, build the chat backend, return the stack outputs. A function rather than
 * top-level code so tests can run it once per configuration in one process.
 */
import type * as pulumi from "@pulumi/pulumi";
import { ChatApi } from "./chat-api";
import { type DeployedStore, loadConfig, PROJECT_NAME } from "./config";

/** The stack outputs. */
export interface ProgramOutputs {
  /** Client URL: `wss://{apiId}.execute-api.{region}.amazonaws.com/{stage}`. */
  readonly url: pulumi.Output<string>;
  /** `@connections` management endpoint: `https://{apiId}.execute-api.{region}.amazonaws.com/{stage}`. */
  readonly callbackUrl: pulumi.Output<string>;
  readonly store: DeployedStore;
  /** DynamoDB table name, or Redis primary endpoint address. */
  readonly storeResource: pulumi.Output<string>;
  /** ARN of the fan-out shard queue (the destination of a dead-letter redrive). */
  readonly shardQueueArn: pulumi.Output<string>;
  /** URL and ARN of the shard queue's dead-letter queue: what failed on every try (docs/fan-out.md). */
  readonly shardDeadLetterQueueUrl: pulumi.Output<string>;
  readonly shardDeadLetterQueueArn: pulumi.Output<string>;
}

export function createProgram(): ProgramOutputs & { readonly chat: ChatApi } {
  const config = loadConfig();
  const chat = new ChatApi(PROJECT_NAME, config);
  return {
    chat,
    url: chat.url,
    callbackUrl: chat.callbackUrl,
    store: chat.store,
    storeResource: chat.storeResource,
    shardQueueArn: chat.shardQueues.queue.arn,
    shardDeadLetterQueueUrl: chat.shardQueues.deadLetterQueue.url,
    shardDeadLetterQueueArn: chat.shardQueues.deadLetterQueue.arn,
  };
}
