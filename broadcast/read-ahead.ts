/** Iterating a listing one page ahead, so the next page is fetched while the current one is posted. */

/** Iterates `source` one item ahead: the next page is fetched while the current one is being posted. */
export async function* readAhead<T>(source: AsyncIterable<T>): AsyncGenerator<T> {
  const iterator = source[Symbol.asyncIterator]();
  let next = iterator.next();
  // A prefetch that fails while the consumer is busy must not count as an unhandled rejection.
  next.catch(() => {});
  let finished = false;
  try {
    for (;;) {
      const result = await next;
      if (result.done) {
        finished = true;
        return;
      }
      next = iterator.next();
      next.catch(() => {});
      yield result.value;
    }
  } finally {
    if (!finished) {
      // Stopped early: wait for the prefetch, then close the source (a generator queues return after next).
      await next.catch(() => undefined);
      await iterator.return?.()?.catch?.(() => undefined);
    }
  }
}
