/**
 * Child processes of the bench: the throttled endpoint, and one fresh process per measured run (so one run's
 * heap never inflates the next one's peak RSS). Both talk to the parent over IPC; both are killed when a run
 * exceeds its time bound or the parent exits.
 */
import { type ChildProcess, fork } from "node:child_process";
import * as path from "node:path";
import type { EndpointParams, EndpointStats, RunIds } from "./throttled-endpoint";

// --expose-gc: the memory store's own data is measured between two collections.
const TSX = ["--require", "tsx/cjs", "--expose-gc"];

function forkTs(file: string, args: string[] = []): ChildProcess {
  return fork(path.join(__dirname, file), args, {
    execArgv: TSX,
    // The SDK's "node >= 22 from 2027" notice, once per child, would bury the tables.
    env: { ...process.env, AWS_SDK_JS_NODE_VERSION_SUPPORT_WARNING_DISABLED: "true" },
    stdio: ["ignore", "inherit", "inherit", "ipc"],
  });
}

/** Resolves with the first IPC message of `type`; rejects if the child exits first or `timeoutMs` passes. */
function nextMessage<T>(child: ChildProcess, type: string, timeoutMs: number): Promise<T> {
  return new Promise((resolve, reject) => {
    const timer = setTimeout(() => {
      cleanup();
      reject(new Error(`no "${type}" message from child ${child.pid} within ${timeoutMs} ms`));
    }, timeoutMs);
    const onMessage = (message: { type?: string }) => {
      if (message?.type !== type) return;
      cleanup();
      resolve(message as T);
    };
    const onExit = (code: number | null, signal: string | null) => {
      cleanup();
      reject(new Error(`child ${child.pid} exited (${code ?? signal}) before sending "${type}"`));
    };
    const cleanup = () => {
      clearTimeout(timer);
      child.off("message", onMessage);
      child.off("exit", onExit);
    };
    child.on("message", onMessage);
    child.once("exit", onExit);
  });
}

export interface EndpointProcess {
  readonly origin: string;
  reset(run: RunIds): Promise<void>;
  stats(): Promise<EndpointStats>;
  stop(): Promise<void>;
}

export async function startEndpointProcess(params: EndpointParams): Promise<EndpointProcess> {
  const child = forkTs("throttled-endpoint.ts");
  const listening = nextMessage<{ port: number }>(child, "listening", 30_000);
  child.send({ type: "start", params });
  const { port } = await listening;
  return {
    origin: `${params.tls ? "https" : "http"}://127.0.0.1:${port}`,
    async reset(run) {
      const done = nextMessage(child, "reset-done", 60_000);
      child.send({ type: "reset", ...run });
      await done;
    },
    async stats() {
      const reply = nextMessage<{ stats: EndpointStats }>(child, "stats", 30_000);
      child.send({ type: "stats" });
      return (await reply).stats;
    },
    async stop() {
      if (child.exitCode !== null || child.signalCode !== null) return;
      const exited = new Promise<void>((resolve) => child.once("exit", () => resolve()));
      child.send({ type: "stop" });
      const timer = setTimeout(() => child.kill("SIGKILL"), 5_000);
      await exited;
      clearTimeout(timer);
    },
  };
}

/**
 * Runs `bench/run-one.ts` in a fresh process with `input`, and resolves with its `result` message. The child is
 * killed (SIGKILL, by its pid) when it runs past `timeoutMs`.
 */
export async function runInChild<I, O>(input: I, timeoutMs: number): Promise<O> {
  const child = forkTs("run-one.ts");
  const result = nextMessage<{ result: O }>(child, "result", timeoutMs);
  child.send({ type: "run", input });
  try {
    return (await result).result;
  } catch (error) {
    child.kill("SIGKILL");
    throw error;
  } finally {
    if (child.exitCode === null && child.signalCode === null) {
      await new Promise<void>((resolve) => {
        child.once("exit", () => resolve());
        child.kill("SIGTERM");
        setTimeout(() => child.kill("SIGKILL"), 5_000).unref();
      });
    }
  }
}
