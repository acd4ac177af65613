/**
 * A throwaway Redis for tests: its own `redis-server` on a free loopback port, or the server named by REDIS_URL.
 * Never the machine's default 6379 implicitly, so tests cannot touch a developer's data.
 */
import { type ChildProcess, spawn } from "node:child_process";
import { createConnection, createServer } from "node:net";

export interface TestRedis {
  /** Includes the password when the server requires one. */
  readonly url: string;
  /** Loopback port of a server this process started (absent for REDIS_URL's). */
  readonly port?: number;
  /** Process id of a server this process started (tests pause it with SIGSTOP to fail requests mid-listing). */
  readonly pid?: number;
  stop(): Promise<void>;
}

export interface StartRedisOptions {
  /**
   * Require this AUTH password (`--requirepass`). Always starts a server of its own, even when REDIS_URL is set:
   * the tests may not change a shared server's password.
   */
  readonly password?: string;
}

const START_TIMEOUT_MS = 5000;

export async function startRedis(options: StartRedisOptions = {}): Promise<TestRedis> {
  const { password } = options;
  const external = process.env.REDIS_URL?.trim();
  if (external && password === undefined) return { url: external, stop: async () => {} };

  const port = await freePort();
  const args = ["--port", String(port), "--bind", "127.0.0.1", "--save", "", "--appendonly", "no"];
  if (password !== undefined) args.push("--requirepass", password);
  const child = spawn("redis-server", args, {
    stdio: ["ignore", "pipe", "pipe"],
  });
  let output = "";
  child.stdout?.on("data", (chunk: Buffer) => (output += chunk.toString()));
  child.stderr?.on("data", (chunk: Buffer) => (output += chunk.toString()));
  const exited = new Promise<Error>((resolve) => {
    child.once("error", (error: NodeJS.ErrnoException) =>
      resolve(
        error.code === "ENOENT"
          ? new Error(
              "redis-server is not on PATH: install Redis (>= 6.2) or set REDIS_URL to a server the tests may use",
            )
          : error,
      ),
    );
    child.once("exit", (code, signal) =>
      resolve(new Error(`redis-server exited (${code ?? signal}) before answering PING:\n${output}`)),
    );
  });

  const started = await Promise.race([waitForPing(port, password).then(() => undefined), exited]);
  if (started instanceof Error) {
    child.kill("SIGKILL");
    throw started;
  }
  const auth = password === undefined ? "" : `:${encodeURIComponent(password)}@`;
  return { url: `redis://${auth}127.0.0.1:${port}`, port, pid: child.pid, stop: () => stop(child) };
}

/** A port the OS just handed out and released; a tiny race with other processes is acceptable in tests. */
export function freePort(): Promise<number> {
  return new Promise((resolve, reject) => {
    const server = createServer();
    server.once("error", reject);
    server.listen(0, "127.0.0.1", () => {
      const address = server.address();
      server.close(() =>
        typeof address === "object" && address ? resolve(address.port) : reject(new Error("no port")),
      );
    });
  });
}

async function waitForPing(port: number, password?: string): Promise<void> {
  const deadline = Date.now() + START_TIMEOUT_MS;
  for (;;) {
    if (await ping(port, password)) return;
    if (Date.now() > deadline)
      throw new Error(`redis-server on port ${port} did not answer PING within ${START_TIMEOUT_MS} ms`);
    await new Promise((resolve) => setTimeout(resolve, 50));
  }
}

function ping(port: number, password?: string): Promise<boolean> {
  return new Promise((resolve) => {
    const socket = createConnection({ host: "127.0.0.1", port });
    let reply = "";
    const done = (ok: boolean) => {
      socket.destroy();
      resolve(ok);
    };
    socket.setTimeout(500, () => done(false));
    socket.once("error", () => done(false));
    // Inline commands: a test password has no spaces or CR/LF.
    const replies = password === undefined ? 1 : 2;
    socket.once("connect", () => socket.write(`${password === undefined ? "" : `AUTH ${password}\r\n`}PING\r\n`));
    socket.on("data", (chunk) => {
      reply += chunk.toString();
      const lines = reply.split("\r\n");
      if (lines.length > replies) done(lines[replies - 1] === "+PONG");
    });
  });
}

function stop(child: ChildProcess): Promise<void> {
  if (child.exitCode !== null || child.signalCode !== null) return Promise.resolve();
  return new Promise((resolve) => {
    child.once("exit", () => resolve());
    child.kill("SIGTERM");
  });
}
