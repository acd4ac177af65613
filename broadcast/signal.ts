/**
 * A wake-up call between coroutines: `notify()` wakes every waiter, and each waiter re-checks its own condition
 * in a loop (so a wake-up that changes nothing for it is harmless).
 */
export class Signal {
  private waiters: (() => void)[] = [];

  wait(): Promise<void> {
    return new Promise((resolve) => this.waiters.push(resolve));
  }

  notify(): void {
    const waiters = this.waiters;
    this.waiters = [];
    for (const w of waiters) w();
  }
}
