/**
 * Per-container dependencies: the composition root. Lambda reuses a container for many invocations, so the store
 * client and the management API client are created once, at the first invocation, from the environment infra
 * set — never per request. Two choices are made here, once: the store (from the factories this process was built
 * with, store-registry.ts) and where fan-out shards go (the SQS shard queue the worker consumes when
 * FANOUT_SHARD_QUEUE_URL is set; Lambda's async invoke of the worker when only FANOUT_WORKER_FUNCTION is; else the
 * registered stand-in: in-process for local runs and tests, worker-fallback.ts).
 */
import { LambdaInvoker, SqsShardQueue } from "../broadcast/worker-invoker";
import type { HandlerDeps } from "../chat/deps";
import { DEFAULT_FANOUT, ENV, readRuntimeEnv } from "../contract/env";
import { ConnectionsApi } from "../runtime/connections-api";
import { Logger } from "../runtime/logger";
import { storeFactoryOf } from "./store-registry";
import { withWorkerFallback } from "./worker-fallback";

let deps: Promise<HandlerDeps> | undefined;

/**
 * The container's dependencies, built at its first invocation and shared by every later one. Async because a
 * Redis store's AUTH token is first fetched from Secrets Manager. A failed build (Secrets Manager unreachable,
 * say) is not kept: the next invocation tries again instead of the container failing until Lambda recycles it.
 */
export function containerDeps(): Promise<HandlerDeps> {
  if (!deps) {
    const pending = buildContainerDeps();
    deps = pending;
    pending.catch(() => {
      if (deps === pending) deps = undefined;
    });
  }
  return deps;
}

/** Builds the dependencies from an environment (`process.env`), secrets resolved; {@link containerDeps} caches the result. */
export async function buildContainerDeps(
  source: Readonly<Record<string, string | undefined>> = process.env,
): Promise<HandlerDeps> {
  const declared = readRuntimeEnv(source);
  const factory = storeFactoryOf(declared.store);
  const env = factory.prepare ? await factory.prepare(declared) : declared;
  const fanOut = env.fanOut ?? DEFAULT_FANOUT;
  const connections = env.callbackUrl
    ? ConnectionsApi.forEndpoint(env.callbackUrl, { timeoutMs: fanOut.postTimeoutMs, maxSockets: fanOut.concurrency })
    : undefined;
  const base = { env, store: factory.create(env), connections, log: new Logger() };
  const { shardQueueUrl, workerFunction } = fanOut;
  if (!connections || (!shardQueueUrl && !workerFunction)) return withWorkerFallback(base);
  const credentials = () => connections.client.config.credentials();
  const region = () => connections.client.config.region();
  if (shardQueueUrl) {
    // The durable path: shards wait in SQS until a worker has posted them (broadcast/sqs-shard-queue.ts).
    const queue = new SqsShardQueue(shardQueueUrl, credentials, region, source[ENV.AWS_ENDPOINT_URL_SQS]);
    const dlqUrl = fanOut.shardDlqUrl;
    return {
      ...base,
      invokeWorker: queue.invoke,
      ...(dlqUrl ? { deadLetterShard: async (event) => void (await queue.send(dlqUrl, event)) } : {}),
    };
  }
  const invoker = new LambdaInvoker(workerFunction!, credentials, region, source[ENV.AWS_ENDPOINT_URL_LAMBDA]);
  return { ...base, invokeWorker: invoker.invoke };
}
