/**
 * A handler worker thread (handler-pool.ts): the Lambda container of a local run. It loads the handler modules it
 * is given, as a cold start does, then runs every invocation the gateway posts to it and posts back the result or
 * what was thrown. Its modules, clients and caches are its own, as a container's are; the memory store, which is
 * the gateway's, is reached over a bridge (store-bridge.ts).
 */
import { parentPort, workerData } from "node:worker_threads";
import type { HandlerResult, WebSocketEvent } from "../runtime/event";
import { loadHandlerModules } from "./handler-modules";
import type { WorkerControl, WorkerData, WorkerReply, WorkerRequest } from "./handler-pool";
import { bridgedStore, serializeError } from "./store-bridge";

type Handler = (event: WebSocketEvent) => Promise<HandlerResult | undefined> | HandlerResult | undefined;

function load(data: WorkerData): Map<string, Handler> {
  for (const file of data.preload ?? []) require(file);
  if (data.store) {
    // The route table's stores registered themselves when app/local-process was preloaded; the memory store's
    // registration is replaced by the bridge, before any handler has built its container.
    const { registerStore } = require("../app/store-registry") as typeof import("../app/store-registry");
    const store = bridgedStore(data.store.port, data.store.kind);
    registerStore(data.store.kind, { create: () => store });
  }
  return loadHandlerModules<Handler>(data.modules);
}

function main(): void {
  const port = parentPort;
  if (!port) throw new Error("handler-worker.ts runs as a worker thread of the local gateway");
  const data = workerData as WorkerData;
  let handlers: Map<string, Handler>;
  try {
    handlers = load(data);
  } catch (error) {
    port.postMessage({ kind: "load-failed", error: serializeError(error) } satisfies WorkerReply);
    return;
  }
  port.on("message", (message: string | WorkerControl) => {
    if (typeof message !== "string") return void drain(data).then(() => port.postMessage({ kind: "drained" }));
    const request = JSON.parse(message) as WorkerRequest;
    const handler = handlers.get(request.routeKey);
    const run = async () => {
      if (!handler) throw new Error(`no handler for route ${request.routeKey} in this worker`);
      return json(await handler(request.event));
    };
    run().then(
      (result) => port.postMessage({ kind: "result", id: request.id, ...result } satisfies WorkerReply),
      (error: unknown) =>
        port.postMessage({ kind: "error", id: request.id, error: serializeError(error) } satisfies WorkerReply),
    );
  });
  port.postMessage({ kind: "ready" } satisfies WorkerReply);
}

/**
 * The work invocations left running: the route table's in-process fan-out shards (a large broadcast's), which run
 * after the invocation that queued them has returned. Other handlers leave nothing the gateway knows of.
 */
async function drain(data: WorkerData): Promise<void> {
  if (!data.preload?.length) return;
  const { inProcessShardsIdle } = require("../chat/in-process-workers") as typeof import("../chat/in-process-workers");
  await inProcessShardsIdle();
}

/**
 * The result as Lambda's runtime passes it on: serialised to JSON. A result that cannot be (a cycle, a BigInt)
 * throws, which makes it the invocation's error, as on Lambda.
 */
function json(result: HandlerResult | undefined): { json?: string } {
  if (result === undefined || result === null) return {};
  return { json: JSON.stringify(result) };
}

main();
