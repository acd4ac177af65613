/**
 * Runs fan-out shards in this process, like the worker Lambda runs queued shards, so the local gateway and the
 * tests, which load the route handlers in-process, need no AWS at all. Like the SQS shard queue it keeps what
 * fails: a shard can be queued again after a delay (`requeue`), and one that failed on every try is kept in a
 * dead-letter list (`deadLetters`) that can be redriven (`redrive`), never dropped.
 */
import type { FanOutShardEvent, InvokeOptions, InvokeWorker } from "./shard-format";

/**
 * Runs shards in this process: the shard runs later, at most `parallelism` at a time. Unlike SQS this queue is
 * bounded (`parallelism` running plus as many waiting): `invoke` resolves only once the shard has a place, so a
 * huge local broadcast holds a few shards in memory, not all. `idle()` resolves when every accepted shard has run,
 * re-queued ones included (tests, bench).
 */
export class InProcessInvoker {
  private readonly queue: FanOutShardEvent[] = [];
  private running = 0;
  private delayed = 0;
  private idleWaiters: (() => void)[] = [];
  private spaceWaiters: (() => void)[] = [];
  /** Shards that failed on every try, oldest first: shown and redriven by whoever runs the process. */
  readonly deadLetters: FanOutShardEvent[] = [];

  /**
   * @param run posts one shard; it queues failed ids itself (`requeue`, `deadLetter`). A throw dead-letters the shard.
   * @param delayScale multiplies re-queue delays (tests compress time with it).
   */
  constructor(
    private readonly run: (event: FanOutShardEvent) => Promise<unknown>,
    private readonly parallelism = 1,
    private readonly delayScale = 1,
  ) {}

  readonly invoke: InvokeWorker = async (event: FanOutShardEvent, options?: InvokeOptions): Promise<void> => {
    if (options?.delaySeconds) return this.requeue(event, options.delaySeconds);
    while (this.queue.length >= this.parallelism) await new Promise<void>((resolve) => this.spaceWaiters.push(resolve));
    this.accept(event);
  };

  /**
   * Queues a shard again after `delaySeconds`, past the bound (a running shard re-queues its failed ids and must
   * not wait for a place its own run holds).
   */
  requeue(event: FanOutShardEvent, delaySeconds: number): void {
    this.delayed++;
    setTimeout(
      () => {
        this.delayed--;
        this.accept(event);
      },
      delaySeconds * 1000 * this.delayScale,
    ).unref?.();
  }

  /** Keeps a shard that failed on every try. */
  deadLetter(event: FanOutShardEvent): void {
    this.deadLetters.push(copy(event));
  }

  /** Moves every dead-lettered shard back to the queue (the local counterpart of an SQS DLQ redrive). */
  redrive(): number {
    const shards = this.deadLetters.splice(0);
    for (const event of shards) this.accept(event);
    return shards.length;
  }

  /** Shards accepted and not finished (waiting, running, or waiting out a re-queue delay). */
  get pending(): number {
    return this.queue.length + this.running + this.delayed;
  }

  idle(): Promise<void> {
    if (this.pending === 0) return Promise.resolve();
    return new Promise((resolve) => this.idleWaiters.push(resolve));
  }

  private accept(event: FanOutShardEvent): void {
    // The event crosses a process boundary on AWS: copy it, so nothing is shared with the caller.
    this.queue.push(copy(event));
    setImmediate(() => this.pump());
  }

  private pump(): void {
    while (this.running < this.parallelism && this.queue.length > 0) {
      const event = this.queue.shift()!;
      this.running++;
      const space = this.spaceWaiters.shift();
      space?.();
      void this.run(event)
        .catch(() => this.deadLetter(event))
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

function copy(event: FanOutShardEvent): FanOutShardEvent {
  return JSON.parse(JSON.stringify(event)) as FanOutShardEvent;
}
