/**
 * The chat client: one WebSocket that comes back on its own. It connects with the project's subprotocol (so every
 * frame it gets is an envelope the server wrote), keeps the connection alive below API Gateway's idle timeout,
 * renews it before the two-hour limit, and after any loss reconnects with full-jitter backoff, rejoins its rooms
 * resuming each from the last sequence it saw, and sends again what was not acknowledged. Messages are shown once
 * (by server id) and, per room, in order.
 */
import { fullJitterDelay } from "./backoff";
import { ChatError } from "./chat-error";
import { type ConnectionEvent, type ConnectionState, transition } from "./connection-state";
import { Emitter } from "./emitter";
import { handshakeError, handshakeStatusOf } from "./handshake-refusal";
import { type Ack, Outbox } from "./outbox";
import {
  CHAT_SUBPROTOCOL,
  type ClientFrame,
  type ErrorFrame,
  type HistoryFrame,
  type MemberInfo,
  type MessageEvent,
  type MessageFrame,
  parseServerFrame,
  type ServerFrame,
} from "./protocol";
import { RoomCursors } from "./room-cursors";
import { RoomRequests } from "./room-requests";
import { SeenIds } from "./seen-ids";
import { unexpectedFrameError } from "./unexpected-frame";

/** The part of the standard WebSocket the client uses (browsers, Node 22+, or `ws` in Node 20). */
export interface SocketLike {
  readonly readyState: number;
  send(data: string): void;
  close(code?: number, reason?: string): void;
  addEventListener(type: "message", listener: (event: { readonly data: unknown }) => void): void;
  addEventListener(type: "close", listener: (event: { readonly code: number; readonly reason: string }) => void): void;
  addEventListener(type: "open", listener: () => void): void;
  /** `ws` gives the event a `message` naming a refused handshake's status; browsers give nothing. */
  addEventListener(type: "error", listener: (event: unknown) => void): void;
}
export type SocketFactory = new (url: string, protocols?: string | string[]) => SocketLike;

export interface ChatClientOptions {
  /** The API's WebSocket URL, e.g. `wss://abc123.execute-api.us-east-1.amazonaws.com/prod`. */
  readonly url: string;
  /** A token for the `$connect` authorizer, or a function that returns a fresh one for every connect. */
  readonly token?: string | (() => string | Promise<string>);
  /** The query parameter the authorizer reads the token from. @default "token" */
  readonly tokenParam?: string;
  /** A display name (`?name=`), unverified unless the authorizer gives one. */
  readonly name?: string;
  /** The WebSocket class. @default globalThis.WebSocket (pass `ws`'s on Node 20) */
  readonly WebSocket?: SocketFactory;
  /** Reconnect backoff and limit. @default { baseMs: 500, capMs: 30000, maxAttempts: Infinity } */
  readonly reconnect?: { readonly baseMs?: number; readonly capMs?: number; readonly maxAttempts?: number };
  /** A `ping` after this long without a frame, below API Gateway's 10-minute idle timeout. @default 240000 */
  readonly heartbeatMs?: number;
  /** How long a `ping` may go unanswered before the connection counts as lost. @default 10000 */
  readonly heartbeatTimeoutMs?: number;
  /** Renew the connection after this long, before API Gateway's 2-hour limit closes it. @default 6900000 */
  readonly renewAfterMs?: number;
  /** How long a gap in a room's order may stay open before the client asks `history` for it. @default 1000 */
  readonly gapRepairMs?: number;
  /** Sends waiting for acknowledgement, at most. @default 1000 */
  readonly maxPendingSends?: number;
  /**
   * How long a room request of the client's own (a join, a resume's next page, a gap repair) may go unanswered
   * before it is sent again. @default 10000
   */
  readonly requestTimeoutMs?: number;
}

export interface ChatEvents {
  state: ConnectionState;
  /** A room message, a room-less broadcast or a direct message, each once. */
  message: MessageEvent;
  members: { room: string; members: readonly MemberInfo[]; more: boolean };
  joined: { room: string; member: MemberInfo; ts: number };
  left: { room: string; member: MemberInfo; ts: number };
  /** History no longer reaches back to the last message seen in `room`: messages between were missed. */
  gap: { room: string; afterSeq: number; resumedAt: number | undefined };
  error: ChatError;
  /** Who the server says this connection is (after every connect). */
  identity: { connectionId: string; userId?: string; name?: string };
}

const OPEN = 1;

export class ChatClient extends Emitter<ChatEvents> {
  private current: ConnectionState = "idle";
  private socket: SocketLike | undefined;
  private attempts = 0;
  private readonly seen = new SeenIds();
  private readonly cursors = new RoomCursors();
  private readonly outbox: Outbox;
  /** Joins the application awaits: answered once `members` came and, on a first join, the room's latest seq. */
  private readonly joins = new Map<
    string,
    { resolve: (m: MemberInfo[]) => void; reject: (e: ChatError) => void; members?: MemberInfo[] }
  >();
  private timers: ReturnType<typeof setTimeout>[] = [];
  private heartbeat: ReturnType<typeof setTimeout> | undefined;
  private pongDue: ReturnType<typeof setTimeout> | undefined;
  /** Rooms rejoined after a connect whose `members` has not come yet: sends wait for them (membership first). */
  private readonly rejoining = new Set<string>();
  /** Rooms with a gap repair scheduled. */
  private readonly repairs = new Set<string>();
  /** Per room, how often a send was refused `NotInRoom` on this connection (each time the room is joined again). */
  private readonly notInRoom = new Map<string, number>();
  private readonly requests: RoomRequests;

  constructor(private readonly options: ChatClientOptions) {
    super();
    this.outbox = new Outbox(options.maxPendingSends ?? 1_000);
    this.requests = new RoomRequests(
      { write: (frame) => this.write(frame), schedule: (ms, run) => this.later(ms, run) },
      this.requestTimeoutMs(),
    );
  }

  private requestTimeoutMs(): number {
    return this.options.requestTimeoutMs ?? 10_000;
  }

  get state(): ConnectionState {
    return this.current;
  }

  /** Opens the connection; it then stays up (reconnecting as needed) until {@link close}. */
  connect(): void {
    if (this.move("connect")) void this.open();
  }

  /** Closes for good: no reconnect; sends still waiting fail with `Closed`. */
  close(): void {
    if (!this.move("close")) return;
    this.clearTimers();
    this.requests.clear();
    this.socket?.close(1000, "client closed");
    this.socket = undefined;
    const closed = new ChatError("Closed", "The client was closed.", false);
    this.outbox.failAll(closed);
    for (const pending of this.joins.values()) pending.reject(closed);
    this.joins.clear();
  }

  /**
   * Joins `room` (and rejoins it after every reconnect, resuming from the last message seen). Resolves with the
   * members once the client knows where the room stands: every message after that is shown.
   */
  join(room: string): Promise<MemberInfo[]> {
    this.cursors.track(room);
    const answer = new Promise<MemberInfo[]>((resolve, reject) => this.joins.set(room, { resolve, reject }));
    if (this.current === "open") this.sendJoin(room);
    return answer;
  }

  leave(room: string): void {
    this.cursors.forget(room);
    this.requests.drop(room);
    this.write({ action: "leave", room });
  }

  /** Sends to a room; resolves with the server's acknowledgement (id and sequence). Queued while offline. */
  send(room: string, data: unknown): Promise<Ack> {
    return this.queue({ action: "sendmessage", room, data });
  }

  /** Sends to every connection (a room-less `sendmessage`). */
  broadcast(data: unknown): Promise<Ack> {
    return this.queue({ action: "sendmessage", data });
  }

  /** Sends to one connection. */
  sendTo(connectionId: string, data: unknown): Promise<Ack> {
    return this.queue({ action: "sendto", to: connectionId, data });
  }

  /** Asks for up to `limit` messages of `room` before sequence `before` (newest page when omitted). */
  history(room: string, before?: number, limit?: number): void {
    this.write({
      action: "history",
      room,
      ...(before !== undefined ? { before } : {}),
      ...(limit !== undefined ? { limit } : {}),
    });
  }

  private queue(frame: ClientFrame): Promise<Ack> {
    // Closed for good: nothing would ever send it.
    if (this.current === "closed") return Promise.reject(new ChatError("Closed", "The client was closed.", false));
    const ref = randomRef();
    const acked = this.outbox.add(ref, frame);
    const wire = this.outbox.frameOf(ref);
    if (wire && this.current === "open" && this.rejoining.size === 0) this.write(wire);
    return acked;
  }

  private move(event: ConnectionEvent): boolean {
    const next = transition(this.current, event);
    if (next === undefined) return false;
    this.current = next;
    this.emit("state", next);
    return true;
  }

  private async open(): Promise<void> {
    let url: string;
    try {
      url = await this.connectUrl();
    } catch (error) {
      this.emit("error", new ChatError("ConnectFailed", `Could not get a token: ${String(error)}`, true));
      return this.lost("failed");
    }
    if (this.current !== "connecting") return;
    const Socket = this.options.WebSocket ?? (globalThis as { WebSocket?: SocketFactory }).WebSocket;
    if (!Socket) throw new Error("No WebSocket class: pass options.WebSocket (e.g. the `ws` package's) on Node 20.");
    const socket = new Socket(url, CHAT_SUBPROTOCOL);
    this.socket = socket;
    let opened = false;
    let refusedWith: number | undefined;
    socket.addEventListener("open", () => {
      if (this.socket !== socket) return;
      opened = true;
      this.onOpen();
    });
    socket.addEventListener("message", (event) => {
      if (this.socket === socket) this.onText(String(event.data));
    });
    socket.addEventListener("close", (event) => {
      if (this.socket !== socket) return;
      this.socket = undefined;
      if (!opened) {
        const error = handshakeError(refusedWith, event.code, typeof this.options.token === "function");
        this.emit("error", error);
        // A fixed token that was refused will be refused again: retrying would only hammer the authorizer.
        if (!error.retryable) return this.close();
      }
      this.lost(opened ? "lost" : "failed");
    });
    // A failed handshake is followed by `close`, which decides what happens next.
    socket.addEventListener("error", (event) => {
      refusedWith = handshakeStatusOf(event);
    });
  }

  private async connectUrl(): Promise<string> {
    const url = new URL(this.options.url);
    const { token } = this.options;
    if (token !== undefined) {
      url.searchParams.set(this.options.tokenParam ?? "token", typeof token === "function" ? await token() : token);
    }
    if (this.options.name !== undefined) url.searchParams.set("name", this.options.name);
    return url.toString();
  }

  private onOpen(): void {
    if (!this.move("opened")) return;
    this.attempts = 0;
    this.notInRoom.clear();
    this.write({ action: "whoami" });
    this.rejoining.clear();
    for (const room of this.cursors.rooms()) {
      this.rejoining.add(room);
      this.sendJoin(room);
    }
    // Queued sends go once every room is joined again: a room message before its join would be refused.
    if (this.rejoining.size === 0) this.flushDue();
    this.armHeartbeat();
    this.later(this.options.renewAfterMs ?? 115 * 60_000, () => this.renew());
  }

  /** A (re)join: with `after` it resumes (answered by `members` and a `history` page), else `members` answers. */
  private sendJoin(room: string): void {
    const after = this.cursors.beginResume(room);
    const frame = { action: "join", room, ...(after !== undefined ? { after } : {}) };
    this.requests.ask(room, frame, after !== undefined ? "history" : "members");
  }

  /** The connection went away (or never came): back off and try again, or give up. */
  private lost(event: "lost" | "failed"): void {
    this.clearTimers();
    this.requests.clear();
    if (!this.move(event)) return;
    const maxAttempts = this.options.reconnect?.maxAttempts ?? Number.POSITIVE_INFINITY;
    if (++this.attempts > maxAttempts) {
      this.emit("error", new ChatError("ConnectFailed", `Gave up after ${maxAttempts} attempts.`, false));
      return this.close();
    }
    const delay = event === "lost" && this.attempts === 1 ? 0 : fullJitterDelay(this.attempts, this.options.reconnect);
    this.later(delay, () => {
      if (this.move("retry")) void this.open();
    });
  }

  /** Planned renewal before the 2-hour limit: a clean close, then an immediate reconnect that resumes. */
  private renew(): void {
    const socket = this.socket;
    this.socket = undefined;
    socket?.close(1000, "renewing");
    this.lost("lost");
  }

  private armHeartbeat(): void {
    if (this.heartbeat) clearTimeout(this.heartbeat);
    this.heartbeat = setTimeout(() => {
      this.write({ action: "ping" });
      this.pongDue ??= setTimeout(() => {
        this.pongDue = undefined;
        this.emit("error", new ChatError("Timeout", "No answer to a heartbeat: reconnecting.", true));
        this.renew();
      }, this.options.heartbeatTimeoutMs ?? 10_000);
    }, this.options.heartbeatMs ?? 240_000);
  }

  private onText(text: string): void {
    // Any frame shows the connection is alive.
    if (this.pongDue) clearTimeout(this.pongDue);
    this.pongDue = undefined;
    this.armHeartbeat();
    const frame = parseServerFrame(text);
    if (frame) this.onFrame(frame);
    else this.emit("error", unexpectedFrameError(text));
  }

  private onFrame(frame: ServerFrame): void {
    switch (frame.type) {
      case "message":
      case "broadcast":
      case "direct":
        return this.onMessage(frame);
      case "history":
        return this.onHistory(frame);
      case "members": {
        this.emit("members", { room: frame.room, members: frame.members, more: frame.more });
        const pending = this.joins.get(frame.room);
        if (pending) pending.members = [...frame.members];
        this.requests.members(frame.room);
        // A first join: where the room stands now is where this client's count starts.
        if (this.cursors.needsBaseline(frame.room) && !this.requests.of(frame.room))
          this.requests.ask(frame.room, { action: "history", room: frame.room, limit: 1 }, "history");
        this.settleJoin(frame.room);
        this.rejoined(frame.room);
        return;
      }
      case "joined":
      case "left":
        this.emit(frame.type, { room: frame.room, member: memberOf(frame), ts: frame.ts });
        return;
      case "ack": {
        const { type: _type, ...ack } = frame;
        this.outbox.acknowledge(ack);
        return;
      }
      case "whoami":
        this.emit("identity", memberOf(frame));
        return;
      case "pong":
        return;
      case "error":
        return this.onError(frame);
    }
  }

  private onMessage(frame: MessageEvent): void {
    if (frame.type === "message" && typeof frame.seq === "number") {
      for (const ready of this.cursors.offer(frame)) this.show(ready);
      if (this.cursors.hasGap(frame.room)) this.repairLater(frame.room);
      return;
    }
    this.show(frame);
  }

  /** A `history` page: the next page of a resume is asked for (`after`), a finished one is shown in order. */
  private onHistory(frame: HistoryFrame): void {
    const ours = this.requests.history(frame.room);
    if (!this.cursors.isResuming(frame.room)) {
      // A page the application asked for is shown as it is; a late second answer to a request of ours is not.
      if (!ours) for (const message of frame.messages) this.show(message);
      return;
    }
    const step = this.cursors.resumed(frame);
    if (step.kind === "more") {
      this.requests.ask(frame.room, { action: "history", room: frame.room, after: step.after }, "history");
      return;
    }
    this.showStep(frame.room, step);
  }

  private showStep(room: string, step: { messages: MessageFrame[]; gap?: number }): void {
    this.settleJoin(room);
    if (step.gap !== undefined) this.emit("gap", { room, afterSeq: step.gap, resumedAt: step.messages[0]?.seq });
    for (const message of step.messages) this.show(message);
  }

  /** The application's join of `room` is answered once `members` came and the room's latest seq is known. */
  private settleJoin(room: string): void {
    const pending = this.joins.get(room);
    if (!pending?.members || this.cursors.needsBaseline(room)) return;
    this.joins.delete(room);
    pending.resolve(pending.members);
  }

  /**
   * A room holds messages beyond a gap: most close within moments (concurrent fan-outs arrive out of order); one
   * still open after `gapRepairMs` is asked for with `history` (`after` = the watermark).
   */
  private repairLater(room: string): void {
    if (this.repairs.has(room)) return;
    this.repairs.add(room);
    this.later(this.options.gapRepairMs ?? 1_000, () => {
      this.repairs.delete(room);
      const after = this.current === "open" ? this.cursors.beginRepair(room) : undefined;
      if (after !== undefined) this.requests.ask(room, { action: "history", room, after }, "history");
    });
  }

  /** `room` answered its rejoin: once every room has, the queued sends go. */
  private rejoined(room: string): void {
    if (!this.rejoining.delete(room)) return;
    if (this.rejoining.size === 0) this.flushDue();
  }

  private show(message: MessageEvent): void {
    if (message.id !== undefined && !this.seen.admit(message.id)) return;
    this.emit("message", message);
  }

  private onError(frame: ErrorFrame): void {
    const error = new ChatError(frame.code, frame.message, frame.retryable === true, frame);
    const retryAfterMs = typeof frame.retryAfterMs === "number" ? frame.retryAfterMs : undefined;
    const room = typeof frame.room === "string" ? frame.room : undefined;
    if (frame.code === "TokenExpired") {
      // The server closes the connection next; the reconnect fetches a fresh token.
      this.emit("error", error);
      return;
    }
    if (frame.code === "UnknownConnection") {
      // The server has no record of this connection: only a new one helps.
      this.emit("error", error);
      this.renew();
      return;
    }
    if (typeof frame.ref === "string") {
      if (frame.code === "NotInRoom" && room !== undefined && this.rejoinFor(frame.ref, room)) return;
      this.outbox.refuse(frame.ref, error, Date.now(), retryAfterMs);
      if (error.retryable) this.later((retryAfterMs ?? 1_000) + 1, () => this.flushDue());
    } else if (room !== undefined) {
      this.onRoomRefused(room, error, retryAfterMs);
    } else if (error.retryable) {
      // A retryable refusal that names no room may answer any request in flight.
      this.requests.refusedAll(retryAfterMs);
    }
    this.emit("error", error);
  }

  /** A room request (or a `leave`) refused: a retryable refusal is asked again, a final one ends what it began. */
  private onRoomRefused(room: string, error: ChatError, retryAfterMs: number | undefined): void {
    // A rejoin refused `RoomFull` is asked again: the seat it needs may be this client's own lost connection's,
    // freed once the server notices that connection is gone (at worst API Gateway's idle timeout).
    const rejoin = error.code === "RoomFull" && !this.joins.has(room) && this.cursors.rooms().includes(room);
    const retry = error.retryable || rejoin;
    const request = this.requests.refused(room, retry, retryAfterMs ?? (rejoin ? this.requestTimeoutMs() : undefined));
    if (rejoin) this.rejoined(room);
    if (retry) return;
    if (request?.frame.action === "history") {
      // The server forgot this connection is in the room: join again, resuming from the watermark.
      if (error.code === "NotInRoom") return this.sendJoin(room);
      const step = this.cursors.abandon(room);
      if (step?.kind === "done") this.showStep(room, step);
      return;
    }
    const pending = this.joins.get(room);
    if (pending) {
      this.joins.delete(room);
      this.cursors.forget(room);
      pending.reject(error);
    }
    // A rejoin that failed does not hold the queued sends back.
    this.rejoined(room);
  }

  /**
   * A send to a room the client is in was refused `NotInRoom`: the server forgot the membership (its store lost
   * it). The send waits while the room is joined again (resuming from the watermark), then goes again; a few times
   * per connection at most, so a server that keeps refusing ends it with the refusal.
   */
  private rejoinFor(ref: string, room: string): boolean {
    if (!this.cursors.rooms().includes(room)) return false;
    const times = this.notInRoom.get(room) ?? 0;
    if (times >= 3 && !this.rejoining.has(room)) return false;
    this.outbox.refuse(ref, new ChatError("NotInRoom", "Joining the room again first.", true), Date.now(), 0);
    if (!this.rejoining.has(room)) {
      this.notInRoom.set(room, times + 1);
      this.rejoining.add(room);
      this.sendJoin(room);
    }
    return true;
  }

  private flushDue(): void {
    if (this.current !== "open" || this.rejoining.size > 0) return;
    for (const frame of this.outbox.due(Date.now())) this.write(frame);
  }

  private write(frame: Record<string, unknown>): void {
    if (this.socket?.readyState === OPEN) this.socket.send(JSON.stringify(frame));
  }

  /** Runs `run` after `ms` unless cancelled (the returned function) or the connection goes first. */
  private later(ms: number, run: () => void): () => void {
    const timer = setTimeout(() => {
      this.timers = this.timers.filter((t) => t !== timer);
      run();
    }, ms);
    this.timers.push(timer);
    return () => {
      clearTimeout(timer);
      this.timers = this.timers.filter((t) => t !== timer);
    };
  }

  private clearTimers(): void {
    for (const timer of this.timers) clearTimeout(timer);
    this.timers = [];
    this.repairs.clear();
    if (this.heartbeat) clearTimeout(this.heartbeat);
    if (this.pongDue) clearTimeout(this.pongDue);
    this.heartbeat = undefined;
    this.pongDue = undefined;
  }
}

function memberOf(frame: { connectionId: string; userId?: string; name?: string; nameVerified?: boolean }): MemberInfo {
  return {
    connectionId: frame.connectionId,
    ...(frame.userId !== undefined ? { userId: frame.userId } : {}),
    ...(frame.name !== undefined ? { name: frame.name } : {}),
    ...(frame.nameVerified !== undefined ? { nameVerified: frame.nameVerified } : {}),
  };
}

/**
 * A send's `ref`: 16 random bytes (128 bits) as 22 base64url characters. Unguessable, so no other client can claim
 * it first where the server de-duplicates refs across connections; `getRandomValues` needs no secure context.
 */
export function randomRef(): string {
  const bytes = new Uint8Array(16);
  globalThis.crypto.getRandomValues(bytes);
  let binary = "";
  for (const byte of bytes) binary += String.fromCharCode(byte);
  return btoa(binary).replace(/\+/g, "-").replace(/\//g, "_").replace(/=+$/, "");
}
