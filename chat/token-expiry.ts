/**
 * Tokens end connections. API Gateway checks the JWT once, at `$connect`, and then keeps the connection open for
 * up to 2 h whatever the token's `exp` says. The authorizer puts the token's `exp` in its context
 * (`tokenExpiresAt`, epoch seconds), which API Gateway hands, stringified, to every later event of the connection
 * (`requestContext.authorizer`) and which `$connect` stores with the connection (its `attributes`).
 *
 * A connection whose token has expired is told so with a `TokenExpired` error frame (what to do: reconnect with a
 * fresh token) and closed through `DELETE @connections` (API Gateway closes it with 1000 and runs `$disconnect`):
 * - at its next message, before the rate limit counts it ({@link enforceTokenExpiry}, admission.ts);
 * - by a scheduled sweep for the idle ones ({@link sweepExpiredTokens}: handlers/token-sweeper.ts deployed on a
 *   schedule, a timer in the local gateway).
 *
 * No clock tolerance here: the authorizer tolerates 5 s of skew between the issuer's clock and ours when it
 * accepts a token; once accepted, only our own clock tells when `exp` has passed.
 */
import { DEFAULT_PAGE_SIZE } from "../contract/connection-store";
import { errorFrame } from "../contract/frames";
import type { HandlerResult, WebSocketEvent } from "../runtime/event";
import type { Logger } from "../runtime/logger";
import { type HandlerDeps, requireConnections } from "./deps";
import { ANSWERED, FAULT } from "./reply";

/** The authorizer context key (handlers/authorizer.ts) and stored attribute that carry the token's `exp`. */
export const TOKEN_EXPIRES_AT = "tokenExpiresAt";

/** Epoch ms of a `tokenExpiresAt` value (epoch seconds, a number or its string); `undefined` when absent or bad. */
export function tokenExpiryMs(value: unknown): number | undefined {
  const seconds = typeof value === "number" ? value : typeof value === "string" ? Number(value) : Number.NaN;
  return Number.isFinite(seconds) && seconds > 0 ? seconds * 1000 : undefined;
}

/** The frame an expired connection gets before it is closed. */
export function tokenExpiredFrame(expiredAt: number): string {
  return errorFrame(
    "TokenExpired",
    "Your token has expired and this connection is closing. Reconnect with a fresh token.",
    { expiredAt, reconnect: true },
  );
}

export type TokenDecision =
  | { readonly kind: "valid" }
  | { readonly kind: "expired"; readonly expiredAt: number; readonly result: HandlerResult };

/** Stops a message of a connection whose token has expired: the sender hears `TokenExpired`, then is closed. */
export async function enforceTokenExpiry(
  event: WebSocketEvent,
  deps: HandlerDeps,
  log: Logger,
  now: number = Date.now(),
): Promise<TokenDecision> {
  const expiredAt = tokenExpiryMs(event.requestContext.authorizer?.[TOKEN_EXPIRES_AT]);
  if (expiredAt === undefined || expiredAt > now) return { kind: "valid" };
  const closed = await closeExpired(deps, log, event.requestContext.connectionId, expiredAt);
  return { kind: "expired", expiredAt, result: closed === "failed" ? FAULT : ANSWERED };
}

/** Tells the connection its token expired, then closes it. `failed`: the close itself failed (ours). */
async function closeExpired(
  deps: HandlerDeps,
  log: Logger,
  connectionId: string,
  expiredAt: number,
): Promise<"closed" | "gone" | "failed"> {
  const connections = requireConnections(deps);
  const posted = await connections.post(connectionId, tokenExpiredFrame(expiredAt));
  try {
    const closed = posted.kind !== "gone" && (await connections.disconnect(connectionId));
    log.info("closed: token expired", {
      outcome: closed ? "closed" : "already-gone",
      connectionId,
      expiredAt,
      frame: posted.kind,
    });
    return closed ? "closed" : "gone";
  } catch (error) {
    log.error("could not close a connection whose token expired", { outcome: "error", connectionId, error });
    return "failed";
  }
}

/** What one sweep did. */
export interface SweepSummary {
  /** Live connections looked at. */
  readonly scanned: number;
  /** Of them, those whose token had expired. */
  readonly expired: number;
  readonly closed: number;
  /** Already gone when closed (their records go with the next broadcast's 410 or their own expiry). */
  readonly gone: number;
  readonly failed: number;
  /** `false` when the sweep stopped at its deadline before the end of the listing (the next sweep starts over). */
  readonly complete: boolean;
}

/** Records read at once while sweeping (GetItem / HGETALL per connection). */
const SWEEP_CONCURRENCY = 16;

/**
 * Closes every live connection whose stored `tokenExpiresAt` has passed: the idle ones, which send nothing that
 * {@link enforceTokenExpiry} could stop. Lists the store page by page (memory bounded by the page size) and reads
 * each connection's record for its attributes. Failures are counted, never thrown: the next sweep retries them.
 */
export async function sweepExpiredTokens(
  deps: HandlerDeps,
  log: Logger,
  now: number = Date.now(),
  deadline: number = Number.POSITIVE_INFINITY,
): Promise<SweepSummary> {
  let scanned = 0;
  let expired = 0;
  let closed = 0;
  let gone = 0;
  let failed = 0;
  // Stops at the deadline rather than being cut off by Lambda's timeout: the summary line (and `complete: false`)
  // is then still written, and the next sweep starts over from the beginning of the listing.
  const listing = deps.store.list({ pageSize: DEFAULT_PAGE_SIZE })[Symbol.asyncIterator]();
  for (;;) {
    if (Date.now() >= deadline) {
      await listing.return?.();
      return { scanned, expired, closed, gone, failed, complete: false };
    }
    const next = await listing.next();
    if (next.done) break;
    const page = next.value;
    scanned += page.length;
    for (let i = 0; i < page.length; i += SWEEP_CONCURRENCY) {
      await Promise.all(
        page.slice(i, i + SWEEP_CONCURRENCY).map(async (connectionId) => {
          let expiredAt: number | undefined;
          try {
            const record = await deps.store.get(connectionId);
            expiredAt = tokenExpiryMs(record?.attributes?.[TOKEN_EXPIRES_AT]);
          } catch (error) {
            log.warn("sweep could not read a connection", { outcome: "error", connectionId, error });
            failed++;
            return;
          }
          if (expiredAt === undefined || expiredAt > now) return;
          expired++;
          const outcome = await closeExpired(deps, log, connectionId, expiredAt);
          if (outcome === "closed") closed++;
          else if (outcome === "gone") gone++;
          else failed++;
        }),
      );
    }
  }
  return { scanned, expired, closed, gone, failed, complete: true };
}
