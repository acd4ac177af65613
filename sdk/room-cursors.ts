/**
 * Where the client is in each room's order, so messages are shown once and in order, and a reconnect resumes
 * without a gap or a duplicate at the seam.
 *
 * A room's cursor is its watermark: the highest sequence such that every message up to it has been shown. Live
 * messages of concurrent senders can arrive out of order (two invocations fan out at once), so a message beyond
 * watermark + 1 is held until the run closes and shown then, in order; if the run stays open (a message a
 * broadcast missed, or DynamoDB's eventually consistent room index), the client asks `history` with `after` = the
 * watermark for the gap ({@link RoomCursors.beginRepair}). The first message after a first join sets the watermark.
 *
 * A rejoin sends `join` with `after` = the watermark; the server answers one `history` page, and while a page says
 * `more` the client asks `history` with `after` = the page's last seq. Until the last page, live messages of that
 * room are held back, then shown with the history in sequence order, each seq once (a message can be both in a
 * page and live at the seam: docs/history.md).
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
  /** Every message up to here was shown; `undefined` until the first one. */
  watermark: number | undefined;
  /** Messages above watermark + 1 (out-of-order arrivals), held until the run closes. */
  readonly held: Map<number, MessageFrame>;
  /** Live messages held back while a resume (or a gap repair) is under way, and the history received so far. */
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
    if (!this.cursors.has(room)) this.cursors.set(room, { watermark: undefined, held: new Map(), resuming: undefined });
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

  /** Whether `room` holds messages beyond a gap (and is not already asking for it). */
  hasGap(room: string): boolean {
    const cursor = this.cursors.get(room);
    return cursor !== undefined && cursor.resuming === undefined && cursor.held.size > 0;
  }

  /** Starts filling `room`'s gap: the `after` to ask `history` with; live messages are held until it is done. */
  beginRepair(room: string): number | undefined {
    return this.hasGap(room) ? this.beginResume(room) : undefined;
  }

  /** Whether `room` is waiting for history. */
  isResuming(room: string): boolean {
    return this.cursors.get(room)?.resuming !== undefined;
  }

  /** A live room message: what to show now, in order (nothing while the room resumes or waits for a gap). */
  offer(message: MessageFrame): MessageFrame[] {
    const cursor = this.cursors.get(message.room);
    if (!cursor) return [message];
    if (cursor.resuming) {
      cursor.resuming.live.push(message);
      return [];
    }
    if (cursor.watermark === undefined) {
      cursor.watermark = message.seq;
      return [message];
    }
    if (this.seenSeq(cursor, message.seq)) return [];
    cursor.held.set(message.seq, message);
    return this.drain(cursor);
  }

  /**
   * A `history` page. During a resume or a repair: the next step (ask for more, or show everything in order).
   * Otherwise (a page the application asked for) its messages as they are.
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
    for (const message of [...resume.history, ...resume.live])
      if (!this.seenSeq(cursor, message.seq)) cursor.held.set(message.seq, message);
    // What history no longer has is lost for this client: the watermark steps to where what is left starts. A
    // seq the history cannot give either (an append that never got its entry) is stepped over the same way, rather
    // than holding the room for ever.
    const first = Math.min(...cursor.held.keys());
    if (Number.isFinite(first) && first > (cursor.watermark ?? 0) + 1) cursor.watermark = first - 1;
    const messages = this.drain(cursor);
    return resume.complete ? { kind: "done", messages } : { kind: "done", messages, gap: resume.after };
  }

  /** The watermark of `room` (tests and the web client's status line). */
  watermarkOf(room: string): number | undefined {
    return this.cursors.get(room)?.watermark;
  }

  private seenSeq(cursor: Cursor, seq: number): boolean {
    return (cursor.watermark !== undefined && seq <= cursor.watermark) || cursor.held.has(seq);
  }

  /** The held messages that now follow the watermark without a gap, in order; the watermark moves over them. */
  private drain(cursor: Cursor): MessageFrame[] {
    const out: MessageFrame[] = [];
    for (;;) {
      const next = (cursor.watermark ?? 0) + 1;
      const message = cursor.held.get(next);
      if (!message) return out;
      cursor.held.delete(next);
      cursor.watermark = next;
      out.push(message);
    }
  }
}
