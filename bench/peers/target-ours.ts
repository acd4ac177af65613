/**
 * The local gateway as two targets: `ours` serves the probe handlers (ours-probe-server.ts), so its figures compare
 * with the peers'; `ours-chat` is `npm start` itself with the real chat handlers (memory store, rate limits off so
 * the bench is not throttled).
 */
import { mkdtempSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { type ProbeConfig, writeProbe } from "./probe-handler";
import { DUMMY_AWS, type TargetSetup } from "./target";

const ROOT = join(__dirname, "..", "..");
const TSX = ["--require", "tsx/cjs"];

/** `--cpu-prof-dir`: the gateway process writes a CPU profile there when it stops. */
const profile = (dir: string | undefined) => (dir ? ["--cpu-prof", `--cpu-prof-dir=${dir}`] : []);

/** `workers`: `npm start`'s `--workers` (default: its default). */
export function oursProbe(
  port: number,
  probe: Omit<ProbeConfig, "callback">,
  cpuProfDir?: string,
  workers?: string,
): TargetSetup {
  // The probe files are the bench's own; a fresh temporary folder keeps them out of the repository.
  const dir = mkdtempSync(join(tmpdir(), "peers-ours-"));
  const callback = `http://127.0.0.1:${port}/dev`;
  writeProbe(dir, { ...probe, callback });
  return {
    url: `ws://127.0.0.1:${port}/dev`,
    callback,
    command: process.execPath,
    args: [
      ...TSX,
      ...profile(cpuProfDir),
      join(__dirname, "ours-probe-server.ts"),
      String(port),
      dir,
      ...(workers === undefined ? [] : [workers]),
    ],
    cwd: ROOT,
    env: { ...process.env, ...DUMMY_AWS, AWS_SDK_JS_NODE_VERSION_SUPPORT_WARNING_DISABLED: "true" },
  };
}

export function oursChat(port: number, cpuProfDir?: string, workers?: string): TargetSetup {
  const flags = ["--port", String(port), "--no-reload", "--json-logs", "--store", "memory"];
  if (workers !== undefined) flags.push("--workers", workers);
  flags.push("--rate-limit-messages", "0", "--rate-limit-broadcasts", "0");
  return {
    url: `ws://127.0.0.1:${port}/dev`,
    callback: undefined,
    command: process.execPath,
    args: [...TSX, ...profile(cpuProfDir), join(ROOT, "local", "cli.ts"), ...flags],
    cwd: ROOT,
    env: { ...process.env, ...DUMMY_AWS, AWS_SDK_JS_NODE_VERSION_SUPPORT_WARNING_DISABLED: "true" },
  };
}
