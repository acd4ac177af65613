/**
 * `--measure broadcast`: N connections open, the time from sending one broadcast request until every connection
 * has its frame. With the probe handlers the request is `{"action":"broadcast","seq":n}` and the handler POSTs to
 * every id through `@connections`; with `ours-chat` it is the chat's room-less `sendmessage`, which reaches every
 * connection of the app (the sender included).
 */
import type { WebSocket } from "ws";
import { median } from "../fault-report";
import { connectionIds, openAll, terminateAll } from "./clients";
import type { MeasureContext } from "./measure-context";

/** The marker a frame of broadcast `seq` carries, for either kind of handler. */
const marker = (seq: number) => `bench-broadcast-${seq}`;

export async function measureBroadcast(m: MeasureContext, probe: boolean): Promise<void> {
  const opened = await openAll(m.target.setup.url, m.n, m.concurrency, m.runDeadlineMs);
  try {
    if (opened.sockets.length < m.n) throw new Error(`opened ${opened.sockets.length} of ${m.n} connections`);
    const times = await broadcastRounds(m, opened.sockets, probe, m.runs);
    const mid = median(times);
    m.print({
      measure: "broadcast",
      complete: times.length,
      medianMs: mid === undefined ? undefined : Math.round(mid),
    });
  } finally {
    terminateAll(opened.sockets);
  }
}

/** `runs` broadcasts over `sockets` (all open); the times of those that reached every socket. */
export async function broadcastRounds(
  m: MeasureContext,
  sockets: readonly WebSocket[],
  probe: boolean,
  runs: number,
): Promise<number[]> {
  if (probe) {
    const ids = await connectionIds(sockets, 30_000);
    const missing = ids.filter((id) => id === undefined).length;
    if (missing > 0) throw new Error(`${missing} connections did not echo their id`);
    m.registry.ids = ids as string[];
  }
  const seen = new Map<number, number>();
  let wake: (() => void) | undefined;
  const onFrame = (data: Buffer) => {
    const match = /bench-broadcast-(\d+)/.exec(data.toString());
    if (!match) return;
    const seq = Number(match[1]);
    seen.set(seq, (seen.get(seq) ?? 0) + 1);
    wake?.();
  };
  for (const ws of sockets) ws.on("message", onFrame);
  const times: number[] = [];
  try {
    for (let run = 1; run <= runs; run++) {
      const started = performance.now();
      const all = new Promise<boolean>((resolve) => {
        const timer = setTimeout(() => resolve(false), m.runDeadlineMs);
        wake = () => {
          if ((seen.get(run) ?? 0) < sockets.length) return;
          clearTimeout(timer);
          resolve(true);
        };
      });
      send(sockets[0]!, run, probe);
      const complete = await all;
      const ms = performance.now() - started;
      m.print({ measure: "broadcast", run, ms: Math.round(ms), received: seen.get(run) ?? 0, complete });
      if (complete) times.push(ms);
      await m.pause(1000);
    }
  } finally {
    for (const ws of sockets) ws.off("message", onFrame);
  }
  return times;
}

function send(ws: WebSocket, seq: number, probe: boolean): void {
  // The probe's handler sends `{"broadcast":"bench-broadcast-n"}`; the chat's sends the data as it is.
  ws.send(
    JSON.stringify(probe ? { action: "broadcast", seq: marker(seq) } : { action: "sendmessage", data: marker(seq) }),
  );
}
