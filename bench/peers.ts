/**
 * The local gateway against the tools a developer would run instead, `@architect/sandbox` and serverless-offline
 * (docs/benchmarks.md#local-gateway-against-its-peers): the time to open N connections, to broadcast to them, the
 * memory of each, and nine fidelity checks of API Gateway behaviour. Every target but `ours-chat` runs the same
 * probe handlers (bench/peers/probe-handler.ts), so ratios compare gateways; `ours-chat` is `npm start` with the
 * real chat handlers. Loopback only and bounded: every target listens on 127.0.0.1, every run has a deadline, the
 * whole bench has one (`--deadline`), and the target's process group is stopped after, also on Ctrl-C or hang-up.
 *
 *   npm run bench:peers -- --target ours --measure open --n 1000 --concurrency 50 --runs 3
 *   npm run bench:peers -- --target architect --dir ../peers/arc --measure fidelity
 *   npm run bench:peers -- --target serverless-offline --dir ../peers/sls --measure broadcast --n 1000
 *   npm run bench:peers -- --target ours-chat --measure memory --n 5000
 *   npm run bench:peers -- --target ours --workers 0 --measure broadcast   (handlers in the gateway's thread)
 *
 * `--dir` is a folder outside the repository where the peer is installed (`npm install @architect/sandbox@9.0.0`,
 * or `npm install serverless@3.40.0 serverless-offline@13.10.1`); the bench writes the peer's tiny project there.
 */
import { loadavg } from "node:os";
import { resolve } from "node:path";
import { parseArgs } from "node:util";
import { ready } from "./peers/clients";
import { measureBroadcast } from "./peers/measure-broadcast";
import type { MeasureContext } from "./peers/measure-context";
import { measureFidelity } from "./peers/measure-fidelity";
import { measureMemory } from "./peers/measure-memory";
import { measureOpen } from "./peers/measure-open";
import { Registry } from "./peers/registry";
import { type RunningTarget, startTarget, type TargetSetup } from "./peers/target";
import { architect } from "./peers/target-architect";
import { oursChat, oursProbe } from "./peers/target-ours";
import { serverlessOffline } from "./peers/target-serverless-offline";

const TARGETS = ["ours", "ours-chat", "architect", "serverless-offline"] as const;
const MEASURES = ["open", "broadcast", "memory", "fidelity"] as const;

function options() {
  const { values } = parseArgs({
    options: {
      target: { type: "string", default: "ours" },
      dir: { type: "string" },
      measure: { type: "string", multiple: true },
      n: { type: "string", default: "1000" },
      concurrency: { type: "string", default: "50" },
      runs: { type: "string", default: "3" },
      port: { type: "string", default: "3561" },
      "run-deadline": { type: "string", default: "300" },
      deadline: { type: "string", default: "1200" },
      log: { type: "string" },
      "cpu-prof-dir": { type: "string" },
      workers: { type: "string" },
    },
  });
  const target = values.target as (typeof TARGETS)[number];
  if (!TARGETS.includes(target)) throw new Error(`--target must be one of ${TARGETS.join(", ")}`);
  const measures = (values.measure ?? ["open"]) as (typeof MEASURES)[number][];
  for (const m of measures)
    if (!MEASURES.includes(m)) throw new Error(`--measure must be among ${MEASURES.join(", ")}`);
  return { ...values, target, measures };
}

function setupOf(o: ReturnType<typeof options>, registry: Registry): TargetSetup {
  const port = Number(o.port);
  const probe = {
    registry: registry.url,
    region: "us-east-1",
    accessKeyId: "probe",
    secretAccessKey: "local",
    concurrency: 50,
  };
  const dir = () => {
    if (!o.dir) throw new Error(`--dir <folder where ${o.target} is installed> is required`);
    return resolve(o.dir);
  };
  if (o.target === "architect") return architect(dir(), port, probe);
  if (o.target === "serverless-offline") return serverlessOffline(dir(), port, probe);
  const prof = o["cpu-prof-dir"] && resolve(o["cpu-prof-dir"]);
  if (o.target === "ours-chat") return oursChat(port, prof, o.workers);
  return oursProbe(port, probe, prof, o.workers);
}

async function main(): Promise<void> {
  const o = options();
  const registry = await Registry.start();
  let target: RunningTarget | undefined;
  const stopAll = async (code: number) => {
    await target?.stop();
    await registry.stop();
    process.exit(code);
  };
  for (const signal of ["SIGINT", "SIGHUP", "SIGTERM"] as const) process.once(signal, () => void stopAll(130));
  const deadline = setTimeout(() => {
    console.error(`the bench exceeded --deadline ${o.deadline} s; stopping the target`);
    void stopAll(1);
  }, Number(o.deadline) * 1000);
  deadline.unref();
  try {
    target = startTarget(setupOf(o, registry), o.log);
    await ready(target.setup.url, 120_000);
    const m: MeasureContext = {
      targetName: o.target,
      target,
      registry,
      n: Number(o.n),
      concurrency: Number(o.concurrency),
      runs: Number(o.runs),
      runDeadlineMs: Number(o["run-deadline"]) * 1000,
      print: (record) => {
        const load = loadavg().map((l) => Math.round(l * 100) / 100);
        console.log(JSON.stringify({ target: o.target, n: Number(o.n), ...record, load }));
      },
      pause: (ms) => new Promise((resolve) => setTimeout(resolve, ms)),
    };
    for (const measure of o.measures) {
      if (measure === "open") await measureOpen(m);
      else if (measure === "broadcast") await measureBroadcast(m, o.target !== "ours-chat");
      else if (measure === "memory") await measureMemory(m, o.target !== "ours-chat");
      else await measureFidelity(m);
      if (!target.alive) throw new Error(`${o.target} exited during the ${measure} measure`);
    }
  } finally {
    await target?.stop();
    await registry.stop();
    clearTimeout(deadline);
  }
}

main().catch((error: unknown) => {
  console.error(error instanceof Error ? error.message : error);
  process.exit(1);
});
