/**
 * A real HTTP server on loopback that plays API Gateway's `@connections` management API for handler tests:
 * records every post, answers 410 (with API Gateway's headers) for chosen ids, and can throttle or hang.
 */
import { createServer, type IncomingMessage, type Server, type ServerResponse } from "node:http";
import type { AddressInfo } from "node:net";

export type Behaviour = "ok" | "gone" | "throttle" | "hang" | "too-large" | "error500";

export interface ManagementServer {
  /** Use as CALLBACK_URL. */
  readonly endpoint: string;
  /** Bodies posted per connection id, in arrival order. */
  readonly posts: Map<string, string[]>;
  /** Ids deleted through DELETE. */
  readonly deleted: string[];
  /** Decides the answer for each request; default "ok" (200). */
  behaviour: (connectionId: string, attempt: number) => Behaviour;
  /** Delay before every answer, ms (API Gateway takes tens of ms per post). */
  latencyMs: number;
  readonly stats: { requests: number; inFlight: number; maxInFlight: number };
  postsTo(connectionId: string): string[];
  close(): Promise<void>;
}

function reply(res: ServerResponse, status: number, errorType?: string, body = ""): void {
  const headers: Record<string, string | number> = {
    "x-amzn-RequestId": `req-${Date.now()}`,
    "Content-Length": Buffer.byteLength(body),
  };
  if (errorType) headers["x-amzn-ErrorType"] = errorType;
  if (body) headers["Content-Type"] = "application/json";
  res.writeHead(status, headers).end(body);
}

export async function startManagementServer(stage = "test"): Promise<ManagementServer> {
  const posts = new Map<string, string[]>();
  const deleted: string[] = [];
  const attempts = new Map<string, number>();
  const stats = { requests: 0, inFlight: 0, maxInFlight: 0 };
  const hanging = new Set<ServerResponse>();

  const server: Server = createServer((req: IncomingMessage, res: ServerResponse) => {
    stats.requests++;
    stats.inFlight++;
    stats.maxInFlight = Math.max(stats.maxInFlight, stats.inFlight);
    res.on("close", () => {
      stats.inFlight--;
      hanging.delete(res);
    });
    const chunks: Buffer[] = [];
    req.on("data", (c: Buffer) => chunks.push(c));
    req.on("end", () => {
      if (api.latencyMs > 0) setTimeout(answer, api.latencyMs);
      else answer();
    });
    const answer = () => {
      const match = /^\/([^/]+)\/(?:@|%40)connections\/([^/?]+)$/.exec(req.url ?? "");
      if (!match || match[1] !== stage) return reply(res, 403, "ForbiddenException", '{"message":"Forbidden"}');
      const id = decodeURIComponent(match[2]!);
      const attempt = (attempts.get(id) ?? 0) + 1;
      attempts.set(id, attempt);
      switch (api.behaviour(id, attempt)) {
        case "gone":
          return reply(res, 410, "GoneException");
        case "throttle":
          return reply(res, 429, "LimitExceededException", "{}");
        case "too-large":
          return reply(res, 413, "PayloadTooLargeException", '{"message":"Request entity too large"}');
        case "error500":
          return reply(res, 500, "InternalServerErrorException", '{"message":"Internal server error"}');
        case "hang":
          hanging.add(res);
          return;
        case "ok":
          break;
      }
      if (req.method === "POST") {
        const list = posts.get(id) ?? [];
        list.push(Buffer.concat(chunks).toString("utf8"));
        posts.set(id, list);
        return reply(res, 200);
      }
      if (req.method === "DELETE") {
        deleted.push(id);
        return reply(res, 204);
      }
      return reply(res, 400, "BadRequestException", '{"message":"unsupported"}');
    };
  });
  await new Promise<void>((resolve) => server.listen(0, "127.0.0.1", resolve));
  const { port } = server.address() as AddressInfo;

  const api: ManagementServer = {
    endpoint: `http://127.0.0.1:${port}/${stage}`,
    posts,
    deleted,
    behaviour: () => "ok",
    latencyMs: 0,
    stats,
    postsTo: (id) => posts.get(id) ?? [],
    close: async () => {
      for (const res of hanging) res.destroy();
      server.closeAllConnections();
      await new Promise<void>((resolve) => server.close(() => resolve()));
    },
  };
  return api;
}
