/**
 * A loopback proxy in front of a DynamoDB-API server (dynalite) that plays DynamoDB under write throttling: for
 * the first `stubborn` BatchWriteItem calls it forwards every request but the first and hands that one back as
 * `UnprocessedItems`, as DynamoDB does. Everything else passes through untouched, so the store under test runs
 * its real client against a real server.
 */
import { createServer, type IncomingMessage } from "node:http";
import type { AddressInfo } from "node:net";

export interface UnprocessingProxy {
  readonly endpoint: string;
  /** Request count of every BatchWriteItem call, in order. */
  readonly batches: number[];
  stop(): Promise<void>;
}

const readBody = async (req: IncomingMessage): Promise<string> => {
  const chunks: Buffer[] = [];
  for await (const chunk of req) chunks.push(chunk as Buffer);
  return Buffer.concat(chunks).toString("utf8");
};

export async function startUnprocessingProxy(target: string, stubborn: number): Promise<UnprocessingProxy> {
  const batches: number[] = [];
  const server = createServer(async (req, res) => {
    let body = await readBody(req);
    const headers = { ...req.headers } as Record<string, string>;
    let unprocessed: Record<string, unknown[]> | undefined;
    if (String(req.headers["x-amz-target"]).endsWith(".BatchWriteItem")) {
      const input = JSON.parse(body) as { RequestItems: Record<string, unknown[]> };
      const [table, requests] = Object.entries(input.RequestItems)[0]!;
      batches.push(requests.length);
      if (batches.length <= stubborn) {
        unprocessed = { [table]: requests.slice(0, 1) };
        input.RequestItems[table] = requests.slice(1);
        body = JSON.stringify(input);
      }
    }
    delete headers["content-length"];
    const skipForward =
      unprocessed && Object.values(JSON.parse(body).RequestItems as Record<string, unknown[]>)[0]!.length === 0;
    const upstream = skipForward
      ? undefined
      : await fetch(target + (req.url ?? "/"), { method: req.method, headers, body });
    const text = upstream ? await upstream.text() : "{}";
    const status = upstream?.status ?? 200;
    const answer =
      unprocessed && status === 200 ? JSON.stringify({ ...JSON.parse(text), UnprocessedItems: unprocessed }) : text;
    res.writeHead(status, {
      "content-type": "application/x-amz-json-1.0",
      "content-length": Buffer.byteLength(answer),
    });
    res.end(answer);
  });
  await new Promise<void>((resolve) => server.listen(0, "127.0.0.1", resolve));
  const { port } = server.address() as AddressInfo;
  return {
    endpoint: `http://127.0.0.1:${port}`,
    batches,
    stop: () => {
      server.closeAllConnections();
      return new Promise<void>((resolve) => server.close(() => resolve()));
    },
  };
}
