/**
 * The SDK's parts on their own: the backoff's bounds, the connection state table, the outbox's ack / refusal rules,
 * the id de-duplication and the room cursors that make a resume seamless. The client end to end against the local
 * gateway is test/sdk.test.ts.
 */
import { expect } from "chai";
import { DEFAULT_BACKOFF, fullJitterDelay } from "../sdk/backoff";
import { ChatError } from "../sdk/chat-error";
import { type ConnectionEvent, type ConnectionState, transition } from "../sdk/connection-state";
import { Outbox } from "../sdk/outbox";
import type { MessageFrame } from "../sdk/protocol";
import { RoomCursors } from "../sdk/room-cursors";
import { RoomRequests } from "../sdk/room-requests";
import { SeenIds } from "../sdk/seen-ids";
import { unexpectedFrameError } from "../sdk/unexpected-frame";

const message = (room: string, seq: number): MessageFrame => ({
  type: "message",
  room,
  seq,
  id: `m${seq}`,
  from: "c1",
  data: seq,
  ts: seq,
});

describe("SDK parts", () => {
  describe("full-jitter backoff", () => {
    it("stays within [0, min(cap, base * 2^(attempt-1))) and reaches the cap", () => {
      for (let attempt = 1; attempt <= 12; attempt++) {
        const ceiling = Math.min(DEFAULT_BACKOFF.capMs, DEFAULT_BACKOFF.baseMs * 2 ** (attempt - 1));
        expect(fullJitterDelay(attempt, {}, () => 0)).to.equal(0);
        expect(fullJitterDelay(attempt, {}, () => 0.999999)).to.equal(Math.floor(0.999999 * ceiling));
      }
      expect(fullJitterDelay(50, { baseMs: 100, capMs: 2_000 }, () => 0.5)).to.equal(1_000);
    });
  });

  describe("connection states", () => {
    const states: ConnectionState[] = ["idle", "connecting", "open", "reconnecting", "closed"];
    const events: ConnectionEvent[] = ["connect", "opened", "failed", "lost", "retry", "close"];

    it("allows exactly the documented moves", () => {
      const moves = states.flatMap((s) => events.map((e) => [s, e, transition(s, e)] as const)).filter((m) => m[2]);
      expect(moves.map((m) => m.join(" "))).to.have.members([
        "idle connect connecting",
        "idle close closed",
        "connecting opened open",
        "connecting failed reconnecting",
        "connecting close closed",
        "open lost reconnecting",
        "open close closed",
        "reconnecting retry connecting",
        "reconnecting close closed",
      ]);
    });

    it("is final once closed", () => {
      for (const event of events) expect(transition("closed", event)).to.equal(undefined);
    });
  });

  describe("outbox", () => {
    it("resends unacknowledged frames with the same ref, in order, and settles each on its ack", async () => {
      const outbox = new Outbox(10);
      const first = outbox.add("r1", { action: "sendmessage", data: 1 });
      const second = outbox.add("r2", { action: "sendmessage", data: 2 });
      expect(outbox.due(0)).to.deep.equal([
        { action: "sendmessage", data: 1, ref: "r1" },
        { action: "sendmessage", data: 2, ref: "r2" },
      ]);
      expect(outbox.acknowledge({ ref: "r2", id: "m2" })).to.equal(true);
      expect(await second).to.deep.equal({ ref: "r2", id: "m2" });
      expect(outbox.due(0)).to.deep.equal([{ action: "sendmessage", data: 1, ref: "r1" }]);
      expect(outbox.acknowledge({ ref: "r2", id: "m2" })).to.equal(false);
      outbox.acknowledge({ ref: "r1", id: "m1", seq: 7, room: "lobby" });
      expect(await first).to.deep.equal({ ref: "r1", id: "m1", seq: 7, room: "lobby" });
    });

    it("pauses a retryable refusal and fails a final one", async () => {
      const outbox = new Outbox(10);
      const limited = outbox.add("r1", { action: "sendmessage", data: 1 });
      const tooLarge = outbox.add("r2", { action: "sendmessage", data: 2 });
      outbox.refuse("r1", new ChatError("RateLimited", "slow down", true), 1_000, 500);
      outbox.refuse("r2", new ChatError("PayloadTooLarge", "too big", false), 1_000);
      const error = await tooLarge.then(
        () => undefined,
        (e: ChatError) => e,
      );
      expect(error?.code).to.equal("PayloadTooLarge");
      expect(outbox.due(1_499)).to.deep.equal([]);
      expect(outbox.due(1_500)).to.have.length(1);
      outbox.acknowledge({ ref: "r1", id: "m1" });
      expect((await limited).id).to.equal("m1");
    });

    it("refuses past its capacity with a retryable QueueFull", async () => {
      const outbox = new Outbox(1);
      void outbox.add("r1", {});
      const error = await outbox.add("r2", {}).catch((e: ChatError) => e);
      expect(error).to.be.instanceOf(ChatError);
      expect((error as ChatError).code).to.equal("QueueFull");
      expect((error as ChatError).retryable).to.equal(true);
    });
  });

  it("SeenIds admits an id once and forgets the oldest past its capacity", () => {
    const seen = new SeenIds(2);
    expect([seen.admit("a"), seen.admit("a"), seen.admit("b"), seen.admit("c")]).to.deep.equal([
      true,
      false,
      true,
      true,
    ]);
    expect(seen.size).to.equal(2);
    expect(seen.admit("a")).to.equal(true);
    expect(seen.admit("c")).to.equal(false);
  });

  it("names a frame that is not the server's: API Gateway's own as GatewayError, anything else as UnexpectedFrame", () => {
    const gateway = unexpectedFrameError('{"message":"Internal server error","connectionId":"c1","requestId":"r1"}');
    expect([gateway.code, gateway.message, gateway.retryable]).to.deep.equal([
      "GatewayError",
      "API Gateway: Internal server error",
      false,
    ]);
    expect(gateway.frame).to.deep.equal({ message: "Internal server error", connectionId: "c1", requestId: "r1" });
    const raw = unexpectedFrameError(`hello ${"x".repeat(500)}`);
    expect(raw.code).to.equal("UnexpectedFrame");
    expect(raw.message).to.equal(`Unexpected frame from the server: hello ${"x".repeat(194)}`);
    expect(unexpectedFrameError("[1,2]").code).to.equal("UnexpectedFrame");
    // A JSON object with an unknown type is not API Gateway's, whatever its `message` says.
    expect(unexpectedFrameError('{"type":"party","message":"hi"}').code).to.equal("UnexpectedFrame");
  });

  describe("room cursors", () => {
    it("moves the watermark over contiguous runs only, whatever the arrival order", () => {
      const cursors = new RoomCursors();
      cursors.track("r");
      for (const seq of [1, 3, 4]) cursors.offer(message("r", seq));
      expect(cursors.watermarkOf("r")).to.equal(1);
      cursors.offer(message("r", 2));
      expect(cursors.watermarkOf("r")).to.equal(4);
    });

    it("holds live messages during a resume, asks for more while a page says so, then shows all in order", () => {
      const cursors = new RoomCursors();
      cursors.track("r");
      cursors.offer(message("r", 1));
      // One below the watermark: the page repeats the message at the watermark, to check the numbering.
      expect(cursors.beginResume("r")).to.equal(0);
      expect(cursors.offer(message("r", 5))).to.deep.equal([]);
      const page = { type: "history", room: "r", latestSeq: 5 } as const;
      const part = cursors.resumed({ ...page, messages: [message("r", 2)], more: true, complete: true });
      expect(part).to.deep.equal({ kind: "more", after: 2 });
      // The seam: 4 came live and in the page; it is shown once.
      expect(cursors.offer(message("r", 4))).to.deep.equal([]);
      const done = cursors.resumed({
        ...page,
        messages: [message("r", 3), message("r", 4)],
        more: false,
        complete: true,
      });
      if (done.kind !== "done") throw new Error("expected done");
      expect(done.messages.map((m) => m.seq)).to.deep.equal([2, 3, 4, 5]);
      expect(done.gap).to.equal(undefined);
      expect(cursors.watermarkOf("r")).to.equal(5);
      // After the resume, a live repeat of a seen seq is dropped.
      expect(cursors.offer(message("r", 5))).to.deep.equal([]);
      expect(cursors.offer(message("r", 6))).to.have.length(1);
    });

    it("holds a message that arrives ahead of its turn and shows it in order; asks history for a gap that stays", () => {
      const cursors = new RoomCursors();
      cursors.track("r");
      expect(cursors.offer(message("r", 1)).map((m) => m.seq)).to.deep.equal([1]);
      expect(cursors.offer(message("r", 3))).to.deep.equal([]);
      expect(cursors.offer(message("r", 2)).map((m) => m.seq)).to.deep.equal([2, 3]);
      expect(cursors.offer(message("r", 2))).to.deep.equal([]);
      // 5 without 4: a gap the client repairs from history.
      expect(cursors.offer(message("r", 5))).to.deep.equal([]);
      expect(cursors.hasGap("r")).to.equal(true);
      expect(cursors.beginRepair("r")).to.equal(3);
      expect(cursors.offer(message("r", 6))).to.deep.equal([]);
      const done = cursors.resumed({
        type: "history",
        room: "r",
        messages: [message("r", 4), message("r", 5)],
        latestSeq: 6,
        more: false,
        complete: true,
      });
      expect(done).to.deep.equal({ kind: "done", messages: [4, 5, 6].map((n) => message("r", n)) });
      expect(cursors.hasGap("r")).to.equal(false);
    });

    it("reports a gap when the history no longer reaches back, and restarts the watermark there", () => {
      const cursors = new RoomCursors();
      cursors.track("r");
      cursors.offer(message("r", 1));
      cursors.beginResume("r");
      const done = cursors.resumed({
        type: "history",
        room: "r",
        messages: [message("r", 40), message("r", 41)],
        latestSeq: 41,
        more: false,
        complete: false,
      });
      if (done.kind !== "done") throw new Error("expected done");
      expect(done.gap).to.equal(1);
      expect(done.messages.map((m) => m.seq)).to.deep.equal([40, 41]);
      expect(cursors.watermarkOf("r")).to.equal(41);
    });

    it("starts a first join's count at the room's latest seq, holding live messages until it is known", () => {
      const cursors = new RoomCursors();
      cursors.track("r");
      expect(cursors.beginResume("r")).to.equal(undefined);
      expect(cursors.needsBaseline("r")).to.equal(true);
      expect(cursors.offer(message("r", 9))).to.deep.equal([]);
      const done = cursors.resumed({
        type: "history",
        room: "r",
        messages: [message("r", 7)],
        latestSeq: 7,
        more: false,
      });
      expect(done).to.deep.equal({ kind: "done", messages: [] });
      expect(cursors.watermarkOf("r")).to.equal(7);
      expect(cursors.offer(message("r", 8)).map((m) => m.seq)).to.deep.equal([8, 9]);
      // Dropped now, it resumes from there.
      expect(cursors.beginResume("r")).to.equal(8);
    });

    it("starts over when the room's numbering started again (a store that lost its data), and says so", () => {
      const cursors = new RoomCursors();
      cursors.track("r");
      cursors.offer(message("r", 1));
      cursors.offer(message("r", 2));
      cursors.offer(message("r", 3));
      expect(cursors.beginResume("r")).to.equal(2);
      const renumbered = { ...message("r", 3), id: "other" };
      const step = cursors.resumed({
        type: "history",
        room: "r",
        messages: [renumbered],
        latestSeq: 3,
        more: false,
        complete: true,
      });
      expect(step).to.deep.equal({ kind: "more", after: 0 });
      const fresh = [1, 2, 3].map((n) => ({ ...message("r", n), id: `new${n}` }));
      const done = cursors.resumed({ type: "history", room: "r", messages: fresh, latestSeq: 3, more: false });
      expect(done).to.deep.equal({ kind: "done", messages: fresh, gap: 3 });
      expect(cursors.watermarkOf("r")).to.equal(3);
    });
  });

  describe("room requests", () => {
    /** Requests with a hand-driven clock: `fire()` runs every timer that is due. */
    function harness() {
      const written: unknown[] = [];
      let timers: { at: number; run: () => void }[] = [];
      let now = 0;
      const requests = new RoomRequests(
        {
          write: (frame) => written.push(frame),
          schedule: (ms, run) => {
            const timer = { at: now + ms, run };
            timers.push(timer);
            return () => {
              timers = timers.filter((t) => t !== timer);
            };
          },
        },
        100,
      );
      const advance = (ms: number) => {
        now += ms;
        for (const timer of timers.filter((t) => t.at <= now)) {
          timers = timers.filter((t) => t !== timer);
          timer.run();
        }
      };
      return { requests, written, advance };
    }

    it("sends a request again when its answer does not come in time, and not once it has", () => {
      const { requests, written, advance } = harness();
      const join = { action: "join", room: "r", after: 4 };
      requests.ask("r", join, "history");
      advance(99);
      expect(written).to.have.length(1);
      advance(1);
      expect(written).to.deep.equal([join, join]);
      // The first answer settles it; the late second one is still recognised as ours.
      expect(requests.history("r")).to.equal(true);
      expect(requests.of("r")).to.equal(undefined);
      expect(requests.history("r")).to.equal(true);
      expect(requests.history("r"), "a page the application asked for").to.equal(false);
      advance(1_000);
      expect(written).to.have.length(2);
    });

    it("asks again after a retryable refusal, gives a final one back, and forgets everything with the connection", () => {
      const { requests, written, advance } = harness();
      const page = { action: "history", room: "r", after: 2 };
      requests.ask("r", page, "history");
      expect(requests.refused("r", true, 30)).to.deep.include({ frame: page });
      advance(30);
      expect(written).to.deep.equal([page, page]);
      expect(requests.refused("r", false)?.frame).to.equal(page);
      expect(requests.of("r")).to.equal(undefined);
      requests.ask("q", { action: "join", room: "q" }, "members");
      requests.members("q");
      expect(requests.of("q")).to.equal(undefined);
      requests.ask("q", { action: "join", room: "q", after: 1 }, "history");
      requests.clear();
      advance(1_000);
      expect(written).to.have.length(4);
      expect(requests.history("q")).to.equal(false);
    });
  });
});
