/**
 * The room requests the client itself waits on: a join (answered by `members`, and by a `history` page when it
 * resumes with `after`), the next page of a resume, a gap repair, and the latest-seq probe of a first join. Each
 * room has at most one at a time. A request whose answer does not come within the timeout (an invocation that
 * failed with API Gateway's own "Internal server error" frame, which names no room; a post that was lost) is sent
 * again, and so is one refused with a retryable error; without that a room would wait for history for ever,
 * holding its live messages back.
 *
 * A request sent twice may be answered twice: every `history` page owed to a request of ours is counted, so a late
 * second answer is recognised as ours and never shown as a page the application asked for.
 */
import type { ClientFrame } from "./protocol";

/** What answers a request: `members` (a join without `after`) or a `history` page (the others). */
export type Answer = "members" | "history";

export interface RoomRequest {
  readonly frame: ClientFrame;
  readonly answer: Answer;
}

interface Pending extends RoomRequest {
  /** Cancels its timeout. */
  cancel: () => void;
}

export interface RequestIo {
  write(frame: ClientFrame): void;
  /** Runs `run` after `ms` unless the returned function is called first (and never once the connection is lost). */
  schedule(ms: number, run: () => void): () => void;
}

export class RoomRequests {
  private readonly pending = new Map<string, Pending>();
  private readonly owed = new Map<string, number>();

  constructor(
    private readonly io: RequestIo,
    private readonly timeoutMs: number,
  ) {}

  /** Sends `frame` for `room` (replacing what the room waited on) and waits for its answer. */
  ask(room: string, frame: ClientFrame, answer: Answer): void {
    this.pending.get(room)?.cancel();
    const entry: Pending = { frame, answer, cancel: () => {} };
    this.pending.set(room, entry);
    this.send(room, entry);
  }

  /** The request `room` waits on, if any. */
  of(room: string): RoomRequest | undefined {
    return this.pending.get(room);
  }

  /** `members` of `room` came: it answers a join without `after`. */
  members(room: string): void {
    if (this.pending.get(room)?.answer === "members") this.settle(room);
  }

  /**
   * A `history` page of `room` came: `true` when it answers a request of ours (a join with `after`, a page we
   * asked for, or the late second answer of one sent twice), `false` for a page the application asked for.
   */
  history(room: string): boolean {
    const owed = this.owed.get(room) ?? 0;
    if (owed === 0) return false;
    this.setOwed(room, owed - 1);
    if (this.pending.get(room)?.answer === "history") this.settle(room);
    return true;
  }

  /**
   * `room`'s request was refused: a retryable refusal sends it again after `retryAfterMs`. Returns the refused
   * request (the caller decides what a final refusal means), or `undefined` when the room waited on nothing.
   */
  refused(room: string, retryable: boolean, retryAfterMs = 1_000): RoomRequest | undefined {
    const entry = this.pending.get(room);
    if (!entry) return undefined;
    // The refusal is the answer: no page follows it.
    if (entry.answer === "history") this.setOwed(room, (this.owed.get(room) ?? 1) - 1);
    entry.cancel();
    if (retryable) {
      entry.cancel = this.io.schedule(retryAfterMs, () => {
        if (this.pending.get(room) === entry) this.send(room, entry);
      });
    } else {
      this.pending.delete(room);
    }
    return entry;
  }

  /** A retryable refusal that names no room (nor a send): it may answer any request, so each is sent again. */
  refusedAll(retryAfterMs = 1_000): void {
    for (const room of [...this.pending.keys()]) this.refused(room, true, retryAfterMs);
  }

  /** Forgets `room`'s request (the room was left or given up). */
  drop(room: string): void {
    this.pending.get(room)?.cancel();
    this.pending.delete(room);
  }

  /** The connection went: nothing in flight will be answered; the next connection asks again. */
  clear(): void {
    for (const entry of this.pending.values()) entry.cancel();
    this.pending.clear();
    this.owed.clear();
  }

  private send(room: string, entry: Pending): void {
    if (entry.answer === "history") this.setOwed(room, (this.owed.get(room) ?? 0) + 1);
    this.io.write(entry.frame);
    entry.cancel = this.io.schedule(this.timeoutMs, () => {
      if (this.pending.get(room) === entry) this.send(room, entry);
    });
  }

  private settle(room: string): void {
    this.pending.get(room)?.cancel();
    this.pending.delete(room);
  }

  private setOwed(room: string, n: number): void {
    if (n > 0) this.owed.set(room, n);
    else this.owed.delete(room);
  }
}
