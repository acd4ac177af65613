/**
 * A gateway under test: a process tree the harness starts on 127.0.0.1, talks to, weighs and stops. Every target
 * is started in its own process group so that stopping it (also on Ctrl-C or a hang-up of the harness) reaches the
 * processes it spawned: the Architect sandbox starts one per invocation.
 */
import { type ChildProcess, spawn } from "node:child_process";
import { openSync, readdirSync, readFileSync } from "node:fs";

export interface TargetSetup {
  /** What clients connect to. */
  readonly url: string;
  /** The `@connections` endpoint (the SDK's `endpoint`); undefined when the target's handlers are not the probe. */
  readonly callback: string | undefined;
  readonly command: string;
  readonly args: readonly string[];
  readonly cwd: string;
  readonly env: NodeJS.ProcessEnv;
}

/** Dummy credentials: without them the sandbox probes the ECS/EC2 metadata endpoints for some. */
export const DUMMY_AWS = { AWS_ACCESS_KEY_ID: "local", AWS_SECRET_ACCESS_KEY: "local", AWS_REGION: "us-east-1" };

export class RunningTarget {
  private readonly exited: Promise<void>;
  private stopping: Promise<void> | undefined;

  constructor(
    readonly setup: TargetSetup,
    private readonly child: ChildProcess,
  ) {
    this.exited = new Promise((resolve) => child.once("exit", () => resolve()));
  }

  get pid(): number {
    return this.child.pid ?? -1;
  }

  get alive(): boolean {
    return this.child.exitCode === null && this.child.signalCode === null;
  }

  /** SIGTERM to the whole group, SIGKILL after `graceMs`. Idempotent. */
  stop(graceMs = 5000): Promise<void> {
    this.stopping ??= (async () => {
      signalGroup(this.pid, "SIGTERM");
      const timer = new Promise<"timeout">((resolve) => setTimeout(() => resolve("timeout"), graceMs).unref());
      if ((await Promise.race([this.exited.then(() => "exited" as const), timer])) === "timeout") {
        signalGroup(this.pid, "SIGKILL");
        await this.exited;
      }
      // Children that outlived the leader (an invocation process) go too.
      signalGroup(this.pid, "SIGKILL");
    })();
    return this.stopping;
  }
}

function signalGroup(pid: number, signal: NodeJS.Signals): void {
  try {
    process.kill(-pid, signal);
  } catch {
    // The group is gone already.
  }
}

/** Starts the target; its output goes to `logFile` (for when a target does not come up), else nowhere. */
export function startTarget(setup: TargetSetup, logFile?: string): RunningTarget {
  const out = logFile ? openSync(logFile, "w") : "ignore";
  const child = spawn(setup.command, [...setup.args], {
    cwd: setup.cwd,
    env: setup.env,
    detached: true,
    stdio: ["ignore", out, out],
  });
  return new RunningTarget(setup, child);
}

/** Resident memory of `root` and every process descending from it, in bytes (Linux /proc). */
export function processTreeRss(root: number): number {
  const children = new Map<number, number[]>();
  for (const entry of readdirSync("/proc")) {
    if (!/^\d+$/.test(entry)) continue;
    try {
      const stat = readFileSync(`/proc/${entry}/stat`, "utf8");
      // The command name may contain spaces and parentheses: fields restart after the last ")".
      const ppid = Number(stat.slice(stat.lastIndexOf(")") + 2).split(" ")[1]);
      const list = children.get(ppid) ?? [];
      list.push(Number(entry));
      children.set(ppid, list);
    } catch {
      // The process ended while we looked.
    }
  }
  let total = 0;
  const queue = [root];
  while (queue.length > 0) {
    const pid = queue.pop()!;
    try {
      const status = readFileSync(`/proc/${pid}/status`, "utf8");
      total += Number(/^VmRSS:\s+(\d+) kB/m.exec(status)?.[1] ?? 0) * 1024;
    } catch {
      continue;
    }
    queue.push(...(children.get(pid) ?? []));
  }
  return total;
}
