/**
 * Where the client is in each room's order, so a reconnect resumes without a gap or a duplicate at the seam.
 *
 * A room's cursor is its watermark: the highest sequence such that every message up to it has been seen. Live
 * messages of concurrent senders can arrive out of order, so the watermark only moves over a contiguous run;
 * what was seen beyond it is remembered until the run closes. A rejoin asks for everything after the watermark;
 * until the server's `history` answer is complete, live messages of that room are held back, then shown with the
 * history in sequence order (the id check in the client drops what was already seen).
 */
import type { HistoryFrame, MessageEvent } from "./protocol";

interface Cursor {
  /** Every message up to here was seen; `undefined` until the first one. */
  watermark: number | undefined;
  /** Seen sequences above the watermark (out-of-order arrivals). */
  readonly ahead: Set<number>;
  /** Live messages held back while a resume is under way, and the history received so far. */
  resuming: { readonly live: MessageEvent[]; readonly history: MessageEvent[]; readonly since: number } | undefined;
}

export class RoomCursors {
  private readonly cursors = new Map<string, Cursor>();

  track(room: string): void {
    if (!this.cursors.has(room))
      this.cursors.set(room, { watermark: undefined, ahead: new Set(), resuming: undefined });
  }

  forget(room: string): void {
    this.cursors.delete(room);
  }

  rooms(): string[] {
    return [...this.cursors.keys()];
  }

  /** The sequence to resume `room` after, and hold its live messages until the history arrives; none on a first join. */
  beginResume(room: string): number | undefined {
    const cursor = this.cursors.get(room);
    if (!cursor || cursor.watermark === undefined) return undefined;
    cursor.resuming = { live: [], history: [], since: cursor.watermark };
    return cursor.watermark;
  }

  /** A live room message: what to show now (nothing while the room resumes). */
  offer(message: MessageEvent & { seq?: number }): MessageEvent[] {
    const cursor = message.room !== undefined ? this.cursors.get(message.room) : undefined;
    if (!cursor || message.seq === undefined) return [message];
    if (cursor.resuming) {
      cursor.resuming.live.push(message);
      return [];
    }
    this.advance(cursor, message.seq);
    return [message];
  }

  /**
   * A `history` answer to a resume: the messages to show, in order, and `gap` (the sequence resumed after) when the
   * history no longer reaches back that far. An answer in several frames shows everything once the last arrives.
   */
  resumed(frame: HistoryFrame): { messages: MessageEvent[]; gap?: number } {
    const cursor = this.cursors.get(frame.room);
    if (!cursor?.resuming) return { messages: frame.messages };
    cursor.resuming.history.push(...frame.messages);
    if (!frame.done) return { messages: [] };
    const { live, history, since } = cursor.resuming;
    cursor.resuming = undefined;
    const messages = [...history, ...live].sort((a, b) => (a.seq ?? 0) - (b.seq ?? 0));
    const reachesBack = frame.complete !== false;
    if (!reachesBack) {
      // What is missing is lost for this client: the watermark jumps to where the history starts.
      cursor.watermark = undefined;
      cursor.ahead.clear();
    }
    for (const message of messages) if (message.seq !== undefined) this.advance(cursor, message.seq);
    return reachesBack ? { messages } : { messages, gap: since };
  }

  /** The watermark of `room` (tests and the web client's status line). */
  watermarkOf(room: string): number | undefined {
    return this.cursors.get(room)?.watermark;
  }

  private advance(cursor: Cursor, seq: number): void {
    if (cursor.watermark === undefined) {
      cursor.watermark = seq;
    } else if (seq > cursor.watermark) {
      cursor.ahead.add(seq);
    }
    while (cursor.ahead.has((cursor.watermark ?? 0) + 1)) {
      cursor.watermark = (cursor.watermark ?? 0) + 1;
      cursor.ahead.delete(cursor.watermark);
    }
  }
}
