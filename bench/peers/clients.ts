/** The harness's WebSocket clients: opening many, waiting for a target to accept, reading frames with deadlines. */
import { WebSocket } from "ws";

export interface Opened {
  readonly sockets: WebSocket[];
  readonly ms: number;
  readonly failed: number;
}

/** Opens `n` connections, `concurrency` at a time, within `deadlineMs`; the caller closes them. */
export async function openAll(url: string, n: number, concurrency: number, deadlineMs: number): Promise<Opened> {
  const sockets: WebSocket[] = [];
  let next = 0;
  let failed = 0;
  const started = performance.now();
  const one = async (): Promise<void> => {
    while (next < n && performance.now() - started < deadlineMs) {
      next++;
      await new Promise<void>((resolve) => {
        const ws = new WebSocket(url);
        const timer = setTimeout(() => ws.terminate(), Math.max(1, deadlineMs - (performance.now() - started)));
        ws.once("open", () => {
          clearTimeout(timer);
          sockets.push(ws);
          resolve();
        });
        ws.once("error", () => {
          clearTimeout(timer);
          failed++;
          resolve();
        });
      });
    }
  };
  await Promise.all(Array.from({ length: concurrency }, one));
  return { sockets, ms: performance.now() - started, failed };
}

export function terminateAll(sockets: readonly WebSocket[]): void {
  for (const ws of sockets) ws.terminate();
}

/** Resolves once the target accepts a connection; throws after `timeoutMs`. */
export async function ready(url: string, timeoutMs: number): Promise<void> {
  const until = Date.now() + timeoutMs;
  while (Date.now() < until) {
    const probe = await openAll(url, 1, 1, 5_000);
    terminateAll(probe.sockets);
    if (probe.sockets.length === 1) return;
    await new Promise((resolve) => setTimeout(resolve, 500));
  }
  throw new Error(`${url} did not accept a connection within ${timeoutMs} ms`);
}

/** The first text frame of `ws` that `pick` accepts, parsed as JSON when it is; undefined after `timeoutMs`. */
export function nextFrame<T>(ws: WebSocket, pick: (frame: unknown) => T | undefined, timeoutMs: number) {
  return new Promise<T | undefined>((resolve) => {
    const onMessage = (data: Buffer) => {
      const text = data.toString();
      let frame: unknown = text;
      try {
        frame = JSON.parse(text);
      } catch {
        // Not JSON: `pick` sees the text.
      }
      const found = pick(frame);
      if (found !== undefined) done(found);
    };
    const timer = setTimeout(() => done(undefined), timeoutMs);
    const done = (value: T | undefined) => {
      clearTimeout(timer);
      ws.off("message", onMessage);
      resolve(value);
    };
    ws.on("message", onMessage);
  });
}

/** The close code `ws` gets within `timeoutMs` (1006 for a dropped socket), else undefined. */
export function closeCode(ws: WebSocket, timeoutMs: number): Promise<number | undefined> {
  if (ws.readyState === WebSocket.CLOSED) return Promise.resolve(undefined);
  return new Promise((resolve) => {
    const timer = setTimeout(() => resolve(undefined), timeoutMs);
    ws.once("close", (code: number) => {
      clearTimeout(timer);
      resolve(code);
    });
  });
}

/** Each socket's connection id, from the probe's echo of a frame it sends (`{"action":"echo"}`). */
export async function connectionIds(sockets: readonly WebSocket[], timeoutMs: number): Promise<(string | undefined)[]> {
  const ids: (string | undefined)[] = [];
  // In batches, so a slow target is not handed thousands of invocations at once.
  for (let i = 0; i < sockets.length; i += 100) {
    const batch = sockets.slice(i, i + 100).map((ws) => {
      const id = nextFrame(ws, (f) => echoedContext(f)?.connectionId, timeoutMs);
      ws.send(JSON.stringify({ action: "echo" }));
      return id;
    });
    ids.push(...(await Promise.all(batch)));
  }
  return ids;
}

export interface EchoedContext {
  readonly connectionId?: string;
  readonly [field: string]: unknown;
}

/** The `requestContext` a probe echo carries, if `frame` is one. */
export function echoedContext(frame: unknown): EchoedContext | undefined {
  if (typeof frame !== "object" || frame === null || !("requestContext" in frame)) return undefined;
  return (frame as { requestContext: EchoedContext }).requestContext;
}
