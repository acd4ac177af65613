/**
 * One page of a listing, retried. A listing is a loop over pages with its cursor in the loop; a page request that
 * fails (Redis restarting, a DynamoDB 5xx past the SDK's own retries, a dropped socket) would otherwise end the
 * whole listing, and with it the broadcast's audience. Retrying the page from the same cursor loses and repeats
 * nothing. Bounded: a few attempts with full-jitter backoff (about 3 s in all at most), and the broadcast's
 * router has its own deadline (broadcast/splitter.ts) whatever a store does. A page that timed out is tried once
 * more only: that rides out a pause (a failover, a blocked server), while a store that does not answer at all
 * still fails the listing within about two of its own timeouts, not four.
 */

/** Attempts per page, the first included. */
export const PAGE_ATTEMPTS = 4;
const BASE_MS = 200;
const CAP_MS = 1_500;

/** `fetch` (one page request), retried on any error up to {@link PAGE_ATTEMPTS} times in all. */
export async function retryPage<T>(fetch: () => Promise<T>, attempts = PAGE_ATTEMPTS): Promise<T> {
  let timeouts = 0;
  for (let attempt = 1; ; attempt++) {
    try {
      return await fetch();
    } catch (error) {
      // A bad argument fails the same way every time.
      if (attempt >= attempts || error instanceof RangeError || error instanceof TypeError) throw error;
      if (isTimeout(error) && ++timeouts > 1) throw error;
      const cap = Math.min(CAP_MS, BASE_MS * 2 ** (attempt - 1));
      await new Promise((resolve) => setTimeout(resolve, cap / 2 + (Math.random() * cap) / 2));
    }
  }
}

/** ioredis' "Command timed out", the AWS SDK's `TimeoutError` / `RequestTimeout`, a socket timeout. */
function isTimeout(error: unknown): boolean {
  const { name = "", message = "" } = (error ?? {}) as { name?: string; message?: string };
  return /time(d)?\s?out/i.test(`${name} ${message}`);
}
