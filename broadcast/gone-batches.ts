/**
 * Stale ids (the targets that answered 410), removed from the store in batches: in order, never more than one
 * `removeMany` in flight, so cleanup neither floods the store nor holds up the posts.
 */
import type { ConnectionStore, RemovedConnection } from "../contract/connection-store";
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
      this.sink.store.removeMany(batch).then(
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
