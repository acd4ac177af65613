/**
 * `npm run bench:resume`: what a client misses across forced reconnects, the SDK against a naive client, on each
 * store. Per store, in one process: the local gateway with the real handlers (a short idle timeout), two SDK
 * senders talking into one room all along, and two readers: the SDK (sdk/), and a naive client (plain `ws` with the
 * subprotocol that, when its connection goes, connects again at once and joins the room, without `after`). N
 * forced reconnects cycle through a signed `DELETE @connections` of both readers' connections (the real AWS SDK
 * client), the idle timeout (the senders fall silent for longer than it), and a gateway restart on the same port
 * and store (a memory store starts empty, as `npm start` would).
 *
 * Prints, per store and reader: messages lost (acknowledged to a sender, never shown), duplicated (shown more than
 * once), out of order (shown after a message acknowledged later), and for the SDK the time from noticing the drop
 * to the first message shown on the new connection (median, p95; the senders send every ~20 ms, so that is the
 * resolution, and it includes the gateway's downtime on a restart). Figures, no asserts.
 *
 *   npm run bench:resume                                   # 12 reconnects on memory, redis, dynamodb
 *   npm run bench:resume -- --n 30 --stores redis
 */
import { DeleteConnectionCommand } from "@aws-sdk/client-apigatewaymanagementapi";
import { WebSocket } from "ws";
import type { ConnectionStore } from "../contract/connection-store";
import { CHAT_PROTOCOL } from "../contract/subprotocol";
import { type Ack, ChatClient, type MessageEvent } from "../sdk";
import { DynamoDbConnectionStore } from "../stores/dynamodb";
import { MemoryConnectionStore } from "../stores/memory";
import { RedisConnectionStore } from "../stores/redis";
import { createConnectionsTable, localDynamoDbClient, startDynalite } from "../test/support/dynalite";
import { type ChatGateway, managementClient, startBurstGateway } from "../test/support/gateway";
import { startRedis } from "../test/support/redis-server";

type StoreName = "memory" | "redis" | "dynamodb";
type Kind = "delete" | "idle" | "restart";
const ROOM = "bench";
const IDLE_MS = 500;
const pause = (ms: number) => new Promise((resolve) => setTimeout(resolve, ms));

function args(): { n: number; stores: StoreName[] } {
  const argv = process.argv.slice(2);
  const value = (flag: string) => {
    const i = argv.indexOf(flag);
    return i >= 0 ? argv[i + 1] : undefined;
  };
  return {
    n: Number(value("--n") ?? 12),
    stores: (value("--stores") ?? "memory,redis,dynamodb").split(",") as StoreName[],
  };
}

function quantile(samples: number[], q: number): number {
  if (samples.length === 0) return Number.NaN;
  const sorted = [...samples].sort((a, b) => a - b);
  return sorted[Math.min(sorted.length - 1, Math.floor(q * sorted.length))]!;
}

interface Shown {
  readonly id: string;
}

/** The naive baseline: reconnects at once and joins again, nothing else. */
class NaiveReader {
  readonly shown: Shown[] = [];
  connectionId: string | undefined;
  private socket: WebSocket | undefined;
  private closed = false;

  constructor(private readonly url: string) {}

  start(): void {
    if (this.closed) return;
    const socket = new WebSocket(this.url, CHAT_PROTOCOL);
    this.socket = socket;
    this.connectionId = undefined;
    socket.on("open", () => {
      socket.send(JSON.stringify({ action: "whoami" }));
      socket.send(JSON.stringify({ action: "join", room: ROOM }));
    });
    socket.on("message", (data) => {
      const frame = JSON.parse(String(data)) as { type?: string; id?: string; room?: string; connectionId?: string };
      if (frame.type === "whoami") this.connectionId = frame.connectionId;
      if (frame.type === "message" && frame.room === ROOM && frame.id) this.shown.push({ id: frame.id });
    });
    socket.on("error", () => {});
    socket.on("close", () => setTimeout(() => this.start(), 20));
  }

  stop(): void {
    this.closed = true;
    this.socket?.close();
  }
}

interface Figures {
  lost: number;
  duplicated: number;
  outOfOrder: number;
}

/** `shown` against every acknowledged message: ids never shown, shown twice, shown after one acknowledged later. */
function tally(shown: readonly Shown[], order: ReadonlyMap<string, number>, since: number): Figures {
  const seen = new Map<string, number>();
  let outOfOrder = 0;
  let previous = -1;
  for (const { id } of shown) {
    seen.set(id, (seen.get(id) ?? 0) + 1);
    const rank = order.get(id);
    if (rank === undefined) continue;
    if (rank < previous) outOfOrder++;
    previous = Math.max(previous, rank);
  }
  let lost = 0;
  for (const [id, rank] of order) if (rank >= since && !seen.has(id)) lost++;
  const duplicated = [...seen.values()].reduce((sum, n) => sum + n - 1, 0);
  return { lost, duplicated, outOfOrder };
}

const gatewayOn = (store: ConnectionStore, port?: number): Promise<ChatGateway> =>
  startBurstGateway(store, { limits: { idleTimeoutMs: IDLE_MS }, ...(port ? { port } : {}) });

async function run(
  name: StoreName,
  n: number,
  open: () => Promise<ConnectionStore>,
  reopen: () => Promise<ConnectionStore>,
) {
  let gw = await gatewayOn(await open());
  const port = gw.gateway.port;
  const url = gw.gateway.url;
  const options = { url, WebSocket, reconnect: { baseMs: 20, capMs: 200 }, requestTimeoutMs: 2_000 };
  const senders = [0, 1].map(() => new ChatClient({ ...options, heartbeatMs: 150 }));
  const sdk = new ChatClient({ ...options, heartbeatMs: 60_000 });
  const sdkShown: Shown[] = [];
  const connections: string[] = [];
  let droppedAt: number | undefined;
  const resumeMs: number[] = [];
  sdk.on("identity", (who) => connections.push(who.connectionId));
  sdk.on("state", (state) => {
    if (state === "reconnecting" && droppedAt === undefined) droppedAt = performance.now();
  });
  sdk.on("message", (m: MessageEvent) => {
    if (m.type !== "message" || m.room !== ROOM || m.id === undefined) return;
    sdkShown.push({ id: m.id });
    if (droppedAt !== undefined && sdk.state === "open") {
      resumeMs.push(performance.now() - droppedAt);
      droppedAt = undefined;
    }
  });
  for (const client of [...senders, sdk]) client.connect();
  await Promise.all([...senders, sdk].map((client) => client.join(ROOM)));
  const naive = new NaiveReader(url);
  naive.start();
  await pause(300);

  // Every acknowledged message, ranked in the room's order (restart epoch, then seq).
  const acks: { ack: Ack; epoch: number }[] = [];
  let epoch = 0;
  let talking = true;
  let silent = false;
  const chatter = senders.map(async (sender, who) => {
    for (let i = 0; talking; i++) {
      if (silent) {
        await pause(20);
        continue;
      }
      const sent = sender.send(ROOM, `${who}-${i}`).then(
        (ack) => acks.push({ ack, epoch }),
        () => {},
      );
      await Promise.race([sent, pause(20)]);
      await pause(20);
    }
  });

  const kinds: Kind[] = ["delete", "idle", "restart"];
  const started = performance.now();
  for (let i = 0; i < n; i++) {
    await pause(400);
    const kind = kinds[i % kinds.length]!;
    if (kind === "delete") {
      const api = managementClient(gw.gateway.callbackUrl);
      const ids = [connections.at(-1), naive.connectionId].filter((id): id is string => id !== undefined);
      await Promise.all(ids.map((id) => api.send(new DeleteConnectionCommand({ ConnectionId: id })).catch(() => {})));
      api.destroy();
    } else if (kind === "idle") {
      // Silent until the gateway's idle timeout has dropped the SDK reader (which sends no heartbeat here).
      silent = true;
      const until = performance.now() + IDLE_MS + 1_000;
      while (sdk.state === "open" && performance.now() < until) await pause(5);
      silent = false;
    } else {
      await gw.stop();
      epoch++;
      gw = await gatewayOn(await reopen(), port);
    }
  }
  await pause(500);
  talking = false;
  await Promise.all(chatter);
  await pause(1_500);
  const seconds = (performance.now() - started) / 1000;

  const order = new Map<string, number>();
  const ranked = [...acks].sort((a, b) => a.epoch - b.epoch || (a.ack.seq ?? 0) - (b.ack.seq ?? 0));
  ranked.forEach(({ ack }, rank) => order.set(ack.id, rank));
  const sdkFigures = tally(sdkShown, order, 0);
  const naiveFigures = tally(naive.shown, order, 0);
  for (const client of [...senders, sdk]) client.close();
  naive.stop();
  await gw.stop();
  const line = (who: string, f: Figures) =>
    `  ${who.padEnd(6)} lost ${String(f.lost).padStart(4)}  duplicated ${String(f.duplicated).padStart(4)}  out of order ${String(f.outOfOrder).padStart(4)}`;
  console.log(
    `${name}: ${n} forced reconnects (delete / idle / restart in turn), ${acks.length} messages, ${seconds.toFixed(1)} s`,
  );
  console.log(line("sdk", sdkFigures));
  console.log(line("naive", naiveFigures));
  const ratio = naiveFigures.lost / Math.max(1, sdkFigures.lost);
  console.log(
    `  sdk resume after a drop: median ${quantile(resumeMs, 0.5).toFixed(0)} ms, p95 ${quantile(resumeMs, 0.95).toFixed(0)} ms (${resumeMs.length} resumes); naive lost ${naiveFigures.lost} vs sdk ${sdkFigures.lost} (${sdkFigures.lost === 0 ? `${naiveFigures.lost}:0` : `${ratio.toFixed(1)}x`})`,
  );
}

async function main(): Promise<void> {
  process.env.AWS_SDK_JS_NODE_VERSION_SUPPORT_WARNING_DISABLED ??= "true";
  const { n, stores } = args();
  for (const name of stores) {
    if (name === "memory") {
      await run(
        name,
        n,
        async () => new MemoryConnectionStore(),
        async () => new MemoryConnectionStore(),
      );
    } else if (name === "redis") {
      const redis = await startRedis();
      const opened: RedisConnectionStore[] = [];
      const keyPrefix = `bench-resume-${Date.now()}`;
      const same = async () => {
        const store = new RedisConnectionStore({ url: redis.url, keyPrefix });
        opened.push(store);
        return store;
      };
      await run(name, n, same, same);
      await Promise.all(opened.map((store) => store.close()));
      await redis.stop();
    } else {
      const dynamo = await startDynalite();
      const client = localDynamoDbClient(dynamo.endpoint);
      await createConnectionsTable(client, "bench-resume");
      const same = async () => new DynamoDbConnectionStore({ tableName: "bench-resume", client });
      await run(name, n, same, same);
      client.destroy();
      await dynamo.stop();
    }
  }
}

main().then(
  () => process.exit(0),
  (error: unknown) => {
    console.error(error);
    process.exit(1);
  },
);
