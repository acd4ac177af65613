/**
 * One connection store shared across threads: the gateway's thread holds the store (the memory store is the local
 * database, and it lives in one thread's heap) and serves it on a MessagePort; a handler worker thread
 * (handler-pool.ts) gets a ConnectionStore whose every call crosses that port. Every call of the contract is
 * asynchronous already, so crossing a thread changes no semantics: arguments and results are plain data
 * (structured clone), a listing is pulled page by page as the caller iterates (the store's own iterator runs on
 * the serving side), and an error comes back with its name, message and own fields.
 */
import type { MessagePort } from "node:worker_threads";
import type { ConnectionStore, StoreKind } from "../contract/connection-store";

/** The contract's calls that answer one promise. */
const CALLS = [
  "add",
  "get",
  "remove",
  "removeMany",
  "join",
  "leave",
  "roomsOf",
  "countMessage",
  "appendHistory",
  "historyAfter",
  "historyBefore",
  "latestSeq",
  "claimSend",
  "settleSend",
  "touch",
  "claimUserSlot",
  "releaseUserSlot",
] as const satisfies readonly (keyof ConnectionStore)[];

/** The contract's listings (async iterables). */
const LISTINGS = ["list", "listByProtocol"] as const satisfies readonly (keyof ConnectionStore)[];

type Call = (typeof CALLS)[number];
type Listing = (typeof LISTINGS)[number];

/**
 * Every method of the contract must be bridged (or be `close`, which a client of a shared store must not pass on):
 * a method added to ConnectionStore and not listed here fails to compile.
 */
type Unbridged = Exclude<
  {
    [K in keyof ConnectionStore]: ConnectionStore[K] extends (...args: never[]) => unknown ? K : never;
  }[keyof ConnectionStore],
  Call | Listing | "close"
>;
const everyMethodBridged: [Unbridged] extends [never] ? true : Unbridged = true;
void everyMethodBridged;

type Request =
  | { readonly id: number; readonly op: "call"; readonly method: Call; readonly args: unknown[] }
  | { readonly id: number; readonly op: "open"; readonly method: Listing; readonly args: unknown[] }
  | { readonly id: number; readonly op: "next" | "return"; readonly listing: number };

/** A request before it is numbered. */
type Outgoing = Request extends infer R ? (R extends Request ? Omit<R, "id"> : never) : never;

type Reply =
  | { readonly id: number; readonly ok: true; readonly value: unknown }
  | { readonly id: number; readonly ok: false; readonly error: SerializedError };

/** An error as it crosses a thread: structured clone would keep only name and message of a custom error. */
export interface SerializedError {
  readonly name: string;
  readonly message: string;
  readonly stack?: string;
  /** Own fields of primitive value (`code`, `statusCode`, ...); others do not cross. */
  readonly fields: Record<string, unknown>;
  /** The error's `cause`, when it is an error: one level, enough for a wrapped client error. */
  readonly cause?: SerializedError;
}

export function serializeError(error: unknown, depth = 0): SerializedError {
  if (!(error instanceof Error)) return { name: "Error", message: String(error), fields: {} };
  const fields: Record<string, unknown> = {};
  for (const [key, value] of Object.entries(error)) {
    if (value === null || ["string", "number", "boolean"].includes(typeof value)) fields[key] = value;
  }
  const cause = depth === 0 && error.cause instanceof Error ? serializeError(error.cause, 1) : undefined;
  return {
    name: error.name,
    message: error.message,
    ...(error.stack ? { stack: error.stack } : {}),
    fields,
    ...(cause ? { cause } : {}),
  };
}

/** JavaScript's own error classes are revived as themselves (the contract throws RangeError on bad arguments). */
const BUILT_IN_ERRORS: Readonly<Record<string, ErrorConstructor>> = {
  Error,
  RangeError,
  TypeError,
  SyntaxError,
  ReferenceError,
  EvalError,
  URIError,
};

export function deserializeError(error: SerializedError): Error {
  const Kind = Object.hasOwn(BUILT_IN_ERRORS, error.name) ? BUILT_IN_ERRORS[error.name]! : Error;
  const revived = new Kind(error.message, error.cause ? { cause: deserializeError(error.cause) } : undefined);
  Object.assign(revived, error.fields);
  revived.name = error.name;
  if (error.stack) revived.stack = error.stack;
  return revived;
}

/**
 * Serves `store()` (read at every request: a hot reload may replace the memory store) on `port` until the port
 * closes. Listings stay open on this side until the client has pulled their last page or let them go.
 */
export function serveStore(
  port: MessagePort,
  store: () => ConnectionStore,
  listingIdleMs: number = LISTING_IDLE_MS,
): void {
  const listings = new Map<number, { iterator: AsyncIterator<unknown>; usedAt: number }>();
  let nextListing = 1;
  // A client that stops pulling a listing without `return()` (a caller that gave up on a slow page) would leave
  // it here for as long as the port lives: listings idle for `listingIdleMs` are let go at the next open.
  const expireIdle = (now: number) => {
    for (const [id, listing] of listings) {
      if (now - listing.usedAt < listingIdleMs) continue;
      listings.delete(id);
      void listing.iterator.return?.();
    }
  };
  const answer = async (request: Request): Promise<unknown> => {
    if (request.op === "call") {
      const method = store()[request.method] as (...args: unknown[]) => Promise<unknown>;
      return method.apply(store(), request.args);
    }
    if (request.op === "open") {
      const method = store()[request.method] as (...args: unknown[]) => AsyncIterable<unknown>;
      const now = Date.now();
      expireIdle(now);
      const listing = nextListing++;
      listings.set(listing, { iterator: method.apply(store(), request.args)[Symbol.asyncIterator](), usedAt: now });
      return listing;
    }
    const open = listings.get(request.listing);
    if (!open) return { done: true, value: undefined };
    open.usedAt = Date.now();
    const { iterator } = open;
    if (request.op === "return") {
      listings.delete(request.listing);
      await iterator.return?.();
      return { done: true, value: undefined };
    }
    try {
      const step = await iterator.next();
      if (step.done) listings.delete(request.listing);
      return { done: step.done === true, value: step.value };
    } catch (error) {
      listings.delete(request.listing);
      throw error;
    }
  };
  port.on("message", (request: Request) => {
    answer(request).then(
      (value) => port.postMessage({ id: request.id, ok: true, value } satisfies Reply),
      (error: unknown) => port.postMessage({ id: request.id, ok: false, error: serializeError(error) } satisfies Reply),
    );
  });
  port.on("close", () => {
    for (const { iterator } of listings.values()) void iterator.return?.();
    listings.clear();
  });
}

/** How long an open listing may go without a pull before the serving side lets it go. */
export const LISTING_IDLE_MS = 60_000;

/**
 * A ConnectionStore of kind `kind` whose calls are answered by {@link serveStore} at the other end of `port`.
 * `close()` closes the port (calls after it fail), not the store. The port does not keep the thread alive.
 */
export function bridgedStore(port: MessagePort, kind: StoreKind): ConnectionStore {
  const pending = new Map<number, { resolve: (value: unknown) => void; reject: (error: Error) => void }>();
  let nextId = 1;
  port.on("message", (reply: Reply) => {
    const waiter = pending.get(reply.id);
    if (!waiter) return;
    pending.delete(reply.id);
    if (reply.ok) waiter.resolve(reply.value);
    else waiter.reject(deserializeError(reply.error));
  });
  port.on("close", () => {
    for (const waiter of pending.values()) waiter.reject(new Error("the store's thread closed the bridge"));
    pending.clear();
  });
  port.unref();
  const request = (message: Outgoing): Promise<unknown> =>
    new Promise((resolve, reject) => {
      const id = nextId++;
      pending.set(id, { resolve, reject });
      port.postMessage({ ...message, id });
    });

  const listing = (method: Listing, args: unknown[]): AsyncIterable<unknown> => ({
    [Symbol.asyncIterator]() {
      let opened: Promise<number> | undefined;
      let finished = false;
      const open = () => (opened ??= request({ op: "open", method, args }) as Promise<number>);
      return {
        async next() {
          if (finished) return { done: true, value: undefined };
          const step = (await request({ op: "next", listing: await open() })) as IteratorResult<unknown>;
          if (step.done) finished = true;
          return step;
        },
        async return() {
          if (!finished && opened) {
            finished = true;
            await request({ op: "return", listing: await opened });
          }
          finished = true;
          return { done: true, value: undefined };
        },
      };
    },
  });

  // Closing the client closes the port, never the store: that belongs to the serving side.
  const store: Record<string, unknown> = { kind, close: async () => port.close() };
  for (const method of CALLS) store[method] = (...args: unknown[]) => request({ op: "call", method, args });
  for (const method of LISTINGS) store[method] = (...args: unknown[]) => listing(method, args);
  return store as unknown as ConnectionStore;
}
