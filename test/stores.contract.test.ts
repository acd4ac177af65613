/**
 * One contract, three backends: every ConnectionStore must pass the same suite. Redis runs against a spawned
 * redis-server (or REDIS_URL), DynamoDB against in-process dynalite.
 */
import { randomUUID } from "node:crypto";
import { createServer, type Server, type Socket } from "node:net";
import { MessageChannel } from "node:worker_threads";
import { type DynamoDBClient, GetItemCommand } from "@aws-sdk/client-dynamodb";
import { expect } from "chai";
import { Redis } from "ioredis";
import { createStore } from "../app/store-from-env";
import {
  type ConnectionRecord,
  type ConnectionStore,
  meterKey,
  PROTOCOL_ATTRIBUTE,
} from "../contract/connection-store";
import { SEND_SCOPE_MAX_LENGTH } from "../contract/room-history";
import { bridgedStore, serveStore } from "../local/store-bridge";
import { createDynamoDbClient, DynamoDbConnectionStore } from "../stores/dynamodb";
import { MemoryConnectionStore } from "../stores/memory";
import { RedisConnectionStore } from "../stores/redis";
import { createConnectionsTable, localDynamoDbClient, startDynalite, type TestDynamoDb } from "./support/dynalite";
import { freePort, startRedis, type TestRedis } from "./support/redis-server";
import { startUnprocessingProxy } from "./support/unprocessing-proxy";

const HOUR_MS = 60 * 60 * 1000;

/**
 * A fresh memory store as a handler worker thread reaches the gateway's (local/store-bridge.ts): every call crosses
 * a MessagePort, here within one thread, which changes nothing the bridge does.
 */
function bridgedMemoryStore(): ConnectionStore {
  const served = new MemoryConnectionStore();
  const { port1, port2 } = new MessageChannel();
  serveStore(port1, () => served);
  return bridgedStore(port2, "memory");
}

function record(connectionId: string, overrides: Partial<ConnectionRecord> = {}): ConnectionRecord {
  const now = Date.now();
  return { connectionId, connectedAt: now, expiresAt: now + HOUR_MS, ...overrides };
}

function ids(count: number, prefix = "c"): string[] {
  return Array.from({ length: count }, (_, i) => `${prefix}-${String(i).padStart(5, "0")}-${randomUUID().slice(0, 8)}`);
}

/** Adds with bounded concurrency: seeding thousands must not open thousands of sockets at once. */
async function addAll(store: ConnectionStore, connectionIds: readonly string[], concurrency = 64): Promise<void> {
  let next = 0;
  const worker = async () => {
    while (next < connectionIds.length) await store.add(record(connectionIds[next++]!));
  };
  await Promise.all(Array.from({ length: concurrency }, worker));
}

/** Drains a listing, checking the page invariants on the way. */
async function listAll(store: ConnectionStore, pageSize?: number): Promise<string[]> {
  const limit = pageSize ?? 500;
  const seen: string[] = [];
  for await (const page of store.list(pageSize === undefined ? undefined : { pageSize })) {
    expect(page, "page").to.be.an("array").that.is.not.empty;
    expect(page.length, "page length").to.be.at.most(limit);
    seen.push(...page);
  }
  return seen;
}

function expectExactlyOnce(listed: readonly string[], expected: readonly string[]): void {
  expect(new Set(listed).size, "duplicates in listing").to.equal(listed.length);
  expect([...listed].sort()).to.deep.equal([...expected].sort());
}

/** Polls `read` until it deep-equals `expected` (a GSI catching up), failing with the last value after 5 s. */
async function eventuallyEqual<T>(read: () => Promise<T>, expected: T): Promise<void> {
  const deadline = Date.now() + 5_000;
  let last = await read();
  while (JSON.stringify(last) !== JSON.stringify(expected) && Date.now() < deadline) {
    await sleep(50);
    last = await read();
  }
  expect(last).to.deep.equal(expected);
}

function sleep(ms: number): Promise<void> {
  return new Promise((resolve) => setTimeout(resolve, ms));
}

/** Registers the contract tests; `newStore` must return an empty store isolated from every other one. */
function connectionStoreContract(newStore: () => Promise<ConnectionStore>): void {
  const opened: ConnectionStore[] = [];
  const fresh = async () => {
    const store = await newStore();
    opened.push(store);
    return store;
  };
  afterEach(async () => {
    await Promise.all(opened.splice(0).map((store) => store.close()));
  });

  it("returns what was added, attributes included", async () => {
    const store = await fresh();
    const added = record("abc=", { connectedAt: 1_700_000_000_123, expiresAt: Date.now() + HOUR_MS + 7 });
    const withAttributes = record("def=", {
      attributes: { userId: "u-1", name: 'Zoë {"not": "json"} ✓', empty: "" },
    });
    await store.add(added);
    await store.add(withAttributes);
    expect(await store.get("abc=")).to.deep.equal(added);
    expect(await store.get("def=")).to.deep.equal(withAttributes);
  });

  it("returns undefined for an unknown id", async () => {
    const store = await fresh();
    await store.add(record("known"));
    expect(await store.get("unknown")).to.equal(undefined);
  });

  it("replaces a record on a second add, dropping attributes it no longer has", async () => {
    const store = await fresh();
    await store.add(record("a", { attributes: { userId: "u-1" } }));
    const replacement = record("a", { connectedAt: 42 });
    await store.add(replacement);
    expect(await store.get("a")).to.deep.equal(replacement);
    expect(await listAll(store)).to.deep.equal(["a"]);
  });

  it("treats empty attributes as none", async () => {
    const store = await fresh();
    await store.add(record("a", { attributes: {} }));
    expect(await store.get("a")).to.not.have.property("attributes");
  });

  it("removes one connection, and ignores an unknown id", async () => {
    const store = await fresh();
    await store.add(record("a"));
    await store.add(record("b"));
    await store.remove("a");
    await store.remove("a");
    await store.remove("never-added");
    expect(await store.get("a")).to.equal(undefined);
    expectExactlyOnce(await listAll(store), ["b"]);
  });

  it("removes many (more than one batch, unknown ids and duplicates mixed in)", async function () {
    this.timeout(30_000);
    const store = await fresh();
    const all = ids(1_200);
    await addAll(store, all);
    const [kept, removed] = [all.slice(0, 100), all.slice(100)];
    const request = [...removed, ...ids(50, "unknown"), ...removed.slice(0, 30), ...removed.slice(500, 520)];
    await store.removeMany(request.sort());
    await store.removeMany([]);
    expectExactlyOnce(await listAll(store), kept);
    for (const id of [removed[0]!, removed[499]!, removed[500]!, removed[removed.length - 1]!]) {
      expect(await store.get(id), id).to.equal(undefined);
    }
    expect(await store.get(kept[0]!)).to.not.equal(undefined);
  });

  it("yields nothing for an empty store", async () => {
    const store = await fresh();
    expect(await listAll(store)).to.deep.equal([]);
  });

  it("rejects a page size that is not a positive integer", async () => {
    const store = await fresh();
    for (const pageSize of [0, -1, 1.5]) {
      let error: unknown;
      try {
        await listAll(store, pageSize);
      } catch (e) {
        error = e;
      }
      expect(error, `pageSize ${pageSize}`).to.be.instanceOf(RangeError);
    }
  });

  it("lists small sets exactly once with tiny pages", async () => {
    const store = await fresh();
    const all = ids(23);
    await addAll(store, all);
    for (const pageSize of [1, 7, 23, 24]) {
      const pages: string[][] = [];
      for await (const page of store.list({ pageSize })) pages.push(page);
      expectExactlyOnce(pages.flat(), all);
      expect(
        pages.every((page) => page.length > 0 && page.length <= pageSize),
        `page sizes for ${pageSize}`,
      ).to.equal(true);
      // A full backend page has no filtered-out items here, so every page but the last must be full.
      expect(
        pages.slice(0, -1).every((page) => page.length === pageSize),
        `full pages for ${pageSize}`,
      ).to.equal(true);
    }
  });

  describe("with 5,000 connections", function () {
    this.timeout(60_000);
    let store: ConnectionStore;
    let all: string[];
    before(async function () {
      this.timeout(60_000);
      store = await newStore();
      all = ids(5_000);
      await addAll(store, all);
    });
    after(async () => store?.close());

    for (const pageSize of [50, 1_000, undefined]) {
      it(`lists each exactly once with pageSize ${pageSize ?? "default (500)"}`, async () => {
        expectExactlyOnce(await listAll(store, pageSize), all);
      });
    }
  });

  it("keeps every one of 200 concurrent adds", async () => {
    const store = await fresh();
    const all = ids(200);
    await Promise.all(all.map((id) => store.add(record(id))));
    expectExactlyOnce(await listAll(store, 64), all);
  });

  it("hides a record whose expiresAt has passed from get and list", async () => {
    const store = await fresh();
    await store.add(record("live"));
    await store.add(record("dead", { connectedAt: Date.now() - 2 * HOUR_MS, expiresAt: Date.now() - 1_000 }));
    expect(await store.get("dead")).to.equal(undefined);
    expectExactlyOnce(await listAll(store), ["live"]);
  });

  it("stops returning a record once its expiresAt passes", async () => {
    const store = await fresh();
    await store.add(record("live"));
    await store.add(record("short", { expiresAt: Date.now() + 300 }));
    expect(await store.get("short")).to.not.equal(undefined);
    await sleep(400);
    expect(await store.get("short")).to.equal(undefined);
    expectExactlyOnce(await listAll(store, 1), ["live"]);
  });

  it("lists without throwing or duplicating while connections come and go", async function () {
    this.timeout(30_000);
    const store = await fresh();
    const seeded = ids(1_000, "seed");
    await addAll(store, seeded);
    const churn = new Set(seeded.filter((_, i) => i % 3 === 0));
    const stable = seeded.filter((id) => !churn.has(id));
    const pending = [...churn];
    const added: string[] = [];
    const listed: string[] = [];
    for await (const page of store.list({ pageSize: 50 })) {
      expect(page.length).to.be.within(1, 50);
      listed.push(...page);
      // Remove some churn ids not listed yet and some already listed; re-add one already listed; add new ids.
      const victims = pending.splice(0, 20);
      await store.removeMany(victims.slice(0, 15));
      await Promise.all(victims.slice(15).map((id) => store.remove(id)));
      const relisted = page.find((id) => churn.has(id));
      if (relisted) await store.add(record(relisted));
      const newcomers = ids(10, "new");
      added.push(...newcomers);
      await Promise.all(newcomers.map((id) => store.add(record(id))));
    }
    expect(new Set(listed).size, "duplicates in listing").to.equal(listed.length);
    const allowed = new Set([...seeded, ...added]);
    expect(listed.filter((id) => !allowed.has(id))).to.deep.equal([]);
    expect(
      stable.filter((id) => !listed.includes(id)),
      "stable ids missing",
    ).to.deep.equal([]);
  });

  describe("rooms", () => {
    const MAX = 10;
    async function listRoom(store: ConnectionStore, room: string, pageSize?: number): Promise<string[]> {
      const seen: string[] = [];
      for await (const page of store.list({ room, ...(pageSize === undefined ? {} : { pageSize }) })) {
        expect(page, "page").to.be.an("array").that.is.not.empty;
        expect(page.length, "page length").to.be.at.most(pageSize ?? 500);
        seen.push(...page);
      }
      return seen;
    }

    it("joins idempotently, lists a room's members only, and reports each connection's rooms", async () => {
      const store = await fresh();
      for (const id of ["a", "b", "c"]) await store.add(record(id));
      expect(await store.join("a", "lobby", MAX)).to.equal("joined");
      expect(await store.join("a", "lobby", MAX)).to.equal("already-member");
      expect(await store.join("b", "lobby", MAX)).to.equal("joined");
      expect(await store.join("b", "other.room_2-x", MAX)).to.equal("joined");
      expectExactlyOnce(await listRoom(store, "lobby"), ["a", "b"]);
      expectExactlyOnce(await listRoom(store, "other.room_2-x"), ["b"]);
      expect(await listRoom(store, "empty")).to.deep.equal([]);
      expect(await store.roomsOf("b")).to.deep.equal(["lobby", "other.room_2-x"]);
      expect(await store.roomsOf("c")).to.deep.equal([]);
      expect(await store.roomsOf("unknown")).to.deep.equal([]);
      // Memberships are not connections: the global listing is unchanged.
      expectExactlyOnce(await listAll(store), ["a", "b", "c"]);
    });

    it("leaves idempotently", async () => {
      const store = await fresh();
      await store.add(record("a"));
      await store.add(record("b"));
      await store.join("a", "r", MAX);
      await store.join("b", "r", MAX);
      expect(await store.leave("a", "r")).to.equal(true);
      expect(await store.leave("a", "r")).to.equal(false);
      expect(await store.leave("a", "never")).to.equal(false);
      expect(await store.leave("ghost", "r")).to.equal(false);
      expectExactlyOnce(await listRoom(store, "r"), ["b"]);
      expect(await store.roomsOf("a")).to.deep.equal([]);
      expect(await store.get("a"), "leaving keeps the connection").to.not.equal(undefined);
    });

    it("refuses to join an unknown or expired connection", async () => {
      const store = await fresh();
      await store.add(record("dead", { expiresAt: Date.now() - 1_000 }));
      expect(await store.join("ghost", "r", MAX)).to.equal("unknown-connection");
      expect(await store.join("dead", "r", MAX)).to.equal("unknown-connection");
      expect(await listRoom(store, "r")).to.deep.equal([]);
      expect(await store.roomsOf("ghost")).to.deep.equal([]);
    });

    it("bounds the rooms of a connection, still answering already-member at the bound", async () => {
      const store = await fresh();
      await store.add(record("a"));
      for (let i = 0; i < 3; i++) expect(await store.join("a", `r${i}`, 3)).to.equal("joined");
      expect(await store.join("a", "r3", 3)).to.equal("too-many-rooms");
      expect(await store.join("a", "r1", 3)).to.equal("already-member");
      expect(await store.roomsOf("a")).to.deep.equal(["r0", "r1", "r2"]);
      expect(await listRoom(store, "r3")).to.deep.equal([]);
      await store.leave("a", "r0");
      expect(await store.join("a", "r3", 3)).to.equal("joined");
    });

    it("enforces the bound under concurrent joins", async () => {
      const store = await fresh();
      await store.add(record("a"));
      const results = await Promise.all(Array.from({ length: 8 }, (_, i) => store.join("a", `c${i}`, 3)));
      expect(results.filter((r) => r === "joined")).to.have.length(3);
      expect(results.filter((r) => r === "too-many-rooms")).to.have.length(5);
      expect(await store.roomsOf("a")).to.have.length(3);
    });

    it("bounds the members of a room when asked, still answering already-member at the bound", async () => {
      const store = await fresh();
      for (const id of ["a", "b", "c"]) await store.add(record(id));
      expect(await store.join("a", "small", MAX, 2)).to.equal("joined");
      expect(await store.join("b", "small", MAX, 2)).to.equal("joined");
      // The room index behind DynamoDB's count is eventually consistent: wait for it to show both.
      await eventuallyEqual(async () => listRoom(store, "small"), ["a", "b"]);
      expect(await store.join("c", "small", MAX, 2)).to.equal("room-full");
      expect(await store.join("a", "small", MAX, 2)).to.equal("already-member");
      expect(await store.roomsOf("c")).to.deep.equal([]);
      expect(await listRoom(store, "small")).to.deep.equal(["a", "b"]);
      // Without the bound, or with room to spare, the same room admits more.
      expect(await store.join("c", "small", MAX, 3)).to.equal("joined");
      await store.leave("c", "small");
      await store.leave("b", "small");
      await eventuallyEqual(async () => listRoom(store, "small"), ["a"]);
      expect(await store.join("c", "small", MAX, 2)).to.equal("joined");
    });

    it("does not count a member whose record expired (a lost $disconnect) against the room bound", async () => {
      const store = await fresh();
      await store.add(record("ghost", { expiresAt: Date.now() + 300 }));
      await store.add(record("late"));
      expect(await store.join("ghost", "seat", MAX, 1)).to.equal("joined");
      await sleep(400);
      expect(await store.join("late", "seat", MAX, 1)).to.equal("joined");
      expectExactlyOnce(await listRoom(store, "seat"), ["late"]);
    });

    it("removes a connection's memberships with it, and reports its rooms and attributes", async () => {
      const store = await fresh();
      await store.add(record("a", { attributes: { userId: "u-a" } }));
      await store.add(record("b"));
      await store.add(record("c"));
      await store.join("a", "r1", MAX);
      await store.join("a", "r2", MAX);
      await store.join("b", "r1", MAX);
      expect(await store.remove("a")).to.deep.equal({
        connectionId: "a",
        rooms: ["r1", "r2"],
        attributes: { userId: "u-a" },
      });
      expect(await store.remove("a")).to.equal(undefined);
      expect(await store.remove("c")).to.deep.equal({ connectionId: "c", rooms: [] });
      expectExactlyOnce(await listRoom(store, "r1"), ["b"]);
      expect(await listRoom(store, "r2")).to.deep.equal([]);
      expect(await store.roomsOf("a")).to.deep.equal([]);
      // A removed connection cannot join again.
      expect(await store.join("a", "r1", MAX)).to.equal("unknown-connection");
    });

    it("removes many with their memberships, reporting each removed connection once", async () => {
      const store = await fresh();
      const all = ids(60, "rm");
      await addAll(store, all);
      await Promise.all(all.map((id, i) => store.join(id, i % 2 === 0 ? "even" : "odd", MAX)));
      await store.join(all[0]!, "first", MAX);
      const gone = all.slice(0, 40);
      const removed = await store.removeMany([...gone, ...gone.slice(0, 5), "never-added"]);
      expect(removed.map((r) => r.connectionId).sort()).to.deep.equal([...gone].sort());
      expect(removed.find((r) => r.connectionId === all[0])!.rooms).to.deep.equal(["even", "first"]);
      expect(removed.find((r) => r.connectionId === all[1])!.rooms).to.deep.equal(["odd"]);
      expectExactlyOnce(
        await listRoom(store, "even"),
        all.slice(40).filter((_, i) => i % 2 === 0),
      );
      expectExactlyOnce(
        await listRoom(store, "odd"),
        all.slice(40).filter((_, i) => i % 2 === 1),
      );
      expect(await listRoom(store, "first")).to.deep.equal([]);
      expect(await store.removeMany([])).to.deep.equal([]);
    });

    it("removes many only among connections older than connectedBefore, sparing young ones with their rooms", async () => {
      const store = await fresh();
      const now = Date.now();
      const cutoff = now - 60_000;
      await store.add(record("old", { connectedAt: cutoff - 1, attributes: { userId: "u-old" } }));
      await store.add(record("young", { connectedAt: cutoff + 5_000, attributes: { userId: "u-young" } }));
      await store.add(record("at-cutoff", { connectedAt: cutoff }));
      for (const id of ["old", "young", "at-cutoff"]) expect(await store.join(id, "r", MAX)).to.equal("joined");
      const removed = await store.removeMany(["old", "young", "at-cutoff", "never-added"], { connectedBefore: cutoff });
      expect(removed).to.deep.equal([{ connectionId: "old", rooms: ["r"], attributes: { userId: "u-old" } }]);
      expect(await store.get("old")).to.equal(undefined);
      expect(await store.get("young")).to.deep.include({ connectionId: "young", attributes: { userId: "u-young" } });
      expect(await store.get("at-cutoff")).to.not.equal(undefined);
      expectExactlyOnce(await listRoom(store, "r"), ["young", "at-cutoff"]);
      expect(await store.roomsOf("young")).to.deep.equal(["r"]);
      expectExactlyOnce(await listAll(store), ["young", "at-cutoff"]);
      // Without the condition (or once old enough) the same ids go.
      const later = await store.removeMany(["young"], { connectedBefore: now + 10_000 });
      expect(later.map((r) => r.connectionId)).to.deep.equal(["young"]);
      expect((await store.removeMany(["at-cutoff"])).map((r) => r.connectionId)).to.deep.equal(["at-cutoff"]);
      expect(await listAll(store)).to.deep.equal([]);
    });

    it("checks connectedBefore against the record as it is at removal: a re-added young record survives", async () => {
      const store = await fresh();
      const cutoff = Date.now() - 60_000;
      await store.add(record("again", { connectedAt: cutoff - 10_000 }));
      // The record a stale-id batch was listed with is replaced by a fresh one (a reconnect healed it) before the
      // removal runs: the removal must judge the record it would delete, not the one listed.
      await store.add(record("again", { connectedAt: Date.now() }));
      expect(await store.removeMany(["again"], { connectedBefore: cutoff })).to.deep.equal([]);
      expect(await store.get("again")).to.not.equal(undefined);
    });

    it("hides expired members from a room's listing", async () => {
      const store = await fresh();
      await store.add(record("live"));
      await store.add(record("short", { expiresAt: Date.now() + 300 }));
      await store.join("live", "r", MAX);
      expect(await store.join("short", "r", MAX)).to.equal("joined");
      await sleep(400);
      expectExactlyOnce(await listRoom(store, "r"), ["live"]);
    });

    it("refuses invalid room names", async () => {
      const store = await fresh();
      await store.add(record("a"));
      for (const room of ["", "a b", "x".repeat(65), "a#b", "{tag}", "é"]) {
        let error: unknown;
        try {
          await store.join("a", room, MAX);
        } catch (e) {
          error = e;
        }
        expect(error, JSON.stringify(room)).to.be.instanceOf(RangeError);
      }
      expect(await store.join("a", "x".repeat(64), MAX)).to.equal("joined");
    });

    it("lists a room exactly once while members come and go", async () => {
      const store = await fresh();
      const seeded = ids(300, "churn");
      await addAll(store, seeded);
      for (const id of seeded) await store.join(id, "busy", MAX);
      const listed: string[] = [];
      let i = 0;
      for await (const page of store.list({ room: "busy", pageSize: 25 })) {
        listed.push(...page);
        // One listed member leaves and joins again; one not yet listed leaves.
        await store.leave(page[0]!, "busy");
        await store.join(page[0]!, "busy", MAX);
        await store.leave(seeded[299 - i++]!, "busy");
      }
      expect(new Set(listed).size, "duplicates").to.equal(listed.length);
    });

    describe("a room of 5,000 members", function () {
      this.timeout(120_000);
      let store: ConnectionStore;
      let members: string[];
      before(async function () {
        this.timeout(120_000);
        store = await newStore();
        members = ids(5_000, "m");
        const outsiders = ids(200, "out");
        await addAll(store, [...members, ...outsiders]);
        let next = 0;
        await Promise.all(
          Array.from({ length: 64 }, async () => {
            while (next < members.length) await store.join(members[next++]!, "big", MAX);
          }),
        );
        for (const id of outsiders) await store.join(id, "elsewhere", MAX);
      });
      after(async () => store?.close());

      for (const pageSize of [100, 1_000, undefined]) {
        it(`lists each member exactly once, and no one else, with pageSize ${pageSize ?? "default (500)"}`, async () => {
          expectExactlyOnce(await listRoom(store, "big", pageSize), members);
        });
      }
    });
  });

  describe("countMessage (rate-limit counter)", () => {
    const WINDOW_MS = 10_000;
    // The middle of a window far from now, so nothing of the real clock interferes.
    const T0 = 1_900_000_000_000 + WINDOW_MS / 2;

    it("counts 1, 2, 3... within one window, this message included", async () => {
      const store = await fresh();
      await store.add(record("meter-a"));
      const counts: number[] = [];
      for (let i = 0; i < 5; i++) counts.push(await store.countMessage("meter-a", WINDOW_MS, T0 + i));
      expect(counts).to.deep.equal([1, 2, 3, 4, 5]);
    });

    it("starts again at 1 in the next window, and windows are aligned to the epoch", async () => {
      const store = await fresh();
      await store.add(record("meter-b"));
      const windowStart = Math.floor(T0 / WINDOW_MS) * WINDOW_MS;
      expect(await store.countMessage("meter-b", WINDOW_MS, windowStart)).to.equal(1);
      expect(await store.countMessage("meter-b", WINDOW_MS, windowStart + WINDOW_MS - 1)).to.equal(2);
      expect(await store.countMessage("meter-b", WINDOW_MS, windowStart + WINDOW_MS)).to.equal(1);
      expect(await store.countMessage("meter-b", WINDOW_MS, windowStart + WINDOW_MS + 1)).to.equal(2);
      expect(await store.countMessage("meter-b", WINDOW_MS, windowStart + 5 * WINDOW_MS)).to.equal(1);
    });

    it("keeps connections apart", async () => {
      const store = await fresh();
      await store.add(record("meter-c"));
      await store.add(record("meter-d"));
      await store.countMessage("meter-c", WINDOW_MS, T0);
      await store.countMessage("meter-c", WINDOW_MS, T0);
      expect(await store.countMessage("meter-d", WINDOW_MS, T0)).to.equal(1);
      expect(await store.countMessage("meter-c", WINDOW_MS, T0)).to.equal(3);
    });

    it("gives concurrent calls distinct counts (atomic increments)", async () => {
      const store = await fresh();
      await store.add(record("meter-e"));
      const counts = await Promise.all(Array.from({ length: 40 }, () => store.countMessage("meter-e", WINDOW_MS, T0)));
      expect([...counts].sort((a, b) => a - b)).to.deep.equal(Array.from({ length: 40 }, (_, i) => i + 1));
    });

    it("does not disturb the connection's record or the listing", async () => {
      const store = await fresh();
      const withAttributes = record("meter-f", { attributes: { userId: "u-9" } });
      await store.add(withAttributes);
      await store.countMessage("meter-f", WINDOW_MS, T0);
      await store.countMessage("meter-f", WINDOW_MS, T0);
      expect(await store.get("meter-f")).to.deep.equal(withAttributes);
      expectExactlyOnce(await listAll(store), ["meter-f"]);
    });

    it("counts for an id without a record without making it a connection", async () => {
      const store = await fresh();
      expect(await store.countMessage("meter-ghost", WINDOW_MS, T0)).to.equal(1);
      expect(await store.countMessage("meter-ghost", WINDOW_MS, T0)).to.equal(2);
      expect(await store.get("meter-ghost")).to.equal(undefined);
      expect(await listAll(store)).to.deep.equal([]);
    });

    it("uses the current time by default", async () => {
      const store = await fresh();
      await store.add(record("meter-g"));
      // A day-long window: two calls a moment apart fall into the same one (unless they straddle midnight UTC).
      const day = 86_400_000;
      const first = await store.countMessage("meter-g", day);
      const second = await store.countMessage("meter-g", day);
      expect([first, second]).to.satisfy(([a, b]: number[]) => (a === 1 && b === 2) || (a === 1 && b === 1));
    });

    it("rejects a window that is not a positive integer of ms", async () => {
      const store = await fresh();
      for (const bad of [0, -1, 1.5, Number.NaN]) {
        let error: unknown;
        try {
          await store.countMessage("meter-h", bad, T0);
        } catch (e) {
          error = e;
        }
        expect(error, String(bad)).to.be.instanceOf(RangeError);
      }
    });

    it("counts a user's meter key (meterKey) apart from every connection, and never lists it", async () => {
      const store = await fresh();
      await store.add(record("meter-u"));
      const userKey = meterKey("user", "user-1");
      expect(userKey).to.match(/^user:[A-Za-z0-9_-]+$/);
      expect(meterKey("user", "x".repeat(5_000)).length).to.be.below(60);
      expect(await store.countMessage(userKey, WINDOW_MS, T0)).to.equal(1);
      expect(await store.countMessage(userKey, WINDOW_MS, T0)).to.equal(2);
      expect(await store.countMessage(meterKey("broadcast-user", "user-1"), WINDOW_MS, T0)).to.equal(1);
      expect(await store.countMessage("meter-u", WINDOW_MS, T0)).to.equal(1);
      expectExactlyOnce(await listAll(store), ["meter-u"]);
    });
  });

  describe("user connection slots (claimUserSlot / releaseUserSlot)", () => {
    // In the real future: Redis expires a user's key by the real clock at its last slot's expiry.
    let T = 0;
    beforeEach(() => {
      T = Date.now() + 10 * 60_000;
    });

    it("claims up to max, refuses one more, and a release frees a slot", async () => {
      const store = await fresh();
      const claims = [];
      for (const id of ["s1", "s2", "s3"]) claims.push(await store.claimUserSlot("alice", id, 2, T + HOUR_MS, T));
      expect(claims).to.deep.equal([
        { claimed: true, live: 1 },
        { claimed: true, live: 2 },
        { claimed: false, live: 2 },
      ]);
      // Another user has its own slots.
      expect(await store.claimUserSlot("bob", "s9", 2, T + HOUR_MS, T)).to.deep.equal({ claimed: true, live: 1 });
      await store.releaseUserSlot("alice", "s1");
      await store.releaseUserSlot("alice", "never-claimed");
      await store.releaseUserSlot("nobody", "s1");
      expect(await store.claimUserSlot("alice", "s3", 2, T + HOUR_MS, T)).to.deep.equal({ claimed: true, live: 2 });
      // Claiming again for a connection that holds a slot succeeds even at the cap.
      expect(await store.claimUserSlot("alice", "s2", 2, T + 2 * HOUR_MS, T)).to.deep.equal({ claimed: true, live: 2 });
      expect(await listAll(store)).to.deep.equal([]);
    });

    it("frees a slot whose expiry has passed (a lost $disconnect)", async () => {
      const store = await fresh();
      await store.claimUserSlot("carol", "old", 1, T + 1_000, T);
      expect((await store.claimUserSlot("carol", "new", 1, T + HOUR_MS, T + 999)).claimed).to.equal(false);
      expect(await store.claimUserSlot("carol", "new", 1, T + HOUR_MS, T + 1_000)).to.deep.equal({
        claimed: true,
        live: 1,
      });
    });

    it("never exceeds max under concurrent claims", async () => {
      const store = await fresh();
      const claims = await Promise.all(
        Array.from({ length: 12 }, (_, i) => store.claimUserSlot("dave", `c${i}`, 3, T + HOUR_MS, T)),
      );
      expect(claims.filter((c) => c.claimed)).to.have.length(3);
    });
  });

  describe("listByProtocol (the room-less broadcast's audience)", () => {
    const typedRecord = (id: string, extra: Record<string, string> = {}) =>
      record(id, { attributes: { ...extra, [PROTOCOL_ATTRIBUTE]: "websocket-chat.v1" } });

    /** Drains a listing by protocol, checking the page invariants on the way. */
    async function listSplit(store: ConnectionStore, pageSize?: number): Promise<{ plain: string[]; typed: string[] }> {
      const plain: string[] = [];
      const typed: string[] = [];
      for await (const page of store.listByProtocol(pageSize === undefined ? undefined : { pageSize })) {
        expect(page.plain.length + page.typed.length, "page length").to.be.within(1, pageSize ?? 500);
        plain.push(...page.plain);
        typed.push(...page.typed);
      }
      return { plain, typed };
    }

    it("lists every live connection exactly once, split by the protocol attribute, with several page sizes", async () => {
      const store = await fresh();
      const plainIds = ids(17, "plain");
      const typedIds = ids(12, "typed");
      await addAll(store, plainIds);
      for (const id of typedIds) await store.add(typedRecord(id, { name: "t", userId: "u" }));
      // Other attributes do not make a connection typed; a value that merely mentions the key does not either.
      const named = "named-plain";
      await store.add(record(named, { attributes: { name: '"protocol":"x"', userId: "u-2" } }));
      await store.add(record("expired-typed", { ...typedRecord("expired-typed"), expiresAt: Date.now() - 1 }));
      await store.join(typedIds[0]!, "lobby", 10);
      for (const pageSize of [1, 5, 30, undefined]) {
        const { plain, typed } = await listSplit(store, pageSize);
        expectExactlyOnce(plain, [...plainIds, named]);
        expectExactlyOnce(typed, typedIds);
      }
      // The same audience as the plain listing.
      expectExactlyOnce(await listAll(store), [...plainIds, named, ...typedIds]);
    });

    it("keeps a typed client typed whatever else its attributes hold (a lone surrogate from a token's claim)", async () => {
      const store = await fresh();
      await store.add(typedRecord("odd-claims", { scope: "read \ud800", name: "\udfff" }));
      await store.add(record("plain-odd", { attributes: { scope: "read \ud800" } }));
      const { plain, typed } = await listSplit(store);
      expect(typed, "never a peer's raw data for a typed client").to.include("odd-claims");
      expect(plain.concat(typed)).to.have.members(["odd-claims", "plain-odd"]);
    });

    it("yields nothing for an empty store, and rejects a bad page size", async () => {
      const store = await fresh();
      expect(await listSplit(store)).to.deep.equal({ plain: [], typed: [] });
      let error: unknown;
      try {
        await listSplit(store, 0);
      } catch (e) {
        error = e;
      }
      expect(error).to.be.instanceOf(RangeError);
    });

    it("forgets the protocol when a record is replaced without it, and drops removed connections", async () => {
      const store = await fresh();
      await store.add(typedRecord("swap"));
      await store.add(typedRecord("gone"));
      await store.add(record("swap"));
      await store.remove("gone");
      expect(await listSplit(store)).to.deep.equal({ plain: ["swap"], typed: [] });
    });
  });
}

/** A TCP server that accepts connections and never answers: the failure mode where clients hang. */
async function startBlackHole(): Promise<{ port: number; stop(): Promise<void> }> {
  const sockets = new Set<Socket>();
  const server: Server = createServer((socket) => {
    sockets.add(socket);
    socket.on("close", () => sockets.delete(socket));
  });
  await new Promise<void>((resolve) => server.listen(0, "127.0.0.1", resolve));
  const address = server.address();
  if (typeof address !== "object" || !address) throw new Error("no address");
  return {
    port: address.port,
    stop: () =>
      new Promise<void>((resolve) => {
        for (const socket of sockets) socket.destroy();
        server.close(() => resolve());
      }),
  };
}

/** How long `operation` took to reject; fails the test if it resolved. */
async function rejectionTime(operation: () => Promise<unknown>): Promise<number> {
  const started = Date.now();
  try {
    await operation();
  } catch {
    return Date.now() - started;
  }
  throw new Error("expected the operation to reject");
}

describe("MemoryConnectionStore", () => {
  connectionStoreContract(async () => new MemoryConnectionStore());
});

describe("MemoryConnectionStore across a thread bridge (handler worker threads)", () => {
  connectionStoreContract(async () => bridgedMemoryStore());
});

describe("RedisConnectionStore", () => {
  let redis: TestRedis;
  let admin: Redis;
  before(async function () {
    this.timeout(10_000);
    redis = await startRedis();
    admin = new Redis(redis.url);
  });
  // Every prefix of this run starts with runPrefix, so the keys can be cleared from a shared REDIS_URL server.
  const runPrefix = `test-${randomUUID()}`;
  after(async () => {
    if (admin) {
      for await (const keys of admin.scanStream({ match: `{${runPrefix}*`, count: 1_000 })) {
        if ((keys as string[]).length > 0) await admin.unlink(...(keys as string[]));
      }
      await admin.quit();
    }
    await redis?.stop();
  });

  const storeWithPrefix = (keyPrefix: string) => new RedisConnectionStore({ url: redis.url, keyPrefix });
  connectionStoreContract(async () => storeWithPrefix(`${runPrefix}-${randomUUID()}`));

  describe("layout", () => {
    let store: RedisConnectionStore;
    let prefix: string;
    beforeEach(() => {
      prefix = `${runPrefix}-${randomUUID()}`;
      store = storeWithPrefix(prefix);
    });
    afterEach(async () => store.close());

    it("keeps every key under one hash tag, the hash expiring at expiresAt", async () => {
      const added = record("a", { attributes: { userId: "u" } });
      await store.add(added);
      expect((await admin.keys(`*${prefix}*`)).sort()).to.deep.equal([`{${prefix}}:conn:a`, `{${prefix}}:ids`]);
      expect(await admin.zscore(`{${prefix}}:ids`, "a")).to.equal("0");
      // Bounds taken around the call: the remaining TTL was read somewhere between them.
      const before = Date.now();
      const ttl = await admin.pttl(`{${prefix}}:conn:a`);
      const after = Date.now();
      expect(ttl).to.be.within(added.expiresAt - after - 1_000, added.expiresAt - before);
    });

    it("keeps room keys under the same hash tag: a set per room, the connection's rooms expiring with it", async () => {
      const added = record("a");
      await store.add(added);
      await store.join("a", "lobby", 10);
      expect((await admin.keys(`*${prefix}*`)).sort()).to.deep.equal([
        `{${prefix}}:conn:a`,
        `{${prefix}}:ids`,
        `{${prefix}}:room:lobby`,
        `{${prefix}}:rooms:a`,
      ]);
      expect(await admin.zscore(`{${prefix}}:room:lobby`, "a")).to.equal("0");
      expect(await admin.smembers(`{${prefix}}:rooms:a`)).to.deep.equal(["lobby"]);
      expect(await admin.pexpiretime(`{${prefix}}:rooms:a`)).to.equal(added.expiresAt);
      await store.remove("a");
      expect(await admin.keys(`*${prefix}*`)).to.deep.equal([]);
    });

    it("drops ids whose hash expired from the id set while listing", async () => {
      await store.add(record("live"));
      await store.add(record("dead", { expiresAt: Date.now() - 1 }));
      expect(await admin.zcard(`{${prefix}}:ids`)).to.equal(2);
      expect(await listAll(store)).to.deep.equal(["live"]);
      expect(await admin.zrange(`{${prefix}}:ids`, 0, "-1")).to.deep.equal(["live"]);
    });

    it("refuses a key prefix that would break the hash tag", () => {
      for (const keyPrefix of ["", "a}b", "{a}"]) {
        expect(() => storeWithPrefix(keyPrefix), JSON.stringify(keyPrefix)).to.throw(/keyPrefix/);
      }
    });

    it("leaves a client it was given open on close", async () => {
      const client = new Redis(redis.url, { lazyConnect: true });
      const borrowed = new RedisConnectionStore({ client, keyPrefix: prefix });
      await borrowed.add(record("a"));
      await borrowed.close();
      expect(await client.ping()).to.equal("PONG");
      await client.quit();
    });
  });

  describe("failing fast", () => {
    it("rejects within 2 s when nothing listens on the port", async () => {
      const port = await freePort();
      const store = new RedisConnectionStore({ host: "127.0.0.1", port, tls: false, keyPrefix: "t" });
      try {
        expect(await rejectionTime(() => store.get("a"))).to.be.below(2_000);
        expect(await rejectionTime(() => store.add(record("a")))).to.be.below(2_000);
      } finally {
        await store.close();
      }
    });

    it("rejects within 2 s when the server accepts but never answers", async () => {
      const hole = await startBlackHole();
      const store = new RedisConnectionStore({ url: `redis://127.0.0.1:${hole.port}`, keyPrefix: "t" });
      try {
        expect(await rejectionTime(() => store.get("a"))).to.be.below(2_000);
        // A listing page that timed out is tried once more (stores/page-retry.ts): two timeouts and a backoff.
        expect(await rejectionTime(async () => (await store.list()[Symbol.asyncIterator]().next()).value)).to.be.below(
          3_000,
        );
      } finally {
        await store.close();
        await hole.stop();
      }
    });
  });
});

describe("DynamoDbConnectionStore", () => {
  let dynamo: TestDynamoDb;
  let client: DynamoDBClient;
  before(async () => {
    dynamo = await startDynalite();
    client = localDynamoDbClient(dynamo.endpoint);
  });
  after(async () => {
    client?.destroy();
    await dynamo?.stop();
  });

  const freshTable = async () => {
    const tableName = `connections-${randomUUID()}`;
    await createConnectionsTable(client, tableName);
    return tableName;
  };
  connectionStoreContract(async () => new DynamoDbConnectionStore({ tableName: await freshTable(), client }));

  it("stores expiresAt in ms and the TTL attribute in epoch seconds", async () => {
    const tableName = await freshTable();
    const store = new DynamoDbConnectionStore({ tableName, client });
    await store.add(record("a", { expiresAt: 1_999_999_999_001, attributes: { userId: "u" } }));
    await store.add(record("b", { expiresAt: 1_999_999_999_000 }));
    const raw = async (id: string) =>
      (await client.send(new GetItemCommand({ TableName: tableName, Key: { connectionId: { S: id } } }))).Item;
    const a = await raw("a");
    expect(a?.expiresAt).to.deep.equal({ N: "1999999999001" });
    expect(a?.ttl).to.deep.equal({ N: "2000000000" });
    expect(a?.attributes).to.deep.equal({ M: { userId: { S: "u" } } });
    const b = await raw("b");
    expect(b?.ttl).to.deep.equal({ N: "1999999999" });
    expect(b).to.not.have.property("attributes");
  });

  it("keeps memberships as items the room index lists (never the connection scan), removed with the connection", async () => {
    const tableName = await freshTable();
    const store = new DynamoDbConnectionStore({ tableName, client });
    const added = record("a");
    await store.add(added);
    await store.join("a", "lobby", 10);
    const raw = async (id: string) =>
      (await client.send(new GetItemCommand({ TableName: tableName, Key: { connectionId: { S: id } } }))).Item;
    expect((await raw("a"))?.rooms).to.deep.equal({ SS: ["lobby"] });
    expect(await raw("room#lobby#a")).to.deep.equal({
      connectionId: { S: "room#lobby#a" },
      room: { S: "lobby" },
      member: { S: "a" },
      expiresAt: { N: String(added.expiresAt) },
      ttl: { N: String(Math.ceil(added.expiresAt / 1000)) },
    });
    expect(await listAll(store)).to.deep.equal(["a"]);
    await store.remove("a");
    expect(await raw("room#lobby#a")).to.equal(undefined);
  });

  it("follows AWS_ENDPOINT_URL_DYNAMODB when no endpoint is configured", async () => {
    const tableName = await freshTable();
    const previous = process.env.AWS_ENDPOINT_URL_DYNAMODB;
    process.env.AWS_ENDPOINT_URL_DYNAMODB = dynamo.endpoint;
    const envClient = createDynamoDbClient({
      region: "us-east-1",
      credentials: { accessKeyId: "t", secretAccessKey: "t" },
    });
    try {
      const store = new DynamoDbConnectionStore({ tableName, client: envClient });
      await store.add(record("via-env"));
      expect(await new DynamoDbConnectionStore({ tableName, client }).get("via-env")).to.not.equal(undefined);
    } finally {
      envClient.destroy();
      if (previous === undefined) delete process.env.AWS_ENDPOINT_URL_DYNAMODB;
      else process.env.AWS_ENDPOINT_URL_DYNAMODB = previous;
    }
  });

  describe("removeMany against throttling", () => {
    // The real client and dynalite, with a proxy between them that leaves BatchWriteItem requests unprocessed.
    async function throttledStore(stubborn: number) {
      const tableName = await freshTable();
      const direct = new DynamoDbConnectionStore({ tableName, client });
      // Each connection is in one room, so removing it batch-deletes its membership item.
      for (const id of ["x", "y"]) {
        await direct.add(record(id));
        await direct.join(id, "r", 10);
      }
      const proxy = await startUnprocessingProxy(dynamo.endpoint, stubborn);
      const proxied = localDynamoDbClient(proxy.endpoint);
      const store = new DynamoDbConnectionStore({ tableName, client: proxied });
      const stop = async () => {
        proxied.destroy();
        await proxy.stop();
      };
      return { direct, store, batches: proxy.batches, stop };
    }

    it("retries unprocessed deletes until they go through", async () => {
      const t = await throttledStore(3);
      try {
        const removed = await t.store.removeMany(["x", "y", "x"]);
        expect(removed.map((r) => r.connectionId).sort()).to.deep.equal(["x", "y"]);
        expect(t.batches).to.deep.equal([2, 1, 1, 1]);
        const members: string[] = [];
        for await (const page of t.direct.list({ room: "r" })) members.push(...page);
        expect(members, "membership items really deleted").to.deep.equal([]);
        expect(await t.direct.roomsOf("x")).to.deep.equal([]);
      } finally {
        await t.stop();
      }
    });

    it("gives up after bounded attempts, saying how many were left", async function () {
      this.timeout(10_000);
      const t = await throttledStore(Infinity);
      let error: Error | undefined;
      try {
        await t.store.removeMany(["x", "y"]);
      } catch (e) {
        error = e as Error;
      } finally {
        await t.stop();
      }
      expect(error?.message).to.match(/left 1 of 2 deletes unprocessed after 8 attempts/);
      expect(t.batches).to.have.length(8);
    });
  });

  describe("failing fast", () => {
    const storeAt = (endpoint: string) =>
      new DynamoDbConnectionStore({
        tableName: "t",
        client: createDynamoDbClient({
          endpoint,
          region: "us-east-1",
          credentials: { accessKeyId: "t", secretAccessKey: "t" },
        }),
      });

    it("rejects within a few seconds when nothing listens on the port", async () => {
      const store = storeAt(`http://127.0.0.1:${await freePort()}`);
      expect(await rejectionTime(() => store.get("a"))).to.be.below(3_000);
    });

    it("rejects within the request timeouts when the server accepts but never answers", async function () {
      this.timeout(15_000);
      const hole = await startBlackHole();
      try {
        // 3 attempts of at most 2 s each, plus retry backoff.
        expect(await rejectionTime(() => storeAt(`http://127.0.0.1:${hole.port}`).get("a"))).to.be.below(8_000);
      } finally {
        await hole.stop();
      }
    });
  });
});

describe("createStore", () => {
  it("shares one memory store across calls", async () => {
    const first = createStore({ store: "memory", connectionTtlSeconds: 60 });
    const second = createStore({ store: "memory", connectionTtlSeconds: 60 });
    expect(first).to.equal(second).and.to.be.instanceOf(MemoryConnectionStore);
    await first.add(record("shared"));
    expect(await second.get("shared")).to.not.equal(undefined);
    await first.remove("shared");
  });

  it("builds the configured networked store without connecting", async () => {
    const redis = createStore({
      store: "redis",
      redis: { url: "redis://127.0.0.1:1", keyPrefix: "p" },
      connectionTtlSeconds: 60,
    });
    const dynamo = createStore({ store: "dynamodb", tableName: "t", connectionTtlSeconds: 60 });
    expect([redis.kind, dynamo.kind]).to.deep.equal(["redis", "dynamodb"]);
    expect(redis).to.be.instanceOf(RedisConnectionStore);
    expect(dynamo).to.be.instanceOf(DynamoDbConnectionStore);
    await Promise.all([redis.close(), dynamo.close()]);
  });
});

/**
 * Room history, idempotent sends and the heartbeat (contract/room-history.ts): one suite for the three stores, with
 * `now` injected wherever time matters, as the countMessage suite does.
 */
function roomHistoryContract(newStore: () => Promise<ConnectionStore>): void {
  const opened: ConnectionStore[] = [];
  const fresh = async () => {
    const store = await newStore();
    opened.push(store);
    return store;
  };
  afterEach(async () => {
    await Promise.all(opened.splice(0).map((store) => store.close()));
  });
  // Far from the real clock, so that nothing of it interferes.
  const T0 = 1_900_000_000_000;
  const bounds = { maxEntries: 100, maxAgeMs: HOUR_MS };
  const message = (i: number) => ({ id: `m-${i}`, frame: JSON.stringify({ type: "message", data: `hello ${i}` }) });
  const seqsOf = (page: { entries: readonly { seq: number }[] }) => page.entries.map((entry) => entry.seq);
  const range = (from: number, to: number) => Array.from({ length: to - from + 1 }, (_, i) => from + i);

  it("numbers appends 1, 2, 3… per room, and keeps id, ts and frame as given", async () => {
    const store = await fresh();
    expect(await store.latestSeq("lobby")).to.equal(0);
    expect(await store.appendHistory("lobby", message(1), bounds, T0)).to.equal(1);
    expect(await store.appendHistory("lobby", message(2), bounds, T0 + 5)).to.equal(2);
    expect(await store.appendHistory("other", message(3), bounds, T0 + 6)).to.equal(1);
    expect(await store.latestSeq("lobby")).to.equal(2);
    const page = await store.historyAfter("lobby", { after: 0, limit: 10 }, bounds, T0 + 10);
    expect(page).to.deep.equal({
      entries: [
        { seq: 1, id: "m-1", ts: T0, frame: message(1).frame },
        { seq: 2, id: "m-2", ts: T0 + 5, frame: message(2).frame },
      ],
      latestSeq: 2,
      more: false,
      reachesBack: true,
    });
  });

  it("gives 20 concurrent appenders x 25 each the numbers 1..500 exactly once, every page in order", async function () {
    this.timeout(60_000);
    const store = await fresh();
    const big = { maxEntries: 1_000, maxAgeMs: HOUR_MS };
    const seqs = (
      await Promise.all(
        Array.from({ length: 20 }, async (_, worker) => {
          const mine: number[] = [];
          for (let i = 0; i < 25; i++)
            mine.push(await store.appendHistory("busy", message(worker * 100 + i), big, T0 + i));
          // Each appender's own numbers increase: an append is numbered after the previous one it made.
          expect(mine, `appender ${worker}`).to.deep.equal([...mine].sort((a, b) => a - b));
          return mine;
        }),
      )
    ).flat();
    expect([...seqs].sort((a, b) => a - b)).to.deep.equal(range(1, 500));
    const read: number[] = [];
    let after = 0;
    for (;;) {
      const page = await store.historyAfter("busy", { after, limit: 64 }, big, T0 + 100);
      expect(seqsOf(page), "page in order").to.deep.equal(range(after + 1, after + page.entries.length));
      read.push(...seqsOf(page));
      if (!page.more) break;
      after = page.entries[page.entries.length - 1]!.seq;
    }
    expect(read).to.deep.equal(range(1, 500));
    const ids = (await store.historyBefore("busy", { limit: 1_000 }, big, T0 + 100)).entries.map((e) => e.id);
    expect(new Set(ids).size).to.equal(500);
  });

  it("keeps the newest maxEntries only, and says when history no longer reaches back", async () => {
    const store = await fresh();
    const small = { maxEntries: 5, maxAgeMs: HOUR_MS };
    for (let i = 1; i <= 12; i++) await store.appendHistory("r", message(i), small, T0 + i);
    const all = await store.historyAfter("r", { after: 0, limit: 100 }, small, T0 + 20);
    expect(seqsOf(all)).to.deep.equal([8, 9, 10, 11, 12]);
    expect(all.reachesBack).to.equal(false);
    expect(all.latestSeq).to.equal(12);
    const fromSeven = await store.historyAfter("r", { after: 7, limit: 100 }, small, T0 + 20);
    expect([seqsOf(fromSeven), fromSeven.reachesBack]).to.deep.equal([[8, 9, 10, 11, 12], true]);
    const fromSix = await store.historyAfter("r", { after: 6, limit: 100 }, small, T0 + 20);
    expect([seqsOf(fromSix), fromSix.reachesBack]).to.deep.equal([[8, 9, 10, 11, 12], false]);
    const upToDate = await store.historyAfter("r", { after: 12, limit: 100 }, small, T0 + 20);
    expect(upToDate).to.deep.equal({ entries: [], latestSeq: 12, more: false, reachesBack: true });
  });

  it("drops entries older than maxAgeMs, on read and on the next append", async () => {
    const store = await fresh();
    const minute = { maxEntries: 100, maxAgeMs: 60_000 };
    await store.appendHistory("aging", message(1), minute, T0);
    await store.appendHistory("aging", message(2), minute, T0 + 30_000);
    const read = (now: number) => store.historyAfter("aging", { after: 0, limit: 10 }, minute, now);
    expect(seqsOf(await read(T0 + 59_999))).to.deep.equal([1, 2]);
    const later = await read(T0 + 60_000);
    expect([seqsOf(later), later.reachesBack]).to.deep.equal([[2], false]);
    expect((await read(T0 + 90_001)).entries).to.deep.equal([]);
    // The counter outlives the entries: numbering goes on, and a client that saw 2 has missed nothing.
    expect(await store.latestSeq("aging")).to.equal(2);
    expect((await store.historyAfter("aging", { after: 2, limit: 10 }, minute, T0 + 90_001)).reachesBack).to.equal(
      true,
    );
    expect(await store.appendHistory("aging", message(3), minute, T0 + 120_000)).to.equal(3);
    const afterAppend = await store.historyBefore("aging", { limit: 10 }, minute, T0 + 120_000);
    expect([seqsOf(afterAppend), afterAppend.more]).to.deep.equal([[3], false]);
  });

  it("pages forwards and backwards", async () => {
    const store = await fresh();
    for (let i = 1; i <= 10; i++) await store.appendHistory("p", message(i), bounds, T0 + i);
    const now = T0 + 100;
    const forward = await store.historyAfter("p", { after: 2, limit: 3 }, bounds, now);
    expect([seqsOf(forward), forward.more, forward.reachesBack]).to.deep.equal([[3, 4, 5], true, true]);
    const last = await store.historyAfter("p", { after: 7, limit: 3 }, bounds, now);
    expect([seqsOf(last), last.more]).to.deep.equal([[8, 9, 10], false]);
    const newest = await store.historyBefore("p", { limit: 4 }, bounds, now);
    expect([seqsOf(newest), newest.more, newest.latestSeq]).to.deep.equal([[7, 8, 9, 10], true, 10]);
    const older = await store.historyBefore("p", { before: 7, limit: 4 }, bounds, now);
    expect([seqsOf(older), older.more]).to.deep.equal([[3, 4, 5, 6], true]);
    const oldest = await store.historyBefore("p", { before: 3, limit: 4 }, bounds, now);
    expect([seqsOf(oldest), oldest.more]).to.deep.equal([[1, 2], false]);
    expect((await store.historyBefore("p", { before: 1, limit: 4 }, bounds, now)).entries).to.deep.equal([]);
    expect((await store.historyBefore("empty", { limit: 4 }, bounds, now)).entries).to.deep.equal([]);
    // Backwards through a count-trimmed history stops at the oldest entry kept.
    const trimmed = { maxEntries: 4, maxAgeMs: HOUR_MS };
    const tail = await store.historyBefore("p", { before: 9, limit: 10 }, trimmed, now);
    expect([seqsOf(tail), tail.more]).to.deep.equal([[7, 8], false]);
  });

  it("answers an `after` beyond the latest (numbering started again) from the start, not reaching back", async () => {
    const store = await fresh();
    for (let i = 1; i <= 3; i++) await store.appendHistory("reset", message(i), bounds, T0 + i);
    const page = await store.historyAfter("reset", { after: 40, limit: 10 }, bounds, T0 + 10);
    expect([seqsOf(page), page.reachesBack, page.latestSeq]).to.deep.equal([[1, 2, 3], false, 3]);
  });

  it("refuses bad rooms, bounds, queries and frames over 128 KB", async () => {
    const store = await fresh();
    const refused = async (operation: () => Promise<unknown>, label: string) => {
      let error: unknown;
      try {
        await operation();
      } catch (e) {
        error = e;
      }
      expect(error, label).to.be.instanceOf(RangeError);
    };
    await refused(() => store.appendHistory("bad room", message(1), bounds, T0), "room");
    await refused(() => store.appendHistory("r", message(1), { maxEntries: 0, maxAgeMs: HOUR_MS }, T0), "entries");
    await refused(() => store.appendHistory("r", message(1), { maxEntries: 5, maxAgeMs: 0 }, T0), "age");
    await refused(() => store.appendHistory("r", { id: "", frame: "x" }, bounds, T0), "id");
    await refused(() => store.appendHistory("r", { id: "a", frame: "" }, bounds, T0), "empty frame");
    await refused(() => store.appendHistory("r", { id: "a", frame: "é".repeat(65_537) }, bounds, T0), "frame");
    await refused(() => store.historyAfter("r", { after: -1, limit: 5 }, bounds, T0), "after");
    await refused(() => store.historyAfter("r", { after: 0, limit: 0 }, bounds, T0), "limit");
    await refused(() => store.historyBefore("r", { before: 0, limit: 5 }, bounds, T0), "before");
    await refused(() => store.claimSend("s", "has#hash", "m", 1_000, T0), "ref");
    await refused(() => store.claimSend("s".repeat(SEND_SCOPE_MAX_LENGTH + 1), "ref", "m", 1_000, T0), "scope");
    await refused(() => store.claimSend("s", "ref", "", 1_000, T0), "claimed id");
    await refused(() => store.claimSend("s", "ref", "m", 0, T0), "window");
    expect(await store.latestSeq("r")).to.equal(0);
    // The largest frame allowed goes in and comes back whole.
    const largest = { id: "big", frame: "x".repeat(131_072) };
    await store.appendHistory("r", largest, bounds, T0);
    const [entry] = (await store.historyAfter("r", { after: 0, limit: 1 }, bounds, T0)).entries;
    expect(entry?.frame).to.equal(largest.frame);
  });

  describe("send references (idempotency)", () => {
    const WINDOW = 60_000;

    it("lets the first claim win and answers a repeat with what it recorded", async () => {
      const store = await fresh();
      expect(await store.claimSend("user-1", "ref-1", "m-1", WINDOW, T0)).to.deep.equal({ status: "claimed" });
      expect(await store.claimSend("user-1", "ref-1", "m-2", WINDOW, T0 + 1)).to.deep.equal({
        status: "duplicate",
        id: "m-1",
      });
      await store.settleSend("user-1", "ref-1", { id: "m-1", seq: 7 }, WINDOW, T0 + 2);
      expect(await store.claimSend("user-1", "ref-1", "m-3", WINDOW, T0 + 3)).to.deep.equal({
        status: "duplicate",
        id: "m-1",
        seq: 7,
      });
      // Scopes and references are apart.
      expect((await store.claimSend("user-2", "ref-1", "m-4", WINDOW, T0)).status).to.equal("claimed");
      expect((await store.claimSend("user-1", "ref-2", "m-5", WINDOW, T0)).status).to.equal("claimed");
    });

    it("gives exactly one of 30 concurrent claims the win", async () => {
      const store = await fresh();
      const claims = await Promise.all(
        Array.from({ length: 30 }, (_, i) => store.claimSend("conn-a", "same", `m-${i}`, WINDOW, T0)),
      );
      const winners = claims.flatMap((claim, i) => (claim.status === "claimed" ? [i] : []));
      expect(winners).to.have.length(1);
      for (const claim of claims) if (claim.status === "duplicate") expect(claim.id).to.equal(`m-${winners[0]}`);
    });

    it("frees a reference after its window, and when the send is released", async () => {
      const store = await fresh();
      await store.claimSend("u", "r1", "m-1", WINDOW, T0);
      expect((await store.claimSend("u", "r1", "m-2", WINDOW, T0 + WINDOW - 1)).status).to.equal("duplicate");
      expect((await store.claimSend("u", "r1", "m-3", WINDOW, T0 + WINDOW)).status).to.equal("claimed");
      await store.claimSend("u", "r2", "m-4", WINDOW, T0);
      // Settling with another send's id changes nothing.
      await store.settleSend("u", "r2", { id: "m-other", released: true }, WINDOW, T0 + 1);
      expect((await store.claimSend("u", "r2", "m-5", WINDOW, T0 + 2)).status).to.equal("duplicate");
      await store.settleSend("u", "r2", { id: "m-4", released: true }, WINDOW, T0 + 3);
      expect((await store.claimSend("u", "r2", "m-6", WINDOW, T0 + 4)).status).to.equal("claimed");
    });

    it("runs the window on from the settlement", async () => {
      const store = await fresh();
      await store.claimSend("u", "r", "m-1", WINDOW, T0);
      await store.settleSend("u", "r", { id: "m-1", seq: 3 }, WINDOW, T0 + 30_000);
      expect(await store.claimSend("u", "r", "m-2", WINDOW, T0 + WINDOW + 1)).to.deep.equal({
        status: "duplicate",
        id: "m-1",
        seq: 3,
      });
      expect((await store.claimSend("u", "r", "m-2", WINDOW, T0 + WINDOW + 30_000)).status).to.equal("claimed");
    });
  });

  describe("touch (heartbeat)", () => {
    it("records lastSeenAt on a live record without moving its expiry", async () => {
      const store = await fresh();
      const added = record("hb-a", { attributes: { userId: "u" } });
      await store.add(added);
      expect(await store.get("hb-a")).to.not.have.property("lastSeenAt");
      const seen = Date.now();
      expect(await store.touch("hb-a", seen)).to.equal(true);
      expect(await store.get("hb-a")).to.deep.equal({ ...added, lastSeenAt: seen });
      expect(await store.touch("hb-a", seen + 10)).to.equal(true);
      expect((await store.get("hb-a"))?.lastSeenAt).to.equal(seen + 10);
      expectExactlyOnce(await listAll(store), ["hb-a"]);
      // A new record of the same id starts unseen.
      await store.add(added);
      expect(await store.get("hb-a")).to.deep.equal(added);
    });

    it("answers false, creating nothing, for an unknown or expired connection", async () => {
      const store = await fresh();
      expect(await store.touch("hb-ghost")).to.equal(false);
      expect(await store.get("hb-ghost")).to.equal(undefined);
      await store.add(record("hb-old", { expiresAt: Date.now() + 1_000 }));
      expect(await store.touch("hb-old", Date.now() + 2_000)).to.equal(false);
      expect(await listAll(store)).to.deep.equal(["hb-old"]);
    });
  });
}

describe("room history, send references and heartbeat (every store)", () => {
  describe("MemoryConnectionStore", () => {
    roomHistoryContract(async () => new MemoryConnectionStore());
  });

  describe("MemoryConnectionStore across a thread bridge", () => {
    roomHistoryContract(async () => bridgedMemoryStore());
  });

  describe("RedisConnectionStore", () => {
    let redis: TestRedis;
    let admin: Redis;
    const runPrefix = `test-history-${randomUUID()}`;
    before(async function () {
      this.timeout(10_000);
      redis = await startRedis();
      admin = new Redis(redis.url);
    });
    after(async () => {
      if (admin) {
        for await (const keys of admin.scanStream({ match: `{${runPrefix}*`, count: 1_000 })) {
          if ((keys as string[]).length > 0) await admin.unlink(...(keys as string[]));
        }
        await admin.quit();
      }
      await redis?.stop();
    });
    roomHistoryContract(
      async () => new RedisConnectionStore({ url: redis.url, keyPrefix: `${runPrefix}-${randomUUID()}` }),
    );

    it("keeps history, counter and claims under the store's one hash tag, each expiring", async () => {
      const prefix = `${runPrefix}-${randomUUID()}`;
      const store = new RedisConnectionStore({ url: redis.url, keyPrefix: prefix });
      try {
        const bounds = { maxEntries: 3, maxAgeMs: 60_000 };
        const now = Date.now();
        for (let i = 1; i <= 5; i++) await store.appendHistory("lobby", { id: `m-${i}`, frame: `f|${i}` }, bounds, now);
        await store.claimSend("user|1", "ref-1", "m-1", 10_000, now);
        expect((await admin.keys(`*${prefix}*`)).sort()).to.deep.equal([
          `{${prefix}}:hist:lobby`,
          `{${prefix}}:send:user|1#ref-1`,
          `{${prefix}}:seq:lobby`,
        ]);
        expect(await admin.get(`{${prefix}}:seq:lobby`)).to.equal("5");
        expect(await admin.zrange(`{${prefix}}:hist:lobby`, "0", "-1", "WITHSCORES")).to.deep.equal([
          `3|${now}|["m-3","f|3"]`,
          "3",
          `4|${now}|["m-4","f|4"]`,
          "4",
          `5|${now}|["m-5","f|5"]`,
          "5",
        ]);
        // Entries expire a minute after the history age, the counter after 30 days, a claim after its window.
        expect(await admin.pttl(`{${prefix}}:hist:lobby`)).to.be.within(110_000, 120_000);
        expect(await admin.pttl(`{${prefix}}:seq:lobby`)).to.be.within(30 * 86_400_000 - 10_000, 30 * 86_400_000);
        expect(await admin.pttl(`{${prefix}}:send:user|1#ref-1`)).to.be.within(60_000, 70_000);
      } finally {
        await store.close();
      }
    });
  });

  describe("DynamoDbConnectionStore", () => {
    let dynamo: TestDynamoDb;
    let client: DynamoDBClient;
    before(async () => {
      dynamo = await startDynalite();
      client = localDynamoDbClient(dynamo.endpoint);
    });
    after(async () => {
      client?.destroy();
      await dynamo?.stop();
    });
    const freshTable = async () => {
      const tableName = `history-${randomUUID()}`;
      await createConnectionsTable(client, tableName);
      return tableName;
    };
    roomHistoryContract(async () => new DynamoDbConnectionStore({ tableName: await freshTable(), client }));

    it("keeps the counter, the entries (the one past the count bound deleted) and claims as items no listing returns", async () => {
      const tableName = await freshTable();
      const store = new DynamoDbConnectionStore({ tableName, client });
      const bounds = { maxEntries: 2, maxAgeMs: 60_000 };
      const now = 1_900_000_000_000;
      for (let i = 1; i <= 3; i++) await store.appendHistory("lobby", { id: `m-${i}`, frame: `f${i}` }, bounds, now);
      await store.claimSend("u", "r", "m-3", 10_000, now);
      const raw = async (id: string) =>
        (await client.send(new GetItemCommand({ TableName: tableName, Key: { connectionId: { S: id } } }))).Item;
      expect(await raw("seq#lobby")).to.deep.equal({
        connectionId: { S: "seq#lobby" },
        seq: { N: "3" },
        ttl: { N: String((now + 30 * 86_400_000) / 1000) },
      });
      expect(await raw("hist#lobby#1"), "deleted by the third append").to.equal(undefined);
      expect(await raw("hist#lobby#3")).to.deep.equal({
        connectionId: { S: "hist#lobby#3" },
        seq: { N: "3" },
        ts: { N: String(now) },
        messageId: { S: "m-3" },
        frame: { S: "f3" },
        ttl: { N: String((now + 60_000) / 1000) },
      });
      expect(await raw("send#u#r")).to.deep.equal({
        connectionId: { S: "send#u#r" },
        sendId: { S: "m-3" },
        until: { N: String(now + 10_000) },
        ttl: { N: String((now + 10_000) / 1000) },
      });
      await store.add(record("a"));
      expect(await listAll(store)).to.deep.equal(["a"]);
    });
  });
});
