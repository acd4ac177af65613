/**
 * The clients of `npm run bench:faults` and what they count: real `ws` clients without a subprotocol, each
 * message body unique, every frame matched to the message it carries.
 *
 * - A delivery is a frame whose text is a body (room-less messages arrive as raw `data`), or a JSON object whose
 *   `data` is one (room `message` envelopes, and any other envelope that carries `data`). A second delivery of
 *   the same body to the same client is a duplicate; so is a second frame with the same server `id`, when frames
 *   carry one.
 * - An answer to a sender is its own copy of its message, or an error frame: `{"type":"error","code":…}` (any
 *   code is counted), or API Gateway's own `{"message":"Internal server error"}` / `"Endpoint request timed
 *   out"` (counted as `gateway: <message>`). Error frames name no message today, so one is matched to the
 *   sender's message it names (a top-level string field equal to a body, or an `id` seen on that message's
 *   delivery) when it does, else to the sender's oldest message with no answer yet, else to its newest message
 *   with no error yet (a report of a partial delivery comes after the sender's own copy); a frame with a `room`
 *   only to a room message.
 */
import { WebSocket } from "ws";

export type Phase = "before" | "during" | "after";
export const PHASES: readonly Phase[] = ["before", "during", "after"];

export interface SentMessage {
  readonly body: string;
  readonly sender: number;
  readonly kind: "all" | "room";
  readonly phase: Phase;
  readonly sentAt: number;
  /** Clients that should receive it: open at send time (and, for a room message, members). */
  readonly audience: readonly number[];
  readonly received: Map<number, number>;
  echoAt?: number;
  errorAt?: number;
  errorCode?: string;
  /** Server ids seen on its deliveries. */
  readonly ids: Set<string>;
}

export class Tally {
  readonly messages = new Map<string, SentMessage>();
  private readonly bySender = new Map<number, SentMessage[]>();
  private readonly idCounts = new Map<string, number>();
  private readonly messageById = new Map<string, SentMessage>();
  readonly errorCodes = new Map<string, number>();
  readonly otherFrames = new Map<string, number>();
  unattributedErrors = 0;
  framesWithId = 0;
  /** When the last delivery arrived (performance.now()). */
  lastDeliveryAt = 0;
  duplicatesById = 0;

  record(message: SentMessage): void {
    this.messages.set(message.body, message);
    let list = this.bySender.get(message.sender);
    if (!list) this.bySender.set(message.sender, (list = []));
    list.push(message);
  }

  /** When the last frame of any kind arrived (performance.now()). */
  lastFrameAt = 0;

  /** One text frame received by `client` at `at`. */
  frame(client: number, text: string, at: number): void {
    this.lastFrameAt = at;
    const raw = this.messages.get(text);
    if (raw) return this.delivered(raw, client, at);
    let parsed: unknown;
    if (text.startsWith("{")) {
      try {
        parsed = JSON.parse(text);
      } catch {
        parsed = undefined;
      }
    }
    if (!parsed || typeof parsed !== "object" || Array.isArray(parsed)) {
      this.count(this.otherFrames, "non-JSON text");
      return;
    }
    const frame = parsed as Record<string, unknown>;
    if (frame.type === "error") return this.error(client, String(frame.code ?? "(no code)"), frame, at);
    if (frame.type === undefined && typeof frame.message === "string" && !("data" in frame)) {
      return this.error(client, `gateway: ${frame.message}`, frame, at);
    }
    const carried = typeof frame.data === "string" ? this.messages.get(frame.data) : undefined;
    if (carried) {
      const id = frame.id;
      if (typeof id === "string" || typeof id === "number") {
        this.framesWithId++;
        const key = `${client}|${id}`;
        const seen = (this.idCounts.get(key) ?? 0) + 1;
        this.idCounts.set(key, seen);
        if (seen > 1) this.duplicatesById++;
        carried.ids.add(String(id));
        this.messageById.set(String(id), carried);
      }
      return this.delivered(carried, client, at);
    }
    this.count(this.otherFrames, typeof frame.type === "string" ? frame.type : "(untyped)");
  }

  private delivered(message: SentMessage, client: number, at: number): void {
    message.received.set(client, (message.received.get(client) ?? 0) + 1);
    this.lastDeliveryAt = at;
    if (client === message.sender && message.echoAt === undefined) message.echoAt = at;
  }

  private error(client: number, code: string, frame: Record<string, unknown>, at: number): void {
    this.count(this.errorCodes, code);
    const target = this.attribute(client, frame, at);
    if (!target) {
      this.unattributedErrors++;
      return;
    }
    target.errorAt = at;
    target.errorCode = code;
  }

  private attribute(client: number, frame: Record<string, unknown>, at: number): SentMessage | undefined {
    for (const value of Object.values(frame)) {
      if (typeof value !== "string" && typeof value !== "number") continue;
      const named = this.messages.get(String(value)) ?? this.messageById.get(String(value));
      if (named && named.sender === client && named.errorAt === undefined) return named;
    }
    // A frame that names a room (`NotInRoom`, ...) answers a room message.
    const kind = typeof frame.room === "string" ? "room" : undefined;
    const mine = (this.bySender.get(client) ?? []).filter(
      (m) => m.sentAt <= at && m.errorAt === undefined && (kind === undefined || m.kind === kind),
    );
    return mine.find((m) => m.echoAt === undefined) ?? mine[mine.length - 1];
  }

  private count(map: Map<string, number>, key: string): void {
    map.set(key, (map.get(key) ?? 0) + 1);
  }
}

export interface BenchClient {
  readonly index: number;
  readonly ws: WebSocket;
  connectionId?: string;
  joined: boolean;
  closedAt?: number;
  /** Sends a JSON frame and resolves with the first frame that `match` accepts within `timeoutMs` (else undefined). */
  ask(frame: unknown, match: (frame: Record<string, unknown>) => boolean, timeoutMs: number): Promise<unknown>;
  send(frame: unknown): void;
  close(timeoutMs: number): Promise<void>;
}

/** Opens a client; every text frame it gets goes to `tally`. Rejects after `timeoutMs`. */
export function openBenchClient(url: string, index: number, tally: Tally, timeoutMs: number): Promise<BenchClient> {
  const ws = new WebSocket(url);
  const waiters = new Set<(frame: Record<string, unknown>) => boolean>();
  const closed = new Promise<void>((resolve) => ws.once("close", () => resolve()));
  const client: BenchClient = {
    index,
    ws,
    joined: false,
    ask(frame, match, askTimeoutMs) {
      return new Promise((resolve) => {
        const waiter = (received: Record<string, unknown>) => {
          if (!match(received)) return false;
          clearTimeout(timer);
          resolve(received);
          return true;
        };
        const timer = setTimeout(() => {
          waiters.delete(waiter);
          resolve(undefined);
        }, askTimeoutMs);
        waiters.add(waiter);
        client.send(frame);
      });
    },
    send(frame) {
      if (ws.readyState === WebSocket.OPEN) ws.send(JSON.stringify(frame));
    },
    async close(closeTimeoutMs) {
      if (ws.readyState === WebSocket.CLOSED) return;
      ws.close(1000);
      const timer = setTimeout(() => ws.terminate(), closeTimeoutMs);
      await closed;
      clearTimeout(timer);
    },
  };
  ws.on("message", (data, isBinary) => {
    const at = performance.now();
    const text = isBinary ? "" : data.toString();
    tally.frame(index, text, at);
    if (waiters.size === 0 || !text.startsWith("{")) return;
    let parsed: unknown;
    try {
      parsed = JSON.parse(text);
    } catch {
      return;
    }
    if (!parsed || typeof parsed !== "object") return;
    for (const waiter of waiters) if (waiter(parsed as Record<string, unknown>)) waiters.delete(waiter);
  });
  ws.once("close", () => (client.closedAt = performance.now()));
  // A socket error after the handshake ends in "close"; it must not crash the bench.
  ws.on("error", () => {});
  return new Promise((resolve, reject) => {
    const timer = setTimeout(() => {
      ws.terminate();
      reject(new Error(`client ${index}: no handshake within ${timeoutMs} ms`));
    }, timeoutMs);
    ws.once("open", () => {
      clearTimeout(timer);
      resolve(client);
    });
    ws.once("error", (error) => {
      clearTimeout(timer);
      reject(error);
    });
    ws.once("unexpected-response", (_req, res) => {
      clearTimeout(timer);
      res.resume();
      ws.terminate();
      reject(new Error(`client ${index}: handshake refused with ${res.statusCode}`));
    });
  });
}
