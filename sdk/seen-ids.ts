/**
 * The ids of the messages a client has shown, so a message delivered twice (broadcasts are at least once; a resume
 * replays what may have arrived live) is shown once. Bounded: the oldest ids are forgotten first, and a duplicate
 * arrives within seconds of its original, never thousands of messages later.
 */
export class SeenIds {
  private readonly ids = new Set<string>();

  constructor(private readonly capacity = 10_000) {}

  /** `true` the first time `id` is offered, `false` for a repeat. */
  admit(id: string): boolean {
    if (this.ids.has(id)) return false;
    this.ids.add(id);
    if (this.ids.size > this.capacity) {
      // A Set iterates in insertion order: the first value is the oldest.
      const oldest = this.ids.values().next().value as string;
      this.ids.delete(oldest);
    }
    return true;
  }

  get size(): number {
    return this.ids.size;
  }
}
