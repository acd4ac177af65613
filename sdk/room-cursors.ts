/**
 * Where the client is in each room's order, so messages are shown once and in order, and a reconnect resumes
 * without a gap or a duplicate at the seam.
 *
 * A room's cursor is its watermark: the highest sequence such that every message up to it has been shown. Live
 * messages of concurrent senders can arrive out of order (two invocations fan out at once), so a message beyond
 * watermark + 1 is held until the run closes and shown then, in order; if the run stays open (a message a
 * broadcast missed, or DynamoDB's eventually consistent room index), the client asks `history` with `after` = the
 * watermark for the gap ({@link RoomCursors.beginRepair}).
 *
 * A first join learns where the room stands: the client asks the newest page (`history` with `limit: 1`) and its
 * `latestSeq` becomes the watermark, live messages held until it comes. Without that, a client dropped before the
 * room's first message after its join would rejoin with nothing to resume from, and miss what was sent meanwhile.
 *
 * A rejoin sends `join` with `after` one below the watermark: the page then starts with the message at the
 * watermark, whose id the cursor remembers. Another id there (or a `latestSeq` below it) means the room's numbering
 * started again (a memory store's gateway restarted; a store lost its data): the cursor starts over from 0 and
 * reports a gap, instead of dropping the new numbering's messages as already seen. While a page says `more` the
 * client asks `history` with `after` = the page's last seq. Until the last page, live messages of that room are
 * held back, then shown with the history in sequence order, each seq once (a message can be both in a page and
 * live at the seam: docs/history.md).
 */
import type { HistoryFrame, MessageFrame } from "./protocol";

interface Resume {
  readonly live: MessageFrame[];
  history: MessageFrame[];
  /** The watermark resumed from: what a `gap` event reports. */
  readonly after: number;
  /** The message at the watermark, which the first page repeats (absent: a gap repair, or no id known). */
  check: { readonly seq: number; readonly id: string } | undefined;
  /** A first join's probe for the room's latest seq, rather than a resume. */
  readonly baseline: boolean;
  /** No page has come yet. */
  first: boolean;
  /** Every page so far reached back to what it was asked for. */
  complete: boolean;
}

interface Cursor {
  /** Every message up to here was shown; `undefined` until the first join has learned where the room stands. */
  watermark: number | undefined;
  /** The id of the message at the watermark, when known. */
  lastId: string | undefined;
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
    if (!this.cursors.has(room))
      this.cursors.set(room, { watermark: undefined, lastId: undefined, held: new Map(), resuming: undefined });
  }

  forget(room: string): void {
    this.cursors.delete(room);
  }

  rooms(): string[] {
    return [...this.cursors.keys()];
  }

  /**
   * A (re)join of `room` is being sent: the `after` to send it with, and its live messages are held until the
   * answer. `undefined` on a first join: then {@link needsBaseline} says to ask the room's latest seq once it has
   * answered `members`.
   */
  beginResume(room: string): number | undefined {
    const cursor = this.cursors.get(room);
    if (!cursor) return undefined;
    const previous = cursor.resuming;
    if (cursor.watermark === undefined) {
      cursor.resuming = newResume(0, undefined, true, previous);
      return undefined;
    }
    const check =
      cursor.lastId !== undefined && cursor.watermark >= 1 ? { seq: cursor.watermark, id: cursor.lastId } : undefined;
    cursor.resuming = newResume(cursor.watermark, check, false, previous);
    return check ? check.seq - 1 : cursor.watermark;
  }

  /** Whether `room` waits for its latest seq (a first join): ask `history` with `limit: 1`. */
  needsBaseline(room: string): boolean {
    return this.cursors.get(room)?.resuming?.baseline === true;
  }

  /** Whether `room` holds messages beyond a gap (and is not already asking for it). */
  hasGap(room: string): boolean {
    const cursor = this.cursors.get(room);
    return cursor !== undefined && cursor.resuming === undefined && cursor.held.size > 0;
  }

  /** Starts filling `room`'s gap: the `after` to ask `history` with; live messages are held until it is done. */
  beginRepair(room: string): number | undefined {
    const cursor = this.cursors.get(room);
    if (!cursor || !this.hasGap(room) || cursor.watermark === undefined) return undefined;
    cursor.resuming = newResume(cursor.watermark, undefined, false, undefined);
    return cursor.watermark;
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
      cursor.lastId = message.id;
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
    if (resume.baseline) return this.baselined(cursor, resume, frame);
    if (resume.first) {
      resume.first = false;
      if (restarted(resume, frame)) {
        // A new numbering: what the old one held after the watermark cannot be known; start over from its first.
        cursor.watermark = 0;
        cursor.lastId = undefined;
        cursor.held.clear();
        resume.history = [];
        resume.check = undefined;
        resume.complete = false;
        return { kind: "more", after: 0 };
      }
      const firstSeq = frame.messages[0]?.seq;
      const reached = firstSeq !== undefined ? firstSeq <= resume.after + 1 : frame.latestSeq <= resume.after;
      if (frame.complete === false && !reached) resume.complete = false;
    } else if (frame.complete === false) {
      resume.complete = false;
    }
    resume.history.push(...frame.messages);
    const last = frame.messages.at(-1)?.seq;
    if (frame.more && last !== undefined) return { kind: "more", after: last };
    return this.finish(cursor, resume);
  }

  /** Gives up `room`'s resume (its history cannot be had): what was held is shown, and a gap reported. */
  abandon(room: string): ResumeStep | undefined {
    const cursor = this.cursors.get(room);
    const resume = cursor?.resuming;
    if (!cursor || !resume) return undefined;
    if (resume.baseline) {
      cursor.resuming = undefined;
      return { kind: "done", messages: this.startAt(cursor, resume.live, undefined) };
    }
    resume.complete = false;
    return this.finish(cursor, resume);
  }

  /** The watermark of `room` (tests and the web client's status line). */
  watermarkOf(room: string): number | undefined {
    return this.cursors.get(room)?.watermark;
  }

  /** The first join's answer: the watermark is the room's latest seq, or below the first live message if lower. */
  private baselined(cursor: Cursor, resume: Resume, frame: HistoryFrame): ResumeStep {
    cursor.resuming = undefined;
    return { kind: "done", messages: this.startAt(cursor, resume.live, frame) };
  }

  private startAt(cursor: Cursor, live: readonly MessageFrame[], page: HistoryFrame | undefined): MessageFrame[] {
    const firstLive = Math.min(...live.map((m) => m.seq));
    const latest = page?.latestSeq ?? firstLive - 1;
    const start = Math.min(latest, firstLive - 1);
    if (!Number.isFinite(start)) return [];
    cursor.watermark = start;
    cursor.lastId = page?.messages.find((m) => m.seq === start)?.id;
    for (const message of live) if (message.seq > start) cursor.held.set(message.seq, message);
    return this.drain(cursor);
  }

  private finish(cursor: Cursor, resume: Resume): ResumeStep {
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
      cursor.lastId = message.id;
      out.push(message);
    }
  }
}

/** A new resume; live messages held by one it replaces (a rejoin sent again) are kept. */
function newResume(after: number, check: Resume["check"], baseline: boolean, previous: Resume | undefined): Resume {
  return {
    live: [...(previous?.live ?? [])],
    history: [],
    after,
    check,
    baseline,
    first: true,
    complete: true,
  };
}

/** Whether the first page of a resume shows that the room's numbering started again since the watermark. */
function restarted(resume: Resume, frame: HistoryFrame): boolean {
  if (frame.latestSeq < resume.after) return true;
  const check = resume.check;
  if (!check) return false;
  const at = frame.messages.find((m) => m.seq === check.seq);
  return at !== undefined && at.id !== check.id;
}
