/**
 * The stores of `npm run bench:faults` as processes the bench can fault for real: a `redis-server` and a dynalite,
 * each a child process on a free loopback port (never 6379), which the bench can stop (SIGSTOP), continue
 * (SIGCONT), kill and start again on the same port (its data is gone: both keep it in memory only), and, for Redis,
 * whose client connections it can cut (`CLIENT KILL TYPE normal`). Every child is registered in `children`, which
 * the bench kills on any exit.
 */
import { type ChildProcess, spawn } from "node:child_process";
import { createConnection } from "node:net";
import * as path from "node:path";
import { createConnectionsTable, localDynamoDbClient } from "../test/support/dynalite";
import { freePort } from "../test/support/redis-server";

const START_TIMEOUT_MS = 10_000;

/** Every child process the bench started and has not seen exit: killed (SIGKILL, by pid) when the bench exits. */
export const children = new Set<ChildProcess>();

export function track(child: ChildProcess): ChildProcess {
  children.add(child);
  child.once("exit", () => children.delete(child));
  return child;
}

/** Kills every child still running: continued first (a stopped process does not act on SIGTERM). */
export function killAllChildren(): void {
  for (const child of children) {
    if (child.pid === undefined) continue;
    try {
      process.kill(child.pid, "SIGCONT");
      process.kill(child.pid, "SIGKILL");
    } catch {
      // Already gone.
    }
  }
}

/** Stops a child: SIGTERM, then SIGKILL after `graceMs`; resolves once it exited. */
export function stopChild(child: ChildProcess, graceMs = 2000): Promise<void> {
  if (child.exitCode !== null || child.signalCode !== null) return Promise.resolve();
  return new Promise((resolve) => {
    const timer = setTimeout(() => child.kill("SIGKILL"), graceMs);
    child.once("exit", () => {
      clearTimeout(timer);
      resolve();
    });
    child.kill("SIGCONT");
    child.kill("SIGTERM");
  });
}

/** One inline command to a Redis on loopback; resolves with the first reply line ("" on timeout or error). */
export function redisInline(port: number, command: string, timeoutMs = 1000): Promise<string> {
  return new Promise((resolve) => {
    const socket = createConnection({ host: "127.0.0.1", port });
    let reply = "";
    const done = (line: string) => {
      socket.destroy();
      resolve(line);
    };
    socket.setTimeout(timeoutMs, () => done(""));
    socket.once("error", () => done(""));
    socket.once("connect", () => socket.write(`${command}\r\n`));
    socket.on("data", (chunk) => {
      reply += chunk.toString();
      const end = reply.indexOf("\r\n");
      if (end >= 0) done(reply.slice(0, end));
    });
  });
}

async function until(probe: () => Promise<boolean>, what: string, timeoutMs = START_TIMEOUT_MS): Promise<void> {
  const deadline = Date.now() + timeoutMs;
  while (!(await probe())) {
    if (Date.now() > deadline) throw new Error(`${what} within ${timeoutMs} ms`);
    await new Promise((resolve) => setTimeout(resolve, 50));
  }
}

/** A child process the bench can stop, continue and restart on the same port. */
abstract class StoreProcess {
  protected child: ChildProcess | undefined;
  constructor(readonly port: number) {}

  protected abstract spawnChild(): ChildProcess;
  protected abstract ready(): Promise<boolean>;

  async start(): Promise<void> {
    const child = track(this.spawnChild());
    this.child = child;
    let output = "";
    child.stdout?.on("data", (chunk: Buffer) => (output = (output + chunk.toString()).slice(-2000)));
    child.stderr?.on("data", (chunk: Buffer) => (output = (output + chunk.toString()).slice(-2000)));
    try {
      await until(async () => {
        if (child.exitCode !== null) throw new Error(`exited (${child.exitCode}) before it was ready: ${output}`);
        return this.ready();
      }, `${this.constructor.name} on port ${this.port} was not ready`);
    } catch (error) {
      child.kill("SIGKILL");
      throw error;
    }
  }

  /** The store hangs: the process is stopped, its sockets stay open, nothing answers. */
  hang(): void {
    this.child?.kill("SIGSTOP");
  }

  resume(): void {
    this.child?.kill("SIGCONT");
  }

  /** Killed (SIGKILL: a crash) and started again on the same port after `downMs`; its data is gone. */
  async restart(downMs: number): Promise<void> {
    const child = this.child;
    if (child && child.exitCode === null && child.signalCode === null) {
      const exited = new Promise<void>((resolve) => child.once("exit", () => resolve()));
      child.kill("SIGCONT");
      child.kill("SIGKILL");
      await exited;
    }
    await new Promise((resolve) => setTimeout(resolve, downMs));
    await this.start();
  }

  async stop(): Promise<void> {
    if (this.child) await stopChild(this.child);
  }
}

export class RedisProcess extends StoreProcess {
  static async create(): Promise<RedisProcess> {
    const redis = new RedisProcess(await freePort());
    await redis.start();
    return redis;
  }

  get url(): string {
    return `redis://127.0.0.1:${this.port}`;
  }

  protected spawnChild(): ChildProcess {
    // As test/support/redis-server.ts: loopback only, nothing persisted (a restart loses every key).
    const args = ["--port", String(this.port), "--bind", "127.0.0.1", "--save", "", "--appendonly", "no"];
    return spawn("redis-server", args, { stdio: ["ignore", "pipe", "pipe"] });
  }

  protected async ready(): Promise<boolean> {
    return (await redisInline(this.port, "PING", 500)) === "+PONG";
  }

  /** Cuts every client connection (the bench's own probe skips itself); resolves with how many were cut. */
  async dropClients(): Promise<number> {
    const reply = await redisInline(this.port, "CLIENT KILL TYPE normal");
    return reply.startsWith(":") ? Number(reply.slice(1)) : 0;
  }
}

/** dynalite (DynamoDB in memory) in a process of its own, with the connections table the handlers use. */
export class DynaliteProcess extends StoreProcess {
  static async create(tableName: string): Promise<DynaliteProcess> {
    const dynalite = new DynaliteProcess(await freePort(), tableName);
    await dynalite.start();
    return dynalite;
  }

  private constructor(
    port: number,
    readonly tableName: string,
  ) {
    super(port);
  }

  get endpoint(): string {
    return `http://127.0.0.1:${this.port}`;
  }

  protected spawnChild(): ChildProcess {
    const script =
      "const server = require('dynalite')({ createTableMs: 0, deleteTableMs: 0, updateTableMs: 0 });" +
      "server.listen(Number(process.argv[1]), '127.0.0.1', () => process.stdout.write('listening\\n'));";
    return spawn(process.execPath, ["-e", script, String(this.port)], {
      cwd: path.join(__dirname, ".."),
      stdio: ["ignore", "pipe", "pipe"],
    });
  }

  protected async ready(): Promise<boolean> {
    return new Promise((resolve) => {
      const socket = createConnection({ host: "127.0.0.1", port: this.port });
      socket.once("connect", () => {
        socket.destroy();
        resolve(true);
      });
      socket.once("error", () => resolve(false));
    });
  }

  /**
   * A started dynalite is empty: the table is created as infra would create it. After a restart this is the
   * operator bringing the store back, empty (what a restarted in-memory store is).
   */
  override async start(): Promise<void> {
    await super.start();
    const client = localDynamoDbClient(this.endpoint);
    try {
      await createConnectionsTable(client, this.tableName);
    } finally {
      client.destroy();
    }
  }
}
