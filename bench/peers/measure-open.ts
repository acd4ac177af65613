/** `--measure open`: the wall time to open N connections, each through a `$connect` that answers 200. */
import { median } from "../fault-report";
import { openAll, terminateAll } from "./clients";
import type { MeasureContext } from "./measure-context";

export async function measureOpen(m: MeasureContext): Promise<void> {
  const times: number[] = [];
  for (let run = 1; run <= m.runs; run++) {
    const opened = await openAll(m.target.setup.url, m.n, m.concurrency, m.runDeadlineMs);
    terminateAll(opened.sockets);
    m.print({ measure: "open", run, ms: Math.round(opened.ms), opened: opened.sockets.length, failed: opened.failed });
    if (opened.sockets.length === m.n) times.push(opened.ms);
    await m.pause(1000);
  }
  const mid = median(times);
  m.print({ measure: "open", complete: times.length, medianMs: mid === undefined ? undefined : Math.round(mid) });
}
