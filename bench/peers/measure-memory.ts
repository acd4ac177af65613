/**
 * `--measure memory`: resident memory of the target's whole process tree, idle, with N connections open, and after
 * one broadcast to them (which makes each of the N echo once first, so a target that keeps a warm handler per
 * concurrent invocation shows it). Run it in a target of its own: earlier measures leave their mark.
 */
import { openAll, terminateAll } from "./clients";
import { broadcastRounds } from "./measure-broadcast";
import type { MeasureContext } from "./measure-context";
import { processTreeRss } from "./target";

const mb = (bytes: number) => Math.round((bytes / 1024 / 1024) * 10) / 10;

export async function measureMemory(m: MeasureContext, probe: boolean): Promise<void> {
  // Settled: whatever start-up allocated and let go has had time to be collected.
  await m.pause(3000);
  m.print({ measure: "memory", state: "idle", rssMB: mb(processTreeRss(m.target.pid)) });
  const opened = await openAll(m.target.setup.url, m.n, m.concurrency, m.runDeadlineMs);
  try {
    await m.pause(3000);
    const rss = processTreeRss(m.target.pid);
    m.print({ measure: "memory", state: "open", opened: opened.sockets.length, rssMB: mb(rss) });
    if (opened.sockets.length < m.n) return;
    await broadcastRounds(m, opened.sockets, probe, 1);
    await m.pause(3000);
    m.print({ measure: "memory", state: "after broadcast", rssMB: mb(processTreeRss(m.target.pid)) });
  } finally {
    terminateAll(opened.sockets);
  }
}
