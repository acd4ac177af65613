/**
 * Where the client is in each room's order, so a reconnect resumes without a gap or a duplicate at the seam.
 *
 * A room's cursor is its watermark: the highest sequence such that every message up to it has been seen. Live
 * messages of concurrent senders can arrive out of order, so the watermark only moves over a contiguous run;
 * what was seen beyond it is remembered until the run closes. A rejoin sends `join` with `after` = the watermark;
 * the server answers one `history` page, and while a page says `more` the client asks `history` with `after` = the
 * page's last seq. Until the last page, live messages of that room are held back, then shown with the history in
 * sequence order, each seq once (a message can be both in a page and live at the seam: docs/history.md).
 */
import type { HistoryFrame, MessageFrame } from "./protocol";

interface Resume {
  readonly live: MessageFrame[];
  readonly history: MessageFrame[];
  readonly after: number;
  /** Every page so far reached back to what it was asked for. */
  complete: boolean;
}

interface Cursor {
  /** Every message up to here was seen; `undefined` until the first one. */
  watermark: number | undefined;
  /** Seen sequences above the watermark (out-of-order arrivals). */
  readonly ahead: Set<number>;
  /** Live messages held back while a resume is under way, and the history received so far. */
  resuming: Resume | undefined;
}

/** What a `history` page of a resume leads to. */
export type ResumeStep =
  /** More pages: ask `history` with `after`; show nothing yet. */
  | { readonly kind: "more"; readonly after: number }
  /** Done: show `messages` in order; `gap` (the seq resumed after) when history no longer reached back that far. */
  | { readonly kind: "done"; readonly messages: MessageFrame[]; readonly gap?: number };

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
    cursor.resuming = { live: [], history: [], after: cursor.watermark, complete: true };
    return cursor.watermark;
  }

  /** Whether `room` is waiting for its resume's history. */
  isResuming(room: string): boolean {
    return this.cursors.get(room)?.resuming !== undefined;
  }

  /** A live room message: what to show now (nothing while the room resumes, nothing for a seq already seen). */
  offer(message: MessageFrame): MessageFrame[] {
    const cursor = this.cursors.get(message.room);
    if (!cursor) return [message];
    if (cursor.resuming) {
      cursor.resuming.live.push(message);
      return [];
    }
    if (this.seenSeq(cursor, message.seq)) return [];
    this.advance(cursor, message.seq);
    return [message];
  }

  /**
   * A `history` page. During a resume: the next step (ask for more, or show everything in order). Otherwise (a
   * page the application asked for) its messages as they are.
   */
  resumed(frame: HistoryFrame): ResumeStep {
    const cursor = this.cursors.get(frame.room);
    if (!cursor?.resuming) return { kind: "done", messages: [...frame.messages] };
    const resume = cursor.resuming;
    resume.history.push(...frame.messages);
    if (frame.complete === false) resume.complete = false;
    const last = frame.messages.at(-1)?.seq;
    if (frame.more && last !== undefined) return { kind: "more", after: last };
    cursor.resuming = undefined;
    const bySeq = new Map<number, MessageFrame>();
    for (const message of [...resume.history, ...resume.live])
      if (!bySeq.has(message.seq)) bySeq.set(message.seq, message);
    if (!resume.complete) {
      // What is missing is lost for this client: the watermark jumps to where the history starts.
      cursor.watermark = undefined;
      cursor.ahead.clear();
    }
    const messages = [...bySeq.values()].filter((m) => !this.seenSeq(cursor, m.seq)).sort((a, b) => a.seq - b.seq);
    for (const message of messages) this.advance(cursor, message.seq);
    return resume.complete ? { kind: "done", messages } : { kind: "done", messages, gap: resume.after };
  }

  /** The watermark of `room` (tests and the web client's status line). */
  watermarkOf(room: string): number | undefined {
    return this.cursors.get(room)?.watermark;
  }

  private seenSeq(cursor: Cursor, seq: number): boolean {
    return (cursor.watermark !== undefined && seq <= cursor.watermark) || cursor.ahead.has(seq);
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
