/**
 * Broadcast fan-out: one message in, N posts out. Pages of connection ids are consumed as the store yields
 * them and posts start before the listing ends; at most `concurrency` posts are in flight, so memory is
 * bounded by the window and the page size, never by N. Stale (410) targets are removed from the store in
 * batches; one failed post never aborts the others.
 */
import type { ConnectionStore } from "../stores/connection-store";
import type { PostOutcome } from "./runtime/connections-api";

export interface FanOutOptions {
  /** Ids to post to, as pages (usually `store.list()`). */
  readonly targets: AsyncIterable<readonly string[]>;
  /** Posts to one connection; must not throw. */
  readonly post: (connectionId: string) => Promise<PostOutcome>;
  /** Where stale ids are removed. */
  readonly store: Pick<ConnectionStore, "removeMany">;
  /** Maximum posts in flight. */
  readonly concurrency?: number;
  /** Stale ids removed per `removeMany` call. */
  readonly goneBatchSize?: number;
}

export interface FanOutSummary {
  /** Targets listed. */
  targets: number;
  delivered: number;
  /** Targets that answered 410 and were removed from the store. */
  gone: number;
  /** Targets that answered 413. */
  tooLarge: number;
  /** Targets that still failed after retries (or timed out). */
  failed: number;
  /** Extra attempts spent on throttling / 5xx / timeouts. */
  retried: number;
  /** Stale ids whose removal from the store failed (they will be retried by the next broadcast's 410). */
  cleanupFailed: number;
  durationMs: number;
}

export const DEFAULT_FAN_OUT_CONCURRENCY = 64;
const DEFAULT_GONE_BATCH = 100;

export async function fanOut(options: FanOutOptions): Promise<FanOutSummary> {
  const concurrency = Math.max(1, options.concurrency ?? DEFAULT_FAN_OUT_CONCURRENCY);
  const goneBatchSize = Math.max(1, options.goneBatchSize ?? DEFAULT_GONE_BATCH);
  const started = Date.now();
  const summary: FanOutSummary = {
    targets: 0,
    delivered: 0,
    gone: 0,
    tooLarge: 0,
    failed: 0,
    retried: 0,
    cleanupFailed: 0,
    durationMs: 0,
  };

  let goneBuffer: string[] = [];
  const cleanups: Promise<void>[] = [];
  const flushGone = () => {
    if (goneBuffer.length === 0) return;
    const batch = goneBuffer;
    goneBuffer = [];
    cleanups.push(
      options.store.removeMany(batch).catch(() => {
        summary.cleanupFailed += batch.length;
      }),
    );
  };

  const inFlight = new Set<Promise<void>>();
  const postOne = async (connectionId: string) => {
    let outcome: PostOutcome;
    try {
      outcome = await options.post(connectionId);
    } catch (error) {
      outcome = { kind: "failed", attempts: 1, error };
    }
    summary.retried += outcome.attempts - 1;
    switch (outcome.kind) {
      case "delivered":
        summary.delivered++;
        break;
      case "gone":
        summary.gone++;
        goneBuffer.push(connectionId);
        if (goneBuffer.length >= goneBatchSize) flushGone();
        break;
      case "too-large":
        summary.tooLarge++;
        break;
      case "failed":
        summary.failed++;
        break;
    }
  };

  for await (const page of options.targets) {
    for (const connectionId of page) {
      summary.targets++;
      const task: Promise<void> = postOne(connectionId).finally(() => inFlight.delete(task));
      inFlight.add(task);
      if (inFlight.size >= concurrency) await Promise.race(inFlight);
    }
  }
  await Promise.all(inFlight);
  flushGone();
  await Promise.all(cleanups);
  summary.durationMs = Date.now() - started;
  return summary;
}
