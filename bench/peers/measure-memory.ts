/** `--measure memory`: resident memory of the target's whole process tree, idle and with N connections open. */
import { openAll, terminateAll } from "./clients";
import type { MeasureContext } from "./measure-context";
import { processTreeRss } from "./target";

const mb = (bytes: number) => Math.round((bytes / 1024 / 1024) * 10) / 10;

export async function measureMemory(m: MeasureContext): Promise<void> {
  // Settled: whatever start-up allocated and let go has had time to be collected.
  await m.pause(3000);
  m.print({ measure: "memory", state: "idle", rssMB: mb(processTreeRss(m.target.pid)) });
  const opened = await openAll(m.target.setup.url, m.n, m.concurrency, m.runDeadlineMs);
  try {
    await m.pause(3000);
    const rss = processTreeRss(m.target.pid);
    m.print({ measure: "memory", state: "open", opened: opened.sockets.length, rssMB: mb(rss) });
  } finally {
    terminateAll(opened.sockets);
  }
}
