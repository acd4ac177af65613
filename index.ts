import { createProgram } from "./infra/program";

const program = createProgram();

export const url = program.url;
export const callbackUrl = program.callbackUrl;
export const store = program.store;
export const storeResource = program.storeResource;
export const shardQueueArn = program.shardQueueArn;
export const shardDeadLetterQueueUrl = program.shardDeadLetterQueueUrl;
export const shardDeadLetterQueueArn = program.shardDeadLetterQueueArn;
