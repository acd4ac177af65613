/**
 * What `npm run bench:faults` reports: the figures of one run (a fault on a store) and how they are printed, one
 * table row per run and a few lines of detail per phase.
 */
import { PHASES, type Phase } from "./fault-clients";

export interface PhaseFigures {
  sent: number;
  expected: number;
  delivered: number;
  lost: number;
  duplicates: number;
  answered: number;
  waitsMs: number[];
  noAnswerWithin2s: number;
  noAnswerWithin10s: number;
  /** Messages some expected client never got. */
  incomplete: number;
  /** Of those, how many the sender heard an error about within 2 s. */
  incompleteReported2s: number;
}

export interface RunResult {
  store: string;
  fault: string;
  notApplicable?: string;
  error?: string;
  clients: number;
  setupProblems: string[];
  phases: Record<Phase, PhaseFigures>;
  total: PhaseFigures;
  duplicatesById: number;
  framesWithId: number;
  errorCodes: Record<string, number>;
  unattributedErrors: number;
  otherFrames: Record<string, number>;
  clientsClosed: number;
  faultEvents: string[];
  proxy: { requests: number; throttled: number; failed: number; slowestForwardMs: number };
  handlerLog: { shards: number; fanOut: Record<string, number>; problems: Record<string, number> };
  /** Longest event-loop stall during the run, ms: of the gateway's process and of the bench's (clients, proxies). */
  maxLagMs: { gateway?: number; bench: number };
  durationMs: number;
}

export const median = (values: number[]): number | undefined => {
  if (values.length === 0) return undefined;
  const sorted = [...values].sort((a, b) => a - b);
  const mid = Math.floor(sorted.length / 2);
  return sorted.length % 2 ? sorted[mid]! : (sorted[mid - 1]! + sorted[mid]!) / 2;
};
const ms = (value: number | undefined) => (value === undefined ? "-" : `${Math.round(value)}`);
const codes = (record: Record<string, number>) =>
  Object.entries(record)
    .sort((a, b) => b[1] - a[1])
    .map(([code, n]) => `${code} ×${n}`)
    .join(", ") || "none";

export const TABLE_HEAD =
  "| store | fault | sent msgs → expected deliveries | lost before/during/after | dup | sender wait median / max ms | during the fault | no answer in 2 s / 10 s | incomplete msgs (sender told ≤ 2 s) | error frames |\n" +
  "| --- | --- | --- | --- | --- | --- | --- | --- | --- | --- |";

export function tableRow(r: RunResult): string {
  if (r.notApplicable) return `| ${r.store} | ${r.fault} | n/a: ${r.notApplicable} | | | | | | | |`;
  const t = r.total;
  const p = r.phases;
  const dup = r.framesWithId > 0 ? `${t.duplicates} (by id ${r.duplicatesById})` : `${t.duplicates}`;
  const waits = (f: PhaseFigures) =>
    `${ms(median(f.waitsMs))} / ${ms(f.waitsMs.length ? Math.max(...f.waitsMs) : undefined)}`;
  const error = r.error ? ` ERROR: ${r.error}` : "";
  return (
    `| ${r.store} | ${r.fault} | ${t.sent} → ${t.expected} | ` +
    `${p.before.lost}/${p.during.lost}/${p.after.lost} | ${dup} | ${waits(t)} | ${waits(p.during)} | ` +
    `${t.noAnswerWithin2s} / ${t.noAnswerWithin10s} | ${t.incomplete} (${t.incompleteReported2s}) | ${codes(r.errorCodes)}${error} |`
  );
}

export function detail(r: RunResult): string {
  if (r.notApplicable) return "";
  const lag = `event loop stalled at most ${ms(r.maxLagMs.gateway)} ms (gateway), ${ms(r.maxLagMs.bench)} ms (bench)`;
  const lines = [`- ${r.store} / ${r.fault}: ${r.faultEvents.join("; ")}; ${lag}`];
  for (const phase of PHASES) {
    const f = r.phases[phase];
    lines.push(
      `  - ${phase}: ${f.sent} sent, ${f.delivered}/${f.expected} delivered, ${f.lost} lost, ${f.duplicates} dup; ` +
        `wait median ${ms(median(f.waitsMs))} ms, max ${ms(f.waitsMs.length ? Math.max(...f.waitsMs) : undefined)} ms; ` +
        `${f.sent - f.answered} never answered`,
    );
  }
  const extra: string[] = [];
  if (r.setupProblems.length) extra.push(`setup: ${r.setupProblems.slice(0, 3).join("; ")}`);
  if (r.clientsClosed) extra.push(`${r.clientsClosed} clients closed by the server`);
  if (r.unattributedErrors) extra.push(`${r.unattributedErrors} error frames matched no message`);
  extra.push(
    `@connections: ${r.proxy.requests} requests, ${r.proxy.throttled} × 429, ${r.proxy.failed} × 500, slowest answer ${ms(r.proxy.slowestForwardMs)} ms`,
  );
  if (r.handlerLog.shards) extra.push(`${r.handlerLog.shards} worker shards`);
  const fanOut = Object.entries(r.handlerLog.fanOut).map(([counter, n]) => `${counter} ${n}`);
  if (fanOut.length) extra.push(`fan-out summaries: ${fanOut.join(", ")}`);
  const problems = codes(r.handlerLog.problems);
  if (problems !== "none") extra.push(`handler log: ${problems}`);
  if (Object.keys(r.otherFrames).length) extra.push(`other frames: ${codes(r.otherFrames)}`);
  if (extra.length) lines.push(`  - ${extra.join("; ")}`);
  return lines.join("\n");
}
