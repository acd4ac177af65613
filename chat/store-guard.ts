/**
 * The connection store as one message invocation sees it: every call bounded in time, and, once the store has
 * failed slowly, failing at once for the rest of the invocation. So a sender hears back within about
 * {@link STORE_OP_TIMEOUT_MS} (plus one post) whatever the store does: answers, refuses, or hangs.
 *
 * Why here and not only in the clients: a route makes several store calls in a row (the rate-limit count, then its
 * own reads and writes), each bounded by its client (Redis `commandTimeout`, DynamoDB `requestTimeout` times
 * `maxAttempts`), so a hung store would cost the sender the sum. One failure that already cost time is enough to
 * know the store is unwell; the following calls reject with the same {@link StoreUnavailableError} at once, and
 * the pipeline answers `StoreUnavailable` (chat/pipeline.ts).
 *
 * A call the guard gave up on is not cancelled (the store contract has no cancellation): it may still complete in
 * the background, harmlessly, because every write a message route makes is idempotent (join, leave, add, remove).
 *
 * It is a Proxy rather than a class restating the contract, so a method added to the store contract later is
 * guarded without a change here: promises are raced against the timer, async iterables (listings) per page.
 */
import type { ConnectionStore } from "../contract/connection-store";

/** Longest wait for one store call (one page of a listing) in a message route. */
export const STORE_OP_TIMEOUT_MS = 1_000;
/** A failure that took at least this long opens the circuit: the store is slow, not merely refusing one call. */
const SLOW_FAILURE_MS = STORE_OP_TIMEOUT_MS / 2;

/** The store failed (or did not answer in time) during this invocation; `cause` is its own error, if any. */
export class StoreUnavailableError extends Error {
  override readonly name = "StoreUnavailableError";
  constructor(
    message: string,
    override readonly cause?: unknown,
  ) {
    super(message);
  }
}

/** Mistakes of the caller (a bad room name, a bad page size) say nothing about the store's health. */
function isCallerMistake(error: unknown): boolean {
  return error instanceof RangeError || error instanceof TypeError;
}

export interface StoreGuardOptions {
  readonly timeoutMs?: number;
  readonly now?: () => number;
}

/** `store`, bounded and with a per-invocation circuit (see the file's comment). */
export function guardStore(store: ConnectionStore, options: StoreGuardOptions = {}): ConnectionStore {
  const timeoutMs = options.timeoutMs ?? STORE_OP_TIMEOUT_MS;
  const now = options.now ?? Date.now;
  let broken: StoreUnavailableError | undefined;

  const bounded = <T>(what: string, start: () => Promise<T>): Promise<T> => {
    if (broken) return Promise.reject(broken);
    const started = now();
    let timer: NodeJS.Timeout | undefined;
    const timeout = new Promise<never>((_, reject) => {
      timer = setTimeout(() => {
        broken ??= new StoreUnavailableError(`the ${store.kind} store did not answer ${what} within ${timeoutMs} ms`);
        reject(broken);
      }, timeoutMs);
    });
    const call = start();
    // The call may settle after the timer has won; its outcome is then nobody's business.
    call.catch(() => undefined);
    return Promise.race([call, timeout]).then(
      (value) => {
        clearTimeout(timer);
        return value;
      },
      (error: unknown) => {
        clearTimeout(timer);
        if (error instanceof StoreUnavailableError || isCallerMistake(error)) throw error;
        const failure = new StoreUnavailableError(`the ${store.kind} store failed ${what}: ${describe(error)}`, error);
        if (now() - started >= SLOW_FAILURE_MS) broken ??= failure;
        throw failure;
      },
    );
  };

  async function* boundedPages<T>(what: string, source: AsyncIterable<T>): AsyncGenerator<T> {
    const iterator = source[Symbol.asyncIterator]();
    let pending = false;
    try {
      for (;;) {
        pending = true;
        const next = await bounded(what, () => iterator.next());
        pending = false;
        if (next.done) return;
        yield next.value;
      }
    } finally {
      // Closing an iterator whose `next()` is still running would wait for it: leave that one to finish alone.
      if (!pending) await iterator.return?.();
    }
  }

  return new Proxy(store, {
    get(target, property, receiver) {
      const value = Reflect.get(target, property, receiver);
      if (typeof value !== "function") return value;
      const what = String(property);
      return (...args: unknown[]) => {
        if (broken) return refusal(broken, () => boundedPages(what, emptyPages()));
        const result: unknown = value.apply(target, args);
        if (isPromise(result)) return bounded(what, () => result);
        if (isAsyncIterable(result)) return boundedPages(what, result);
        return result;
      };
    },
  });
}

/**
 * What a call gets once the circuit is open, without touching the store: a rejected promise that is also an async
 * iterable whose first page rejects. Which of the two a method returns is not known without calling it (a listing
 * is an iterable, everything else a promise), and a caller that gets the wrong kind would fail on the kind, not on
 * the store: a rejected promise iterated by `for await` is a TypeError, and the rejection itself is then never
 * handled (a crash of the process on Node's default `unhandledRejection` mode). The promise has a handler of its
 * own for the same reason: a caller that iterates never awaits it.
 */
function refusal(
  broken: StoreUnavailableError,
  pages: () => AsyncGenerator<never>,
): Promise<never> & AsyncIterable<never> {
  const rejected = Promise.reject(broken);
  rejected.catch(() => undefined);
  return Object.assign(rejected, { [Symbol.asyncIterator]: () => pages()[Symbol.asyncIterator]() });
}

/** A listing of nothing: with the circuit open, its first page rejects (in `bounded`). */
async function* emptyPages(): AsyncGenerator<never> {}

function isPromise(value: unknown): value is Promise<unknown> {
  return typeof (value as Promise<unknown> | undefined)?.then === "function";
}

function isAsyncIterable(value: unknown): value is AsyncIterable<unknown> {
  return typeof (value as AsyncIterable<unknown> | undefined)?.[Symbol.asyncIterator] === "function";
}

function describe(error: unknown): string {
  return error instanceof Error ? `${error.name}: ${error.message}` : String(error);
}
