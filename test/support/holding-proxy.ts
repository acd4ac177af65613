/**
 * A loopback HTTP proxy in front of a real server (dynalite) that can be told to hold every request: while `hold`
 * is on, requests are accepted and read but never answered, as a DynamoDB endpoint that has stopped answering
 * (a network partition, a hung load balancer) looks to its client. Everything else passes through untouched.
 */
import { createServer, type IncomingMessage, type ServerResponse } from "node:http";
import type { AddressInfo } from "node:net";

export interface HoldingProxy {
  readonly endpoint: string;
  /** While true, new requests get no answer. */
  hold: boolean;
  /** Requests held so far. */
  readonly held: number;
  stop(): Promise<void>;
}

const readBody = async (req: IncomingMessage): Promise<Buffer> => {
  const chunks: Buffer[] = [];
  for await (const chunk of req) chunks.push(chunk as Buffer);
  return Buffer.concat(chunks);
};

export async function startHoldingProxy(target: string): Promise<HoldingProxy> {
  const parked = new Set<ServerResponse>();
  const state = { hold: false, held: 0 };
  const server = createServer(async (req, res) => {
    const body = await readBody(req);
    if (state.hold) {
      state.held++;
      parked.add(res);
      res.on("close", () => parked.delete(res));
      return;
    }
    const headers = { ...req.headers } as Record<string, string>;
    delete headers["content-length"];
    delete headers.host;
    try {
      const upstream = await fetch(target + (req.url ?? "/"), { method: req.method, headers, body });
      const text = Buffer.from(await upstream.arrayBuffer());
      res.writeHead(upstream.status, {
        "content-type": upstream.headers.get("content-type") ?? "application/x-amz-json-1.0",
        "content-length": text.byteLength,
      });
      res.end(text);
    } catch {
      res.destroy();
    }
  });
  await new Promise<void>((resolve) => server.listen(0, "127.0.0.1", resolve));
  const { port } = server.address() as AddressInfo;
  return {
    endpoint: `http://127.0.0.1:${port}`,
    get hold() {
      return state.hold;
    },
    set hold(value: boolean) {
      state.hold = value;
    },
    get held() {
      return state.held;
    },
    stop: () => {
      for (const res of parked) res.destroy();
      server.closeAllConnections();
      return new Promise<void>((resolve) => server.close(() => resolve()));
    },
  };
}
