/** What every measure gets from the entry (bench/peers.ts): the running target, the registry, the knobs. */
import type { Registry } from "./registry";
import type { RunningTarget } from "./target";

export interface MeasureContext {
  readonly targetName: string;
  readonly target: RunningTarget;
  readonly registry: Registry;
  readonly n: number;
  readonly concurrency: number;
  readonly runs: number;
  /** Bound of one run (opening N, one broadcast). */
  readonly runDeadlineMs: number;
  /** One JSON line on stdout, tagged with the target, N and the load average. */
  print(record: Record<string, unknown>): void;
  pause(ms: number): Promise<void>;
}
