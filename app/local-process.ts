/**
 * What a process that runs the handlers in-process (the local gateway, tests) registers: every store
 * (store-from-env.ts) and the in-process stand-in for the worker Lambda (chat/in-process-workers.ts). Lambda
 * bundles never include this file.
 */
import "./store-from-env";
import { withInProcessWorkers } from "../chat/in-process-workers";
import { registerWorkerFallback } from "./worker-fallback";

registerWorkerFallback(withInProcessWorkers);
