/**
 * `npm run size`: bundle size (raw and gzip) and cold init time of every function x store variant, bundled by
 * infra's own bundle function (infra/bundle.ts), next to the seed's sample `sendmessage` handler
 * (bench/seed/send-message.js) bundled the same way. Each variant is built twice: with the AWS SDK inside the
 * bundle (what infra deploys) and with `@aws-sdk/*` external (taken from the Lambda runtime).
 *
 * Init time: the median wall time of N fresh `node -e "require('<bundle>')"` processes, minus the median of a
 * bare `node -e ""` (both printed). The external-SDK bundles cannot load the SDK from a Lambda runtime here, so
 * they load it from this project's node_modules as the stand-in (the runtime's copy is an unbundled node_modules
 * tree too, on Lambda's disk).
 *
 * Usage: npm run size [-- --runs 9] [-- --only send-message] [-- --json .artifacts/size/report.json]
 */
import { spawnSync } from "node:child_process";
import { mkdirSync, rmSync, writeFileSync } from "node:fs";
import * as path from "node:path";
import { gzipSync } from "node:zlib";
import { AUTHORIZER, FANOUT_WORKER, ROUTES } from "../contract/routes";
import { BUNDLE_FILE, type Bundle, buildBundle, handlerBundle, type SdkMode } from "../infra/bundle";
import type { DeployedStore } from "../infra/config";
import { DEPLOYED_STORES } from "../infra/config/schema";

const ROOT = path.resolve(__dirname, "..");
/** Inside the project (gitignored), so the external-SDK bundles resolve @aws-sdk/* from node_modules. */
const OUT_DIR = path.join(ROOT, ".artifacts", "size");
const SEED = path.join(__dirname, "seed", "send-message.js");

/** Printed next to the figures, not asserted. */
const TARGET_BYTES = 300 * 1024;
const TARGET_INIT_MS = 150;

function flag(name: string): string | undefined {
  const i = process.argv.indexOf(`--${name}`);
  return i >= 0 ? process.argv[i + 1] : undefined;
}

const RUNS = Number(flag("runs") ?? 9);
const ONLY = flag("only");
const JSON_OUT = flag("json");

interface Variant {
  readonly fn: string;
  /** `-` for a function that touches no store (the authorizer). */
  readonly store: DeployedStore | "-";
  readonly sdk: SdkMode;
  readonly build: () => Bundle;
}

interface Row {
  readonly fn: string;
  readonly store: string;
  readonly sdk: SdkMode;
  readonly rawBytes: number;
  readonly gzipBytes: number;
  readonly initMs: number;
  readonly initNetMs: number;
  readonly packages: number;
}

function variants(): Variant[] {
  const out: Variant[] = [];
  const modules = [...ROUTES.map((r) => r.module), FANOUT_WORKER.module];
  for (const sdk of ["bundled", "external"] as const) {
    out.push({ fn: "seed:send-message", store: "dynamodb", sdk, build: () => buildBundle(SEED, { sdk }) });
    for (const module of modules) {
      for (const store of DEPLOYED_STORES)
        out.push({ fn: module, store, sdk, build: () => handlerBundle(module, { store, sdk }) });
    }
    out.push({ fn: AUTHORIZER.module, store: "-", sdk, build: () => handlerBundle(AUTHORIZER.module, { sdk }) });
  }
  return out.filter((v) => ONLY === undefined || v.fn.includes(ONLY));
}

const median = (values: number[]): number => {
  const sorted = [...values].sort((a, b) => a - b);
  const mid = Math.floor(sorted.length / 2);
  return sorted.length % 2 === 1 ? sorted[mid]! : (sorted[mid - 1]! + sorted[mid]!) / 2;
};

/** Environment of the timed processes: what Lambda sets that changes what loading does, and nothing else. */
const INIT_ENV = {
  PATH: process.env.PATH ?? "",
  AWS_REGION: "us-east-1",
  AWS_LAMBDA_FUNCTION_NAME: "size",
  // Node 20 here, Node 22 on Lambda: keep the SDK's Node-version warning out of the timing.
  AWS_SDK_JS_NODE_VERSION_SUPPORT_WARNING_DISABLED: "true",
};

/** Wall time, ms, of one fresh `node -e <script>`. */
function timeNode(script: string): number {
  const start = process.hrtime.bigint();
  const result = spawnSync(process.execPath, ["-e", script], {
    env: INIT_ENV,
    cwd: OUT_DIR,
    stdio: ["ignore", "ignore", "pipe"],
  });
  const elapsed = Number(process.hrtime.bigint() - start) / 1e6;
  if (result.status !== 0) throw new Error(`node -e ${script} failed: ${result.stderr.toString()}`);
  return elapsed;
}

/**
 * Median wall time of each script over `runs` rounds. Round-robin (every script once per round, after one
 * untimed warm-up round: the first read of a file from disk is not what a cold start on a warm host pays), so
 * load from anything else on the machine lands on every variant alike instead of on whichever ran then.
 */
function timeAll(scripts: readonly string[], runs: number): number[] {
  const times = scripts.map(() => [] as number[]);
  for (let round = -1; round < runs; round++) {
    scripts.forEach((script, i) => {
      const elapsed = timeNode(script);
      if (round >= 0) times[i]!.push(elapsed);
    });
    process.stderr.write(".");
  }
  process.stderr.write("\n");
  return times.map(median);
}

const kb = (bytes: number) => (bytes / 1024).toFixed(1);
const ms = (value: number) => value.toFixed(0);

function main(): void {
  rmSync(OUT_DIR, { recursive: true, force: true });
  mkdirSync(OUT_DIR, { recursive: true });
  console.log(`node ${process.version}, ${RUNS} fresh processes per variant (median, round-robin)`);

  const built = variants().map((v) => {
    const bundle = v.build();
    const dir = path.join(OUT_DIR, `${v.fn.replace(/[^a-z0-9-]/gi, "_")}.${v.store}.${v.sdk}`);
    mkdirSync(dir, { recursive: true });
    const file = path.join(dir, BUNDLE_FILE);
    writeFileSync(file, bundle.code);
    return { v, bundle, script: `require(${JSON.stringify(file)})` };
  });
  const [baseline, ...inits] = timeAll(["", ...built.map((b) => b.script)], RUNS);
  console.log(`bare node -e "": ${ms(baseline!)} ms (subtracted: "init" is net of it, "wall" includes it)\n`);

  const rows: Row[] = built.map(({ v, bundle }, i) => ({
    fn: v.fn,
    store: v.store,
    sdk: v.sdk,
    rawBytes: Buffer.byteLength(bundle.code),
    gzipBytes: gzipSync(bundle.code, { level: 9 }).length,
    initMs: inits[i]!,
    initNetMs: inits[i]! - baseline!,
    packages: Object.keys(bundle.metafile.inputs).filter((f) => f.includes("node_modules/")).length,
  }));

  const header = ["function", "store", "AWS SDK", "raw KB", "gzip KB", "init ms", "wall ms", "files"];
  const table = rows.map((r) => [
    r.fn,
    r.store,
    r.sdk,
    kb(r.rawBytes),
    kb(r.gzipBytes),
    ms(r.initNetMs),
    ms(r.initMs),
    String(r.packages),
  ]);
  const widths = header.map((h, i) => Math.max(h.length, ...table.map((row) => row[i]!.length)));
  const line = (cells: string[]) =>
    `| ${cells.map((c, i) => (i < 3 ? c.padEnd(widths[i]!) : c.padStart(widths[i]!))).join(" | ")} |`;
  console.log(line(header));
  console.log(`|${widths.map((w, i) => (i < 3 ? "-".repeat(w + 2) : `${"-".repeat(w + 1)}:`)).join("|")}|`);
  for (const row of table) console.log(line(row));
  console.log('\n"files": node_modules files inside the bundle. "init": wall minus bare node. gzip: level 9.');

  const target = rows.find((r) => r.fn === "send-message" && r.store === "dynamodb" && r.sdk === "bundled");
  if (target) {
    const size = target.rawBytes < TARGET_BYTES ? "met" : "MISSED";
    const init = target.initNetMs < TARGET_INIT_MS ? "met" : "MISSED";
    console.log(
      `\ntargets (DynamoDB sendmessage, SDK bundled): < ${kb(TARGET_BYTES)} KB minified: ${kb(target.rawBytes)} KB, ${size};` +
        ` init < ${TARGET_INIT_MS} ms: ${ms(target.initNetMs)} ms, ${init}`,
    );
  }
  if (JSON_OUT) {
    writeFileSync(
      JSON_OUT,
      `${JSON.stringify({ node: process.version, runs: RUNS, baselineMs: baseline, rows }, null, 2)}\n`,
    );
    console.log(`wrote ${JSON_OUT}`);
  }
}

main();
