/**
 * Stale ids (the targets that answered 410), removed from the store in batches: in order, never more than one
 * `removeMany` in flight, so cleanup neither floods the store nor holds up the posts.
 *
 * A 410 is not always "gone": API Gateway also answers it while the target's `$connect` is still running. So the
 * removal spares records younger than CONNECT_GRACE_MS (`connectedBefore`, checked by the store atomically with the
 * removal): a client in its first seconds keeps its record and gets the next broadcast, and a connection that
 * really is gone is removed by the first 410 after the grace (docs/fan-out.md#connections-in-their-first-seconds).
 */
import { type ConnectionStore, goneCutoff, type RemovedConnection } from "../contract/connection-store";
import { type FanOutSummary, noteError } from "./fan-out-summary";

export interface GoneSink {
  /** Where stale ids are removed. */
  readonly store: Pick<ConnectionStore, "removeMany">;
  /** Told what each removal of stale ids removed. */
  readonly onRemoved?: (removed: RemovedConnection[]) => void;
}

export class GoneBatches {
  private batch: string[] = [];
  private removals: Promise<void> = Promise.resolve();
  private readonly batchSize: number;

  constructor(
    private readonly sink: GoneSink,
    batchSize: number,
    private readonly summary: FanOutSummary,
  ) {
    this.batchSize = Math.max(1, batchSize);
  }

  add(connectionId: string): void {
    this.batch.push(connectionId);
    if (this.batch.length >= this.batchSize) this.flush();
  }

  /** Removes the last, partial batch; resolves once every removal has settled. */
  finish(): Promise<void> {
    this.flush();
    return this.removals;
  }

  private flush(): void {
    if (this.batch.length === 0) return;
    const batch = this.batch;
    this.batch = [];
    this.removals = this.removals.then(() =>
      this.sink.store.removeMany(batch, goneCutoff()).then(
        (removed) => {
          try {
            this.sink.onRemoved?.(removed);
          } catch (error) {
            noteError(this.summary, error);
          }
        },
        (error: unknown) => {
          this.summary.cleanupFailed += batch.length;
          noteError(this.summary, error);
        },
      ),
    );
  }
}
