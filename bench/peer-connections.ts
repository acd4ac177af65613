/**
 * How long the local gateway and the tools a user would pick instead take to open N WebSocket connections, each
 * through a `$connect` handler that answers 200 (docs/benchmarks.md#local-gateway-against-its-peers). Bounded and
 * loopback-only: every target listens on 127.0.0.1, every run has a deadline, and the target is stopped after.
 *
 *   npm run bench:peers -- --target ours --n 1000 --concurrency 50 --runs 3
 *   npm run bench:peers -- --target architect --dir ../peers/arc --n 100 --concurrency 4
 *   npm run bench:peers -- --target serverless-offline --dir ../peers/sls --n 1000
 *
 * `--dir` is a folder outside the repository where the peer is installed, outside the repository (`npm install @architect/sandbox@9.0.0`,
 * or `npm install serverless@3.40.0 serverless-offline@13.10.1`); the bench writes the peer's tiny project there.
 */
import { type ChildProcess, spawn } from "node:child_process";
import { mkdirSync, writeFileSync } from "node:fs";
import { join, resolve } from "node:path";
import { parseArgs } from "node:util";
import { WebSocket } from "ws";

const OK_HANDLER = "exports.handler = async () => ({ statusCode: 200 });\n";
const DUMMY_AWS = { AWS_ACCESS_KEY_ID: "local", AWS_SECRET_ACCESS_KEY: "local", AWS_REGION: "us-east-1" };

interface Target {
  readonly url: string;
  start(): ChildProcess;
}

function architect(dir: string, port: number): Target {
  writeFileSync(join(dir, "app.arc"), "@app\npeerbench\n@ws\n");
  for (const route of ["connect", "disconnect", "default"]) {
    mkdirSync(join(dir, "src", "ws", route), { recursive: true });
    writeFileSync(join(dir, "src", "ws", route, "index.js"), OK_HANDLER);
  }
  return {
    url: `ws://127.0.0.1:${port}`,
    // Dummy credentials: without them the sandbox probes the ECS/EC2 metadata endpoints for some.
    start: () =>
      spawn(process.execPath, [join(dir, "node_modules", ".bin", "sandbox"), "--port", String(port)], {
        cwd: dir,
        env: { ...process.env, ...DUMMY_AWS, ARC_QUIET: "1" },
        stdio: "ignore",
      }),
  };
}

function serverlessOffline(dir: string, port: number): Target {
  const fn = (route: string) => `    handler: handler.handler\n    events:\n      - websocket: ${route}\n`;
  writeFileSync(
    join(dir, "serverless.yml"),
    "service: peerbench\nframeworkVersion: '3'\nprovider:\n  name: aws\n  runtime: nodejs20.x\n  region: us-east-1\n" +
      `plugins:\n  - serverless-offline\nfunctions:\n  connect:\n${fn("$connect")}  disconnect:\n${fn("$disconnect")}` +
      `  default:\n${fn("$default")}`,
  );
  writeFileSync(join(dir, "handler.js"), OK_HANDLER);
  const args = ["offline", "--host", "127.0.0.1", "--websocketPort", String(port)];
  args.push("--httpPort", String(port + 1), "--lambdaPort", String(port + 2));
  return {
    url: `ws://127.0.0.1:${port}`,
    start: () =>
      spawn(process.execPath, [join(dir, "node_modules", ".bin", "serverless"), ...args], {
        cwd: dir,
        env: { ...process.env, ...DUMMY_AWS, SLS_TELEMETRY_DISABLED: "1", SLS_NOTIFICATIONS_MODE: "off" },
        stdio: "ignore",
      }),
  };
}

function ours(port: number): Target {
  const root = join(__dirname, "..");
  const args = ["local/cli.ts", "--port", String(port), "--no-reload", "--json-logs", "--rate-limit-messages", "0"];
  return {
    url: `ws://127.0.0.1:${port}/dev`,
    start: () =>
      spawn(join(root, "node_modules", ".bin", "tsx"), args, { cwd: root, env: process.env, stdio: "ignore" }),
  };
}

/** Opens `n` connections, `concurrency` at a time; resolves with the wall time and how many opened. */
async function openAll(url: string, n: number, concurrency: number, deadlineMs: number) {
  const sockets: WebSocket[] = [];
  let next = 0;
  let failed = 0;
  const started = performance.now();
  const one = async (): Promise<void> => {
    while (next < n && performance.now() - started < deadlineMs) {
      next++;
      await new Promise<void>((resolve) => {
        const ws = new WebSocket(url);
        ws.once("open", () => {
          sockets.push(ws);
          resolve();
        });
        ws.once("error", () => {
          failed++;
          resolve();
        });
      });
    }
  };
  await Promise.all(Array.from({ length: concurrency }, one));
  const ms = performance.now() - started;
  for (const ws of sockets) ws.terminate();
  return { ms, opened: sockets.length, failed };
}

async function ready(url: string, timeoutMs: number): Promise<void> {
  const until = Date.now() + timeoutMs;
  while (Date.now() < until) {
    const probe = await openAll(url, 1, 1, 5_000);
    if (probe.opened === 1) return;
    await new Promise((resolve) => setTimeout(resolve, 500));
  }
  throw new Error(`${url} did not accept a connection within ${timeoutMs} ms`);
}

async function main(): Promise<void> {
  const { values } = parseArgs({
    options: {
      target: { type: "string", default: "ours" },
      dir: { type: "string" },
      n: { type: "string", default: "1000" },
      concurrency: { type: "string", default: "50" },
      runs: { type: "string", default: "3" },
      port: { type: "string", default: "3561" },
    },
  });
  const port = Number(values.port);
  const peerDir = () => {
    if (!values.dir) throw new Error(`--dir <folder where ${values.target} is installed> is required`);
    return resolve(values.dir);
  };
  const target =
    values.target === "architect"
      ? architect(peerDir(), port)
      : values.target === "serverless-offline"
        ? serverlessOffline(peerDir(), port)
        : ours(port);
  const child = target.start();
  try {
    await ready(target.url, 60_000);
    const runs: number[] = [];
    for (let i = 0; i < Number(values.runs); i++) {
      const run = await openAll(target.url, Number(values.n), Number(values.concurrency), 300_000);
      console.log(JSON.stringify({ target: values.target, n: Number(values.n), run: i + 1, ...run }));
      if (run.opened === Number(values.n)) runs.push(run.ms);
      await new Promise((resolve) => setTimeout(resolve, 1000));
    }
    runs.sort((a, b) => a - b);
    const mid = Math.floor(runs.length / 2);
    const median =
      runs.length === 0 ? undefined : Math.round(runs.length % 2 ? runs[mid]! : (runs[mid - 1]! + runs[mid]!) / 2);
    console.log(
      JSON.stringify({ target: values.target, n: Number(values.n), complete: runs.length, medianMs: median }),
    );
  } finally {
    child.kill("SIGTERM");
  }
}

main().catch((error: unknown) => {
  console.error(error instanceof Error ? error.message : error);
  process.exit(1);
});
