/**
 * Resume, history, acknowledged sends and the heartbeat, end to end: real `ws` clients, the local gateway and the
 * real handlers, on every store (memory, a spawned Redis, DynamoDB on dynalite). Room messages carry a per-room
 * `seq`; a client that comes back and joins with `after` gets what it missed, in order, with no gap at the seam;
 * `history` pages backwards; a `ref` is acknowledged and a repeat of it is not delivered twice; `ping` answers
 * `pong` and freshens the store's record (docs/history.md, docs/protocol.md).
 */
import { randomBytes } from "node:crypto";
import { expect } from "chai";
import type { ConnectionStore } from "../contract/connection-store";
import type { AckFrame, HistoryFrame, MessageFrame } from "../contract/frames";
import { DEFAULT_MESSAGE_LIMITS } from "../contract/message-limits";
import { type HistorySettings, SHARED_SEND_REF_MIN_LENGTH } from "../contract/room-history";
import { MemoryConnectionStore } from "../stores/memory";
import { type AuthGateway, startAuthGateway } from "./support/auth-gateway";
import { type ChatGateway, eventually, openChatClient, startChatGateway, type TestClient } from "./support/gateway";
import { startTestIdp, type TestIdp } from "./support/jwks";
import { forEachStore } from "./support/store-matrix";

type Frame = Record<string, unknown>;
const send = (c: TestClient, body: Record<string, unknown>) => c.send(JSON.stringify(body));

/** Reads frames until one matches `match`; the skipped ones are returned too. */
async function until(c: TestClient, match: (f: Frame) => boolean, timeoutMs = 5000): Promise<Frame> {
  for (;;) {
    const frame = await c.nextJson(timeoutMs);
    if (match(frame)) return frame;
  }
}

/** Every `message` frame of `room` the client has received so far, in arrival order, live and from history. */
function roomMessages(c: TestClient, room: string): MessageFrame[] {
  const out: MessageFrame[] = [];
  for (const text of c.received) {
    const f = JSON.parse(text) as Frame;
    if (f.type === "message" && f.room === room) out.push(f as unknown as MessageFrame);
    if (f.type === "history" && f.room === room) out.push(...(f as unknown as HistoryFrame).messages);
  }
  return out;
}

async function gatewayFor(store: ConnectionStore, history?: Partial<HistorySettings>): Promise<ChatGateway> {
  const gw = await startChatGateway(store);
  const env = gw.deps.env as { limits?: unknown; history?: HistorySettings };
  env.limits = { ...DEFAULT_MESSAGE_LIMITS, messages: 10_000, userMessages: 10_000, broadcasts: 10_000 };
  if (history) env.history = { maxEntries: 100, maxAgeSeconds: 3600, sendRefWindowSeconds: 600, ...history };
  return gw;
}

async function joined(gw: ChatGateway, room: string, after?: number): Promise<TestClient> {
  const c = await openChatClient(gw);
  await send(c, { action: "join", room, ...(after !== undefined ? { after } : {}) });
  await until(c, (f) => f.type === "members");
  return c;
}

describe("resume, history, acks and the heartbeat", function () {
  this.timeout(60_000);

  forEachStore((newStore) => {
    let gw: ChatGateway | undefined;
    const clients: TestClient[] = [];
    afterEach(async () => {
      for (const c of clients.splice(0)) if (c.ws.readyState === c.ws.OPEN) await c.close();
      await gw?.stop();
      gw = undefined;
    });

    it("numbers room messages 1, 2, 3… in one order every member sees, with concurrent senders", async () => {
      gw = await gatewayFor(await newStore());
      const [a, b, watcher] = [await joined(gw, "lobby"), await joined(gw, "lobby"), await joined(gw, "lobby")];
      clients.push(a, b, watcher);
      const perSender = 6;
      await Promise.all(
        [a, b].flatMap((c, who) =>
          Array.from({ length: perSender }, (_, i) =>
            send(c, { action: "sendmessage", room: "lobby", data: `${who}-${i}` }),
          ),
        ),
      );
      await eventually(async () => roomMessages(watcher, "lobby").length === 2 * perSender, "every message", 10_000);
      // Live frames of concurrent invocations may arrive out of order; `seq` is the one order every member can put
      // them in (the SDK does), so compare in seq order.
      const bySeq = (c: TestClient) => [...roomMessages(c, "lobby")].sort((x, y) => Number(x.seq) - Number(y.seq));
      const seen = bySeq(watcher);
      expect(seen.map((m) => m.seq)).to.deep.equal(Array.from({ length: 2 * perSender }, (_, i) => i + 1));
      for (const c of [a, b]) {
        await eventually(async () => roomMessages(c, "lobby").length === 2 * perSender, "every message", 10_000);
        expect(bySeq(c).map((m) => m.id)).to.deep.equal(seen.map((m) => m.id));
      }
      // Every message once. Not in the order each sender sent them: its frames were handled by concurrent
      // invocations, and API Gateway promises no order between them either; `seq` is the one order.
      for (const who of [0, 1]) {
        const mine = seen.filter((m) => String(m.data).startsWith(`${who}-`)).map((m) => m.data);
        expect([...mine].sort()).to.deep.equal(Array.from({ length: perSender }, (_, i) => `${who}-${i}`).sort());
      }
    });

    it("gives a client that comes back with after exactly what it missed, then the live stream", async () => {
      gw = await gatewayFor(await newStore());
      const sender = await joined(gw, "lobby");
      const away = await joined(gw, "lobby");
      clients.push(sender);
      for (let i = 0; i < 3; i++) await send(sender, { action: "sendmessage", room: "lobby", data: `before-${i}` });
      await eventually(async () => roomMessages(away, "lobby").length === 3, "the first three");
      const last = Math.max(...roomMessages(away, "lobby").map((m) => m.seq));
      await away.close();

      for (let i = 0; i < 4; i++) await send(sender, { action: "sendmessage", room: "lobby", data: `missed-${i}` });
      await eventually(async () => roomMessages(sender, "lobby").length === 7, "the sender's own seven");
      // A sender keeps talking while the client comes back: the seam.
      let talking = true;
      let during = 0;
      const chatter = (async () => {
        for (; talking && during < 30; during++)
          await send(sender, { action: "sendmessage", room: "lobby", data: `during-${during}` });
      })();
      const started = Date.now();
      const back = await openChatClient(gw);
      clients.push(back);
      await send(back, { action: "join", room: "lobby", after: last });
      const members = await until(back, (f) => f.type === "members");
      expect(members.room).to.equal("lobby");
      const page = (await until(back, (f) => f.type === "history")) as unknown as HistoryFrame;
      const resumeMs = Date.now() - started;
      talking = false;
      await chatter;
      expect(page).to.include({ room: "lobby", complete: true, more: false });
      expect(page.messages[0]).to.include({ seq: last + 1, data: "missed-0", type: "message", room: "lobby" });
      expect(page.latestSeq).to.be.at.least(7);
      // The page and the live stream together: every seq after `last` exactly once once duplicates at the seam (a
      // message both in the page and live) are dropped by seq, as the client's rule says; never a gap.
      const total = 7 + during;
      await eventually(async () => roomMessages(sender, "lobby").length === total, "the sender's own", 10_000);
      await eventually(async () => {
        const seqs = new Set(roomMessages(back, "lobby").map((m) => m.seq));
        return seqs.has(total);
      }, "the live stream to catch up");
      const bySeq = new Map<number, MessageFrame>();
      for (const m of roomMessages(back, "lobby")) {
        const earlier = bySeq.get(m.seq);
        if (earlier) expect(earlier, "a duplicate at the seam is the same message").to.deep.equal(m);
        bySeq.set(m.seq, m);
      }
      expect([...bySeq.keys()].sort((x, y) => x - y)).to.deep.equal(
        Array.from({ length: total - last }, (_, i) => last + 1 + i),
      );
      // Same frames, live or from history.
      const senderBySeq = new Map(roomMessages(sender, "lobby").map((m) => [m.seq, m]));
      for (const [seq, m] of bySeq) expect(m).to.deep.equal(senderBySeq.get(seq));
      expect(resumeMs).to.be.below(5000);
    });

    it("says complete: false when history no longer reaches back, and pages a long resume with more", async () => {
      gw = await gatewayFor(await newStore(), { maxEntries: 3 });
      const sender = await joined(gw, "lobby");
      clients.push(sender);
      for (let i = 1; i <= 6; i++) await send(sender, { action: "sendmessage", room: "lobby", data: i });
      await eventually(async () => roomMessages(sender, "lobby").length === 6, "six messages");
      const back = await joined(gw, "lobby", 1);
      clients.push(back);
      const page = (await until(back, (f) => f.type === "history")) as unknown as HistoryFrame;
      expect(page).to.include({ complete: false, more: false, latestSeq: 6 });
      expect(page.messages.map((m) => m.seq)).to.deep.equal([4, 5, 6]);
      // Up to date: an empty page that reaches back.
      await send(back, { action: "join", room: "lobby", after: 6 });
      const current = (await until(back, (f) => f.type === "history")) as unknown as HistoryFrame;
      expect(current).to.deep.include({ messages: [], complete: true, more: false, latestSeq: 6 });
      // Forwards with a limit: more says ask again after the last.
      await send(back, { action: "history", room: "lobby", after: 3, limit: 2 });
      const first = (await until(back, (f) => f.type === "history")) as unknown as HistoryFrame;
      expect(first.messages.map((m) => m.seq)).to.deep.equal([4, 5]);
      expect(first).to.include({ more: true, complete: true });
    });

    it("pages history backwards with before, members only", async () => {
      gw = await gatewayFor(await newStore());
      const sender = await joined(gw, "lobby");
      const stranger = await openChatClient(gw);
      clients.push(sender, stranger);
      for (let i = 1; i <= 5; i++) await send(sender, { action: "sendmessage", room: "lobby", data: `m${i}` });
      await eventually(async () => roomMessages(sender, "lobby").length === 5, "five messages");
      const pages: number[][] = [];
      let before: number | undefined;
      for (;;) {
        await send(sender, { action: "history", room: "lobby", limit: 2, ...(before ? { before } : {}) });
        const page = (await until(sender, (f) => f.type === "history")) as unknown as HistoryFrame;
        expect(page.latestSeq).to.equal(5);
        expect(page).to.not.have.property("complete");
        pages.push(page.messages.map((m) => m.seq));
        if (!page.more) break;
        before = page.messages[0]!.seq;
      }
      expect(pages).to.deep.equal([[4, 5], [2, 3], [1]]);
      // Without a limit: the newest 50, i.e. all five, with their data.
      await send(sender, { action: "history", room: "lobby" });
      const all = (await until(sender, (f) => f.type === "history")) as unknown as HistoryFrame;
      expect(all.messages.map((m) => m.data)).to.deep.equal(["m1", "m2", "m3", "m4", "m5"]);
      expect(all.more).to.equal(false);

      await send(stranger, { action: "history", room: "lobby" });
      expect(await stranger.nextJson()).to.include({ type: "error", code: "NotInRoom", room: "lobby" });
    });

    it("acknowledges a send with a ref and does not deliver the same ref twice", async () => {
      gw = await gatewayFor(await newStore());
      const a = await joined(gw, "lobby");
      const b = await joined(gw, "lobby");
      clients.push(a, b);
      await send(a, { action: "sendmessage", room: "lobby", data: "once", ref: "ref-1" });
      const ack = (await until(a, (f) => f.type === "ack")) as unknown as AckFrame;
      const delivered = (await until(b, (f) => f.type === "message")) as unknown as MessageFrame;
      expect(ack).to.deep.equal({ type: "ack", ref: "ref-1", id: delivered.id, seq: delivered.seq, room: "lobby" });
      expect(delivered.seq).to.equal(1);

      await send(a, { action: "sendmessage", room: "lobby", data: "once", ref: "ref-1" });
      const again = await until(a, (f) => f.type === "ack");
      expect(again).to.deep.equal({ ...ack, duplicate: true });
      expect(await b.quiet(300)).to.deep.equal([]);
      // The history holds it once.
      await send(b, { action: "history", room: "lobby" });
      const page = (await until(b, (f) => f.type === "history")) as unknown as HistoryFrame;
      expect(page.messages.map((m) => m.id)).to.deep.equal([delivered.id]);

      // Room-less and direct sends: an ack without seq, and a duplicate not delivered.
      await send(a, { action: "sendmessage", data: { t: "everyone" }, ref: "ref-2" });
      const broadcastAck = await until(a, (f) => f.type === "ack");
      expect(broadcastAck).to.include({ ref: "ref-2" }).and.not.have.property("seq");
      // b is a plain client: room-less data as is.
      expect(await until(b, (f) => f.t !== undefined)).to.deep.equal({ t: "everyone" });
      await send(a, { action: "sendmessage", data: { t: "everyone" }, ref: "ref-2" });
      expect(await until(a, (f) => f.type === "ack")).to.include({ ref: "ref-2", duplicate: true });
      await send(a, { action: "sendto", to: b.connectionId, data: "psst", ref: "ref-3" });
      const direct = await until(b, (f) => f.type === "direct");
      expect(await until(a, (f) => f.type === "ack")).to.deep.equal({ type: "ack", ref: "ref-3", id: direct.id });
      await send(a, { action: "sendto", to: b.connectionId, data: "psst", ref: "ref-3" });
      expect(await until(a, (f) => f.type === "ack")).to.include({ ref: "ref-3", duplicate: true, id: direct.id });
      expect(await b.quiet(300)).to.deep.equal([]);

      // Without auth, a short ref is one connection's: another connection's same ref is a new message.
      await send(b, { action: "sendmessage", room: "lobby", data: "mine", ref: "ref-1" });
      expect(await until(b, (f) => f.type === "ack"))
        .to.include({ ref: "ref-1", seq: 2 })
        .and.not.have.property("duplicate");
    });

    it("without auth, recognises a long ref resent from the next connection, to the same destination only", async () => {
      gw = await gatewayFor(await newStore());
      const watcher = await joined(gw, "lobby");
      const first = await joined(gw, "lobby");
      clients.push(watcher, first);
      // 16 random bytes, as the SDK makes them: too long to guess, so shared by every anonymous connection.
      const ref = randomBytes(16).toString("hex");
      expect(ref.length).to.be.at.least(SHARED_SEND_REF_MIN_LENGTH);
      await send(first, { action: "sendmessage", room: "lobby", data: "hello", ref });
      const ack = (await until(first, (f) => f.type === "ack")) as unknown as AckFrame;
      const delivered = (await until(watcher, (f) => f.type === "message")) as unknown as MessageFrame;
      expect(ack).to.include({ id: delivered.id, seq: delivered.seq });
      await first.close();
      // The ack was lost with the connection (say); the client resends from its next one.
      const second = await joined(gw, "lobby");
      clients.push(second);
      await send(second, { action: "sendmessage", room: "lobby", data: "hello", ref });
      expect(await until(second, (f) => f.type === "ack")).to.deep.equal({ ...ack, duplicate: true });
      expect((await watcher.quiet(300)).filter((t) => JSON.parse(t).type === "message")).to.deep.equal([]);
      // The same ref to another room, to one connection or to everyone is another send, never the lobby's ack.
      const other = `other-${randomBytes(4).toString("hex")}`;
      await send(second, { action: "join", room: other });
      await until(second, (f) => f.type === "members");
      await send(second, { action: "sendmessage", room: other, data: "elsewhere", ref });
      expect(await until(second, (f) => f.type === "ack"))
        .to.include({ ref, room: other, seq: 1 })
        .and.not.have.property("duplicate");
      await send(second, { action: "sendto", to: watcher.connectionId, data: "psst", ref });
      const direct = await until(watcher, (f) => f.type === "direct");
      expect(await until(second, (f) => f.type === "ack")).to.deep.equal({ type: "ack", ref, id: direct.id });
    });

    it("answers bad after, limit, before and ref with specific errors that carry the message's ref", async () => {
      gw = await gatewayFor(await newStore());
      const c = await joined(gw, "lobby");
      clients.push(c);
      const cases: [Record<string, unknown>, Frame][] = [
        [
          { action: "join", room: "lobby", after: -1 },
          { code: "InvalidHistoryQuery", field: "after" },
        ],
        [
          { action: "join", room: "lobby", after: "5" },
          { code: "InvalidHistoryQuery", field: "after" },
        ],
        [
          { action: "history", room: "lobby", limit: 0 },
          { code: "InvalidHistoryQuery", field: "limit", limit: 100 },
        ],
        [
          { action: "history", room: "lobby", limit: 101 },
          { code: "InvalidHistoryQuery", limit: 100 },
        ],
        [
          { action: "history", room: "lobby", limit: 1.5 },
          { code: "InvalidHistoryQuery", field: "limit" },
        ],
        [
          { action: "history", room: "lobby", before: 0 },
          { code: "InvalidHistoryQuery", field: "before" },
        ],
        [{ action: "history", room: "lobby", before: 3, after: 1 }, { code: "InvalidHistoryQuery" }],
        [{ action: "sendmessage", room: "lobby", data: "x", ref: "has space" }, { code: "InvalidRef" }],
        [{ action: "sendmessage", room: "lobby", data: "x", ref: "r".repeat(65) }, { code: "InvalidRef" }],
        [{ action: "sendto", to: "nobody", data: "x", ref: "" }, { code: "InvalidRef" }],
        // A mistake in a message with a valid ref: the error carries the ref, so a client can fail that send.
        [
          { action: "sendmessage", room: "elsewhere", data: "x", ref: "ref-9" },
          { code: "NotInRoom", ref: "ref-9" },
        ],
        [
          { action: "sendmessage", room: "lobby", ref: "ref-8" },
          { code: "MissingData", ref: "ref-8" },
        ],
      ];
      for (const [body, expected] of cases) {
        await send(c, body);
        const frame = await until(c, (f) => f.type === "error");
        expect(frame, JSON.stringify(body)).to.include({ type: "error", retryable: false, ...expected });
        if (expected.code === "InvalidRef") expect(frame).to.not.have.property("ref");
      }
      expect(await c.quiet(200)).to.deep.equal([]);
    });

    it("answers ping with pong, freshens lastSeenAt, and re-adds a record the store lost", async () => {
      const store = await newStore();
      gw = await gatewayFor(store);
      const c = await openChatClient(gw);
      clients.push(c);
      const id = c.connectionId!;
      expect((await store.get(id))?.lastSeenAt).to.equal(undefined);
      const before = Date.now();
      await send(c, { action: "ping" });
      const pong = await c.nextJson();
      expect(pong).to.have.all.keys("type", "ts");
      expect(pong.type).to.equal("pong");
      expect(pong.ts).to.be.within(before, Date.now());
      expect((await store.get(id))?.lastSeenAt).to.equal(pong.ts);

      await store.remove(id);
      await send(c, { action: "ping" });
      const healed = await c.nextJson();
      expect(healed.type).to.equal("pong");
      const record = await store.get(id);
      expect(record?.connectionId).to.equal(id);
      expect(record?.lastSeenAt).to.equal(healed.ts);
    });
  });

  describe("a ref across a reconnect, with auth (memory store)", () => {
    let idp: TestIdp;
    let gw: AuthGateway | undefined;
    before(async () => {
      idp = await startTestIdp();
    });
    after(async () => {
      await gw?.stop();
    });

    it("does not deliver a resend from the same user's next connection", async () => {
      gw = await startAuthGateway(new MemoryConnectionStore(), idp, { messages: 1000, userMessages: 1000 });
      const watcher = await gw.connect("watcher");
      await send(watcher, { action: "join", room: "lobby" });
      await until(watcher, (f) => f.type === "members");
      const first = await gw.connect("alice");
      await send(first, { action: "join", room: "lobby" });
      await until(first, (f) => f.type === "members");
      await send(first, { action: "sendmessage", room: "lobby", data: "hello", ref: "outbox-1" });
      const ack = await until(first, (f) => f.type === "ack");
      const delivered = await until(watcher, (f) => f.type === "message");
      await first.close();
      // The client did not see the ack (say) and resends from its next connection.
      const second = await gw.connect("alice");
      await send(second, { action: "join", room: "lobby", after: 0 });
      await until(second, (f) => f.type === "history");
      await send(second, { action: "sendmessage", room: "lobby", data: "hello", ref: "outbox-1" });
      expect(await until(second, (f) => f.type === "ack")).to.deep.equal({ ...ack, duplicate: true });
      expect((await watcher.quiet(300)).filter((t) => JSON.parse(t).type === "message")).to.deep.equal([]);
      expect(ack).to.include({ id: delivered.id, seq: delivered.seq });
      // Another user's same ref is theirs.
      const bob = await gw.connect("bob");
      await send(bob, { action: "join", room: "lobby" });
      await until(bob, (f) => f.type === "members");
      await send(bob, { action: "sendmessage", room: "lobby", data: "hi", ref: "outbox-1" });
      expect(await until(bob, (f) => f.type === "ack")).to.not.have.property("duplicate");
      for (const c of [watcher, second, bob]) await c.close();
    });
  });
});
