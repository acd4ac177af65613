/**
 * Sends that have not been acknowledged yet. Each carries the client's own `ref`; the server acknowledges a
 * send with that ref (`ack`) or answers an error frame carrying it. A send stays here, in order, across
 * reconnects, and is sent again with the SAME ref until it is acknowledged or refused: the server delivers a ref
 * once within its window, so a resend after a lost acknowledgement is not delivered twice.
 */
import type { AckFrame } from "../contract/frames";
import { ChatError } from "./chat-error";

/** The server's acknowledgement of a send (contract/frames.ts `AckFrame`, without its `type`). */
export type Ack = Omit<AckFrame, "type">;

interface Pending {
  readonly ref: string;
  readonly frame: Record<string, unknown>;
  readonly resolve: (ack: Ack) => void;
  readonly reject: (error: ChatError) => void;
  /** Not before this epoch ms (after a retryable refusal such as `RateLimited`). */
  notBefore: number;
}

export class Outbox {
  private readonly pending = new Map<string, Pending>();

  constructor(private readonly capacity: number) {}

  get size(): number {
    return this.pending.size;
  }

  /** Queues `frame` under `ref`; the promise settles on its ack or refusal. */
  add(ref: string, frame: Record<string, unknown>): Promise<Ack> {
    if (this.pending.size >= this.capacity) {
      return Promise.reject(
        new ChatError("QueueFull", `${this.capacity} sends are waiting for acknowledgement already.`, true),
      );
    }
    return new Promise<Ack>((resolve, reject) => {
      this.pending.set(ref, { ref, frame: { ...frame, ref }, resolve, reject, notBefore: 0 });
    });
  }

  /** The frames to send now, oldest first (all unacknowledged ones whose pause has passed). */
  due(now: number): Record<string, unknown>[] {
    return [...this.pending.values()].filter((p) => p.notBefore <= now).map((p) => p.frame);
  }

  /** The frame of one pending ref, to send it the first time. */
  frameOf(ref: string): Record<string, unknown> | undefined {
    return this.pending.get(ref)?.frame;
  }

  acknowledge(ack: Ack): boolean {
    const entry = this.pending.get(ack.ref);
    if (!entry) return false;
    this.pending.delete(ack.ref);
    entry.resolve(ack);
    return true;
  }

  /** A refusal for `ref`: a retryable one pauses it for `retryAfterMs`, any other fails it. */
  refuse(ref: string, error: ChatError, now: number, retryAfterMs?: number): boolean {
    const entry = this.pending.get(ref);
    if (!entry) return false;
    if (error.retryable) {
      entry.notBefore = now + (retryAfterMs ?? 1_000);
      return true;
    }
    this.pending.delete(ref);
    entry.reject(error);
    return true;
  }

  /** Fails every pending send (the client was closed for good). */
  failAll(error: ChatError): void {
    for (const entry of this.pending.values()) entry.reject(error);
    this.pending.clear();
  }
}
