/**
 * The route table's handlers loaded again for a hot reload (hot-reload.ts), with what a reload must carry over
 * or let go:
 *
 * - the memory store is the local database: when its module (or one it imports) is reloaded, the new store
 *   starts with every connection, attribute and room membership of the old one, copied through the store
 *   contract (rate-limit counters start again);
 * - when the container (app/container.ts) is reloaded, the next event builds new clients, like a cold start
 *   after a deploy; the old container's store client and keep-alive sockets are closed once the events it was
 *   serving are done, so a Redis connection does not leak per reload.
 */
import { join } from "node:path";
import type { ConnectionStore } from "../contract/connection-store";
import type { RouteDefinition } from "../contract/routes";
import type { AuthorizerHandler } from "./authorizer";
import { handlerStoreKind } from "./handler-env";
import type { CacheSnapshot } from "./module-graph";
import { loadRouteTableHandlers, type RouteHandlers } from "./route-handlers";

const ROOT = join(__dirname, "..");
const REGISTRY = join(ROOT, "app", "store-registry.ts");
const CONTAINER = join(ROOT, "app", "container.ts");
const MEMORY_FACTORY = join(ROOT, "app", "stores", "memory.ts");
const LOCAL_PROCESS = join(ROOT, "app", "local-process.ts");

/**
 * The container builds its store and fan-out stand-in from registries that app/local-process.ts fills (a store
 * factory module registers itself when imported), so it does not import them: when a registration is reloaded,
 * the container must be too, or it keeps the store it built from the old code.
 */
export function registryDependents(reloading: ReadonlySet<string>): string[] {
  return reloading.has(LOCAL_PROCESS) ? [CONTAINER] : [];
}

interface RegistryModule {
  storeFactoryOf(kind: "memory"): { create(env: unknown): ConnectionStore };
}

interface ContainerModule {
  containerDeps(): Promise<{ store: ConnectionStore; connections?: { close(): void } }>;
}

export interface ReloadedRouteTable {
  readonly handlers: RouteHandlers;
  readonly authorizer?: AuthorizerHandler;
  /**
   * To call once the previous handlers' events are over, if any of them ran (else the old container was never
   * built): releases what the previous container held.
   */
  readonly release: () => Promise<void>;
}

/** The memory store the given registry module hands out (the process's one instance). */
function memoryStoreOf(registry: unknown): ConnectionStore | undefined {
  try {
    return (registry as RegistryModule | undefined)?.storeFactoryOf("memory").create({});
  } catch {
    return undefined;
  }
}

/**
 * The memory store the route table's handlers in this thread use now, which handler worker threads share
 * (handler-pool.ts). Read once the route table is loaded, and again after each reload (the cache is then whole).
 */
export function currentMemoryStore(): ConnectionStore | undefined {
  return memoryStoreOf(require.cache[REGISTRY]?.exports);
}

/** The route table as its module is now: after a reload dropped contract/routes.ts, the edited one. */
export function currentRoutes(): readonly RouteDefinition[] {
  return (require(join(ROOT, "contract", "routes")) as typeof import("../contract/routes")).ROUTES;
}

/** Every live connection of `from`, with its attributes and rooms, into `to`. */
export async function copyStore(from: ConnectionStore, to: ConnectionStore): Promise<number> {
  let copied = 0;
  for await (const page of from.list({ pageSize: 500 })) {
    for (const id of page) {
      const record = await from.get(id);
      if (!record) continue;
      await to.add(record);
      for (const room of await from.roomsOf(id)) await to.join(id, room, Number.MAX_SAFE_INTEGER);
      copied++;
    }
  }
  return copied;
}

/**
 * Loads the route table (from a fresh contract/routes.ts when it was reloaded) and its handlers; the modules in
 * `reloading` are out of the cache, `previous` holds them as they were.
 */
export async function reloadRouteTable(
  reloading: ReadonlySet<string>,
  previous: CacheSnapshot,
  withAuthorizer: boolean,
  memoryInUse?: ConnectionStore,
): Promise<ReloadedRouteTable> {
  // Before anything loads: the store in use (the gateway knows it; else the old registry's) is what to copy. The
  // registry's may be a leftover of a reload that failed after registering a new factory.
  const keepMemory = handlerStoreKind() === "memory" && reloading.has(MEMORY_FACTORY);
  const oldMemory = keepMemory
    ? (memoryInUse ?? memoryStoreOf(previous.get(REGISTRY)?.exports ?? require.cache[REGISTRY]?.exports))
    : undefined;
  require(join(ROOT, "app", "local-process"));
  const { ROUTES, AUTHORIZER } = require(join(ROOT, "contract", "routes")) as typeof import("../contract/routes");
  const handlers = loadRouteTableHandlers(ROUTES);
  let authorizer: AuthorizerHandler | undefined;
  if (withAuthorizer) {
    const mod = require(join(ROOT, "handlers", AUTHORIZER.module)) as { handler?: unknown };
    if (typeof mod.handler !== "function") throw new Error(`handlers/${AUTHORIZER.module} does not export a handler`);
    authorizer = mod.handler as AuthorizerHandler;
  }
  if (oldMemory) {
    const newMemory = memoryStoreOf(require(REGISTRY));
    if (newMemory && newMemory !== oldMemory) await copyStore(oldMemory, newMemory);
  }
  const oldContainer = previous.get(CONTAINER)?.exports as ContainerModule | undefined;
  const release = async () => {
    if (!oldContainer) return;
    const deps = await oldContainer.containerDeps().catch(() => undefined);
    if (!deps) return;
    // The memory store may be the one the new container uses: its close() releases nothing.
    if (deps.store.kind !== "memory") await deps.store.close().catch(() => undefined);
    deps.connections?.close();
  };
  return { handlers, ...(authorizer ? { authorizer } : {}), release };
}
