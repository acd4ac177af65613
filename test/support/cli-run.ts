/**
 * `npm start` as a child process for the suites that watch its console: the CLI started in a directory (the
 * project, or a scratch copy of it that a test may edit), its output collected, the banner awaited.
 */
import { type ChildProcess, spawn } from "node:child_process";
import { cpSync, mkdtempSync, rmSync, symlinkSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { waitFor } from "./gateway";

export const ROOT = join(__dirname, "..", "..");

export interface CliRun {
  readonly child: ChildProcess;
  stdout: string;
  stderr: string;
  readonly exited: Promise<{ code: number | null; signal: NodeJS.Signals | null }>;
}

/** The environment without anything that would select a store or point at real AWS. */
export function cleanEnv(extra: Record<string, string> = {}): NodeJS.ProcessEnv {
  const env: NodeJS.ProcessEnv = { ...process.env, ...extra };
  for (const key of ["REDIS_URL", "AWS_ENDPOINT_URL_DYNAMODB", "PORT", "STORE", "TABLE_NAME", "CALLBACK_URL"]) {
    if (!(key in extra)) delete env[key];
  }
  for (const key of ["NO_COLOR", "FORCE_COLOR"]) if (!(key in extra)) delete env[key];
  // A developer's shell may carry auth or limit settings that the suites do not expect.
  for (const key of Object.keys(env)) {
    if ((key.startsWith("AUTH_") || key.startsWith("RATE_LIMIT_")) && !(key in extra)) delete env[key];
  }
  return env;
}

/** Starts `tsx local/cli.ts args` in `cwd`. */
export function runCli(args: string[], cwd = ROOT, env: NodeJS.ProcessEnv = cleanEnv()): CliRun {
  const tsx = join(ROOT, "node_modules", ".bin", "tsx");
  // Its own process group: tsx runs the CLI in a child node, which a kill of tsx alone would leave running.
  const child = spawn(tsx, ["local/cli.ts", ...args], { cwd, env, stdio: ["ignore", "pipe", "pipe"], detached: true });
  const run: CliRun = {
    child,
    stdout: "",
    stderr: "",
    exited: new Promise((resolve) => child.once("exit", (code, signal) => resolve({ code, signal }))),
  };
  child.stdout!.on("data", (chunk: Buffer) => (run.stdout += chunk.toString()));
  child.stderr!.on("data", (chunk: Buffer) => (run.stderr += chunk.toString()));
  return run;
}

/** Kills the CLI and everything it started (tsx's child node, esbuild's service); resolves once it exited. */
export async function killCli(run: CliRun): Promise<void> {
  if (run.child.exitCode === null && run.child.signalCode === null && run.child.pid !== undefined) {
    try {
      process.kill(-run.child.pid, "SIGKILL");
    } catch {
      // Already gone.
    }
  }
  await run.exited;
}

/** Waits for the banner; returns the WebSocket URL and the port. */
export async function bannerOf(run: CliRun): Promise<{ url: string; port: number }> {
  const exitedEarly = run.exited.then(({ code }) => {
    throw new Error(`the CLI exited (${code}) before starting:\n${run.stderr}${run.stdout}`);
  });
  const ready = waitFor(() => (run.stdout.includes("Ctrl-C to stop.") ? true : undefined), 20_000, "the banner");
  await Promise.race([ready, exitedEarly]);
  const url = /WebSocket:\s+(ws:\/\/\S+)/.exec(run.stdout)![1]!;
  return { url, port: Number(new URL(url).port) };
}

/** Waits until stdout (from `from` on) has a line matching `pattern`; returns it. */
export async function lineMatching(run: CliRun, pattern: RegExp, from = 0, timeoutMs = 10_000): Promise<string> {
  return waitFor(
    () =>
      run.stdout
        .slice(from)
        .split("\n")
        .find((line) => pattern.test(line)),
    timeoutMs,
    `a line matching ${pattern}`,
  );
}

/** What `npm start` runs from: copied to a scratch directory (node_modules linked), for tests that edit it. */
const PROJECT_PARTS = [
  "app",
  "broadcast",
  "chat",
  "contract",
  "handlers",
  "infra",
  "local",
  "runtime",
  "stores",
  "web",
  "package.json",
  "tsconfig.json",
  "Pulumi.yaml",
  "Pulumi.dev.yaml",
];

export function projectCopy(): { readonly dir: string; remove(): void } {
  const dir = mkdtempSync(join(tmpdir(), "websocket-chat-copy-"));
  for (const part of PROJECT_PARTS) cpSync(join(ROOT, part), join(dir, part), { recursive: true });
  symlinkSync(join(ROOT, "node_modules"), join(dir, "node_modules"), "dir");
  return { dir, remove: () => rmSync(dir, { recursive: true, force: true }) };
}
