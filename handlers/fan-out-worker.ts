/**
 * The fan-out worker's Lambda: posts one shard of a large broadcast, invoked asynchronously by the routes that
 * broadcast. What it does is chat/fan-out-shard.ts (the same code runs in-process locally); here it only gets the
 * container's dependencies, and never throws, not even when those cannot be built (Lambda would retry the shard).
 */
import { containerDeps } from "../app/container";
import { neverThrowingHandler } from "../app/lambda-handler";
import { FANOUT_WORKER_ROUTE, fanOutWorker } from "../chat/fan-out-shard";

export const handler = neverThrowingHandler(
  { route: FANOUT_WORKER_ROUTE, name: "fan-out worker" },
  fanOutWorker,
  containerDeps,
);
