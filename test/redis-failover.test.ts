/**
 * A Redis failover as an ElastiCache primary endpoint shows it to a warm client, with real redis-servers: the
 * store reaches Redis through a loopback TCP proxy (the endpoint), the primary is demoted with REPLICAOF (its
 * connections stay open and every write answers READONLY), and the proxy then sends new connections to the new
 * primary (the endpoint's DNS moving). The store must reconnect and go on writing, through every kind of write
 * it makes (a transaction, a script, a pipeline of scripts), with nothing lost or half-applied.
 */
import { createConnection, createServer, type Server, type Socket } from "node:net";
import { expect } from "chai";
import { Redis } from "ioredis";
import { isReadOnlyError, RedisConnectionStore } from "../stores/redis";
import { startRedis, type TestRedis } from "./support/redis-server";

/** A TCP proxy whose target can be changed; existing connections keep theirs, as with a DNS change. */
async function startSwitchingProxy(port: number): Promise<{ port: number; target: number; close(): Promise<void> }> {
  const sockets = new Set<Socket>();
  const state = { target: port };
  const server: Server = createServer((client) => {
    const upstream = createConnection({ host: "127.0.0.1", port: state.target });
    for (const s of [client, upstream]) {
      sockets.add(s);
      s.on("close", () => sockets.delete(s));
      s.on("error", () => undefined);
    }
    client.pipe(upstream).pipe(client);
    client.on("close", () => upstream.destroy());
    upstream.on("close", () => client.destroy());
  });
  await new Promise<void>((resolve) => server.listen(0, "127.0.0.1", resolve));
  const address = server.address();
  return {
    port: typeof address === "object" && address ? address.port : 0,
    get target() {
      return state.target;
    },
    set target(value: number) {
      state.target = value;
    },
    close: () => {
      for (const s of sockets) s.destroy();
      return new Promise<void>((resolve) => server.close(() => resolve()));
    },
  };
}

const HOUR = 3_600_000;

describe("redis store across a failover (demoted primary answering READONLY)", function () {
  this.timeout(30_000);
  let first: TestRedis;
  let second: TestRedis;
  let adminFirst: Redis;
  let adminSecond: Redis;

  beforeEach(async () => {
    // Servers of our own (a password forces that even with REDIS_URL set): the test reconfigures them.
    [first, second] = await Promise.all([startRedis({ password: "failover" }), startRedis({ password: "failover" })]);
    adminFirst = new Redis(first.url);
    adminSecond = new Redis(second.url);
  });
  afterEach(async () => {
    adminFirst?.disconnect();
    adminSecond?.disconnect();
    await Promise.all([first?.stop(), second?.stop()]);
  });

  it("reconnects on READONLY only", () => {
    expect(isReadOnlyError(new Error("READONLY You can't write against a read only replica."))).to.equal(true);
    expect(isReadOnlyError(new Error("ERR unknown command"))).to.equal(false);
    expect(isReadOnlyError(new Error("EXECABORT Transaction discarded because of previous errors."))).to.equal(false);
  });

  it("reconnects to the new primary and goes on writing, every kind of write applied once", async () => {
    const proxy = await startSwitchingProxy(first.port!);
    const store = new RedisConnectionStore({
      host: "127.0.0.1",
      port: proxy.port,
      tls: false,
      authToken: "failover",
      keyPrefix: "failover",
    });
    try {
      const now = Date.now();
      await store.add({ connectionId: "before", connectedAt: now - 60_000, expiresAt: now + HOUR });
      expect(await store.join("before", "lobby", 10)).to.equal("joined");

      // Failover: the second server takes over with the data (it replicates, then is promoted), the first becomes its
      // replica, and the endpoint now leads to the second. The store's open connection still leads to the first.
      // Replication without files: a full sync would otherwise write dump.rdb into the working directory, where
      // every redis-server a later test starts would load it.
      for (const admin of [adminFirst, adminSecond]) {
        await admin.config("SET", "masterauth", "failover");
        await admin.config("SET", "repl-diskless-sync", "yes");
        await admin.config("SET", "repl-diskless-sync-delay", "0");
        await admin.config("SET", "repl-diskless-load", "swapdb");
      }
      await adminSecond.replicaof("127.0.0.1", String(first.port!));
      for (let i = 0; i < 100 && !(await adminSecond.info("replication")).includes("master_link_status:up"); i++)
        await new Promise((resolve) => setTimeout(resolve, 50));
      await adminSecond.call("REPLICAOF", "NO", "ONE");
      await adminFirst.replicaof("127.0.0.1", String(second.port!));
      proxy.target = second.port!;

      expect(await adminSecond.exists("{failover}:conn:before"), "replicated").to.equal(1);
      // A transaction (add, countMessage), a script (join), a pipeline of scripts (removeMany).
      await store.add({ connectionId: "after", connectedAt: now, expiresAt: now + HOUR, attributes: { name: "z" } });
      expect(await store.countMessage("after", 10_000)).to.equal(1);
      expect(await store.countMessage("after", 10_000)).to.equal(2);
      expect(await store.join("after", "lobby", 10)).to.equal("joined");
      expect((await store.removeMany(["before"])).map((r) => r.connectionId)).to.deep.equal(["before"]);

      expect(await store.get("after")).to.deep.include({ connectionId: "after", attributes: { name: "z" } });
      expect(await store.get("before")).to.equal(undefined);
      const members: string[] = [];
      for await (const page of store.list({ room: "lobby" })) members.push(...page);
      expect(members).to.deep.equal(["after"]);
      // Written to the new primary, and exactly once (a resent INCR would have counted twice).
      expect(await adminSecond.hget("{failover}:conn:after", "attributes")).to.equal('{"name":"z"}');
    } finally {
      await store.close();
      await proxy.close();
    }
  });
});
