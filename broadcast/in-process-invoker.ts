/**
 * Runs fan-out shards in this process, like Lambda runs queued async events, so the local gateway and the tests,
 * which load the route handlers in-process, need no Lambda at all.
 */
import type { FanOutShardEvent, InvokeWorker } from "./shard-format";

/**
 * Runs shards in this process, like Lambda runs queued async events: the shard runs later, at most `parallelism`
 * at a time. Unlike Lambda's queue this one is bounded (`parallelism` running plus as many waiting): `invoke`
 * resolves only once the shard has a place, so a huge local broadcast holds a few shards in memory, not all.
 * `idle()` resolves when every accepted shard has run (tests, bench).
 */
export class InProcessInvoker {
  private readonly queue: FanOutShardEvent[] = [];
  private running = 0;
  private idleWaiters: (() => void)[] = [];
  private spaceWaiters: (() => void)[] = [];

  constructor(
    private readonly run: (event: FanOutShardEvent) => Promise<unknown>,
    private readonly parallelism = 1,
  ) {}

  readonly invoke: InvokeWorker = async (event: FanOutShardEvent): Promise<void> => {
    while (this.queue.length >= this.parallelism) await new Promise<void>((resolve) => this.spaceWaiters.push(resolve));
    // The event crosses a process boundary on AWS: copy it, so nothing is shared with the caller.
    this.queue.push(JSON.parse(JSON.stringify(event)) as FanOutShardEvent);
    setImmediate(() => this.pump());
  };

  /** Shards accepted and not finished. */
  get pending(): number {
    return this.queue.length + this.running;
  }

  idle(): Promise<void> {
    if (this.pending === 0) return Promise.resolve();
    return new Promise((resolve) => this.idleWaiters.push(resolve));
  }

  private pump(): void {
    while (this.running < this.parallelism && this.queue.length > 0) {
      const event = this.queue.shift()!;
      this.running++;
      const space = this.spaceWaiters.shift();
      space?.();
      void this.run(event)
        .catch(() => undefined)
        .finally(() => {
          this.running--;
          this.pump();
          if (this.pending === 0) {
            const waiters = this.idleWaiters;
            this.idleWaiters = [];
            for (const w of waiters) w();
          }
        });
    }
  }
}
