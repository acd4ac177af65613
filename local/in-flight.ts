/**
 * Work the gateway has started and must see finish before it stops (handler invocations, handshakes whose
 * `$connect` is running). Each entry removes itself when it settles.
 */
export class InFlight {
  private readonly running = new Set<Promise<unknown>>();

  get size(): number {
    return this.running.size;
  }

  /** Tracks `promise` until it settles; its rejection is swallowed (callers handle their own errors). */
  track(promise: Promise<unknown>): void {
    const tracked: Promise<unknown> = promise.catch(() => undefined).finally(() => this.running.delete(tracked));
    this.running.add(tracked);
  }

  /** Resolves once everything tracked now has settled. */
  async settled(): Promise<void> {
    await Promise.allSettled([...this.running]);
  }

  /** Resolves once nothing is tracked, including work started meanwhile. */
  async drained(): Promise<void> {
    while (this.running.size > 0) await Promise.allSettled([...this.running]);
  }
}
