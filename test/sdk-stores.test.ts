/**
 * The SDK's promise, end to end on every store (memory, a spawned Redis, DynamoDB on dynalite): whatever takes
 * its connection away (a signed `DELETE @connections` of its own connection, the idle timeout, the maximum
 * connection duration, a gateway restart on the same address), every message several concurrent senders sent
 * while it was away is shown once and in seq order, and what it sent while offline is delivered once.
 */
import { DeleteConnectionCommand } from "@aws-sdk/client-apigatewaymanagementapi";
import { expect } from "chai";
import type { ConnectionStore } from "../contract/connection-store";
import type { MessageFrame } from "../contract/frames";
import type { GatewayLimits } from "../local/limits";
import { type Ack, ChatClient, type ChatClientOptions, type MessageEvent } from "../sdk";
import { type ChatGateway, managementClient, startBurstGateway, waitFor } from "./support/gateway";
import { gatedSocket } from "./support/sdk-socket";
import { forEachOpenedStore, type OpenedStore } from "./support/store-matrix";

const ROOM = "lobby";
const pause = (ms: number) => new Promise((resolve) => setTimeout(resolve, ms));

/** The gateway with the real handlers on `store`, rate limits out of the way of a test that sends in bursts. */
const gatewayOn = (store: ConnectionStore, options: { port?: number; limits?: Partial<GatewayLimits> } = {}) =>
  startBurstGateway(store, options);

/** An SDK client recording what it shows, who it is and which gaps it reported. */
class Watched {
  readonly client: ChatClient;
  readonly shown: MessageFrame[] = [];
  readonly identities: string[] = [];
  readonly gaps: number[] = [];
  readonly gate = { offline: false };

  constructor(url: string, options: Partial<ChatClientOptions> = {}) {
    this.client = new ChatClient({
      url,
      WebSocket: gatedSocket(this.gate),
      reconnect: { baseMs: 20, capMs: 200 },
      requestTimeoutMs: 2_000,
      ...options,
    });
    this.client.on("message", (m: MessageEvent) => {
      if (m.type === "message" && m.room === ROOM) this.shown.push(m);
    });
    this.client.on("identity", (who) => this.identities.push(who.connectionId));
    this.client.on("gap", (gap) => this.gaps.push(gap.afterSeq));
  }

  async start(): Promise<void> {
    this.client.connect();
    await this.client.join(ROOM);
  }

  /** Waits until the client shows every message in `ids`. */
  async shows(ids: readonly string[], what: string, timeoutMs = 15_000): Promise<void> {
    await waitFor(
      () => {
        const shown = new Set(this.shown.map((m) => m.id));
        return ids.every((id) => shown.has(id)) ? true : undefined;
      },
      timeoutMs,
      `${what}: ${ids.filter((id) => !this.shown.some((m) => m.id === id)).length} of ${ids.length} not shown`,
    );
  }

  /** Waits until the client is not connected (it noticed its connection went). */
  async away(): Promise<void> {
    await waitFor(() => (this.client.state !== "open" ? true : undefined), 5_000, "the SDK to notice the drop");
  }
}

/** `count` messages from each sender, all at once (concurrent invocations); resolves with every ack. */
async function burst(senders: readonly Watched[], count: number, label: string): Promise<Ack[]> {
  const acks = await Promise.all(
    senders.flatMap((sender, who) =>
      Array.from({ length: count }, (_, i) => sender.client.send(ROOM, `${label}-${who}-${i}`)),
    ),
  );
  return acks;
}

/**
 * What `reader` showed from its first message on: consecutive seqs (each once, in order), every id once, and
 * every acknowledged message among them. A memory store forgets its numbering on a restart, so `runs` > 1 allows
 * the seqs to start again from 1 that often.
 */
function expectOnceInOrder(reader: Watched, acks: readonly Ack[], runs = 1): void {
  const seqs = reader.shown.map((m) => m.seq);
  const ids = reader.shown.map((m) => m.id);
  expect(new Set(ids).size, "each message shown once").to.equal(ids.length);
  let restarts = 0;
  for (let i = 1; i < seqs.length; i++) {
    if (seqs[i] === seqs[i - 1]! + 1) continue;
    if (seqs[i] === 1 && restarts < runs - 1) {
      restarts++;
      continue;
    }
    expect.fail(`shown out of order or with a gap at position ${i}: ${seqs.slice(Math.max(0, i - 3), i + 3)}`);
  }
  const shown = new Set(ids);
  const missing = acks.filter((ack) => !shown.has(ack.id));
  expect(
    missing.map((a) => a.id),
    "every acknowledged message shown",
  ).to.deep.equal([]);
  // A resend after an acknowledgement lost with its connection is acknowledged as a duplicate (the same id); it is
  // never a second message.
  const data = reader.shown.map((m) => JSON.stringify(m.data));
  expect(new Set(data).size, "each send delivered once").to.equal(data.length);
}

describe("SDK across forced reconnects on every store", function () {
  this.timeout(60_000);

  forEachOpenedStore((open) => {
    let gw: ChatGateway | undefined;
    const clients: Watched[] = [];
    afterEach(async () => {
      for (const watched of clients.splice(0)) watched.client.close();
      await gw?.stop();
      gw = undefined;
    });

    async function party(
      url: string,
      senders: number,
      readerOptions: Partial<ChatClientOptions> = {},
      senderOptions: Partial<ChatClientOptions> = {},
    ) {
      const reader = new Watched(url, readerOptions);
      const others = Array.from({ length: senders }, () => new Watched(url, senderOptions));
      clients.push(reader, ...others);
      await Promise.all([reader, ...others].map((w) => w.start()));
      return { reader, senders: others };
    }

    it("DELETE @connections of its own connection: what concurrent senders sent meanwhile, once and in order", async () => {
      const opened: OpenedStore = await open();
      gw = await gatewayOn(opened.store);
      const { reader, senders } = await party(gw.gateway.url, 3);
      const early = await burst(senders, 2, "early");
      await reader.shows(
        early.map((a) => a.id),
        "the early messages",
      );
      // A second reader joins a room with history and is dropped before it has seen a single message: its count
      // starts at where the room stood when it joined.
      const fresh = new Watched(gw.gateway.url);
      clients.push(fresh);
      await fresh.start();

      reader.gate.offline = true;
      fresh.gate.offline = true;
      const api = managementClient(gw.gateway.callbackUrl);
      try {
        for (const watched of [reader, fresh]) {
          const id = await waitFor(() => watched.identities[0], 5_000, "whoami");
          await api.send(new DeleteConnectionCommand({ ConnectionId: id }));
        }
      } finally {
        api.destroy();
      }
      await reader.away();
      await fresh.away();
      fresh.gate.offline = false;
      const away = await burst(senders, 5, "away");
      const queued = [reader.client.send(ROOM, "queued-1"), reader.client.send(ROOM, "queued-2")];
      reader.gate.offline = false;
      const mine = await Promise.all(queued);
      const after = await burst(senders, 2, "after");
      const all = [...early, ...away, ...mine, ...after];
      await reader.shows(
        all.map((a) => a.id),
        "everything",
      );
      await pause(150);
      expect(reader.identities.length).to.be.at.least(2);
      expectOnceInOrder(reader, all);
      const sinceFresh = [...away, ...mine, ...after];
      await fresh.shows(
        sinceFresh.map((a) => a.id),
        "what the fresh reader missed",
      );
      expect(fresh.shown[0]?.seq, "the fresh reader's first").to.equal(early.length + 1);
      expectOnceInOrder(fresh, sinceFresh);
      // The senders saw the reader's queued sends once each.
      for (const sender of senders) {
        await sender.shows(
          mine.map((a) => a.id),
          "the queued sends",
        );
        expect(sender.shown.filter((m) => m.data === "queued-1")).to.have.length(1);
      }
    });

    it("the idle timeout and the maximum connection duration: nothing lost or repeated", async () => {
      const opened = await open();
      gw = await gatewayOn(opened.store, { limits: { idleTimeoutMs: 500, maxConnectionMs: 1_200 } });
      // The reader has no heartbeat and no renewal: the gateway's limits close it, over and over. The senders keep
      // themselves alive and renew before the limit.
      const { reader, senders } = await party(
        gw.gateway.url,
        3,
        { heartbeatMs: 60_000, renewAfterMs: 3_600_000 },
        { heartbeatMs: 150, renewAfterMs: 1_000 },
      );
      const acks: Ack[] = [];
      const until = Date.now() + 3_000;
      let round = 0;
      while (Date.now() < until) {
        acks.push(...(await burst(senders, 1, `r${round++}`)));
        // Now and then silent for longer than the idle timeout.
        await pause(round % 5 === 0 ? 700 : 40);
      }
      await reader.shows(
        acks.map((a) => a.id),
        "every message",
      );
      await pause(150);
      expect(reader.identities.length, "the limits closed the reader").to.be.at.least(2);
      expectOnceInOrder(reader, acks);
    });

    it("rejoins a room whose membership the store forgot, and delivers the refused send once", async () => {
      const opened = await open();
      gw = await gatewayOn(opened.store);
      const { reader, senders } = await party(gw.gateway.url, 1);
      const first = await burst(senders, 2, "first");
      await reader.shows(
        first.map((a) => a.id),
        "the first",
      );
      const id = await waitFor(() => reader.identities[0], 5_000, "whoami");
      // The store lost the membership (a Redis that restarted without persistence, say); the connection stays.
      expect(await opened.store.leave(id, ROOM)).to.equal(true);
      const missed = await burst(senders, 2, "missed");
      const mine = await reader.client.send(ROOM, "after-forgetting");
      const all = [...first, ...missed, mine];
      await reader.shows(
        all.map((a) => a.id),
        "everything",
      );
      await pause(100);
      expect(reader.identities, "the same connection").to.have.length(1);
      expectOnceInOrder(reader, all);
      expect(senders[0]!.shown.filter((m) => m.data === "after-forgetting")).to.have.length(1);
    });

    it("a gateway restart on the same address and store: what was sent before and after, once and in order", async () => {
      const opened = await open();
      gw = await gatewayOn(opened.store);
      const port = gw.gateway.port;
      const { reader, senders } = await party(gw.gateway.url, 3);
      const before = await burst(senders, 3, "before");
      await reader.shows(
        before.map((a) => a.id),
        "the first messages",
      );

      reader.gate.offline = true;
      await gw.stop();
      // While the gateway is down, senders queue; the reader queues too.
      const queuedBySenders = senders.map((s, who) => s.client.send(ROOM, `while-down-${who}`));
      const queued = reader.client.send(ROOM, "reader-while-down");
      await pause(100);
      gw = await gatewayOn(await opened.reopen(), { port });
      const down = await Promise.all(queuedBySenders);
      const away = await burst(senders, 3, "restarted");
      reader.gate.offline = false;
      const mine = await queued;
      const after = await burst(senders, 1, "after");
      const sinceRestart = [...down, ...away, mine, ...after];
      await reader.shows(
        sinceRestart.map((a) => a.id),
        "what was sent since the restart",
      );
      await pause(150);
      if (opened.name === "memory") {
        // The numbering started again with the store: the SDK said so (a gap: it cannot know what the old
        // numbering still had) and counted from the new start.
        expect(reader.gaps.length, "a gap reported").to.be.at.least(1);
        expectOnceInOrder(reader, [...before, ...sinceRestart], 2);
      } else {
        expect(reader.gaps).to.deep.equal([]);
        expectOnceInOrder(reader, [...before, ...sinceRestart]);
      }
    });
  });
});
