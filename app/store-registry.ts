/**
 * Which stores this process can build, and how. A store's factory module (app/stores/<store>.ts) registers itself
 * when imported, so what a process can build is exactly what its entry imports: a Lambda bundle is built from its
 * handler plus one store's factory (infra/bundle.ts), and carries that store's client only; the local gateway and
 * tests import every store (store-from-env.ts).
 */
import type { ConnectionStore, StoreKind } from "../contract/connection-store";
import type { RuntimeEnv } from "../contract/env";

export interface StoreFactory {
  /**
   * Fills in what the store needs before its client is built, e.g. the Redis AUTH token from Secrets Manager; the
   * container calls it once, at cold start. Absent: the environment is used as read.
   */
  readonly prepare?: (env: RuntimeEnv) => Promise<RuntimeEnv>;
  /** A new store client (memory: the process's one store). */
  readonly create: (env: RuntimeEnv) => ConnectionStore;
}

const factories = new Map<StoreKind, StoreFactory>();

/** Called by each factory module (app/stores/) when it is imported. */
export function registerStore(kind: StoreKind, factory: StoreFactory): void {
  factories.set(kind, factory);
}

/** The factory of `kind`; a kind this process was not built with is a deploy mix-up, said plainly. */
export function storeFactoryOf(
  kind: StoreKind,
  registered: ReadonlyMap<StoreKind, StoreFactory> = factories,
): StoreFactory {
  const factory = registered.get(kind);
  if (factory) return factory;
  if (registered.size === 0) {
    throw new Error(`createStore: no store is registered (STORE is ${kind}); import a factory from app/stores/`);
  }
  throw new Error(
    `createStore: this function was bundled for the ${[...registered.keys()].join(" and ")} store, but STORE is ${kind}`,
  );
}

/** The store `env.store` names, from the environment as given (secrets already resolved, if any). */
export function createStore(env: RuntimeEnv): ConnectionStore {
  return storeFactoryOf(env.store).create(env);
}
