/**
 * The gateway's one HTTP port: upgrade requests go to the handshake, `GET /` to the browser client
 * (web/index.html), everything else to the `@connections` management API (or its 403). Also binding the port,
 * with errors a user can act on.
 */
import { randomUUID } from "node:crypto";
import { createServer, type IncomingMessage, type Server, type ServerResponse } from "node:http";
import type { AddressInfo } from "node:net";
import type { Duplex } from "node:stream";
import { type ConnectionsEndpointOptions, handleConnectionsRequest } from "./connections-endpoint";
import { describeError, type GatewayLog } from "./gateway-log";
import { serveWebClient } from "./web-client";

/** Thrown by `start()` when the port cannot be bound; `code` is Node's (`EADDRINUSE`, `EACCES`, ...). */
export class GatewayListenError extends Error {
  override readonly name = "GatewayListenError";
  constructor(
    message: string,
    readonly code: string | undefined,
  ) {
    super(message);
  }
}

export interface HttpRoutes {
  readonly stage: string;
  readonly maxPostBytes: number;
  readonly log: GatewayLog;
  readonly lookup: ConnectionsEndpointOptions["lookup"];
  readonly verifySignature?: ConnectionsEndpointOptions["verifySignature"];
  readonly isOwnHost?: ConnectionsEndpointOptions["isOwnHost"];
  upgrade(req: IncomingMessage, socket: Duplex, head: Buffer): void;
}

/** The server, dispatching each request and upgrade as described above. */
export function createGatewayServer(routes: HttpRoutes): Server {
  const server = createServer((req, res) => serveRequest(req, res, routes));
  server.on("upgrade", (req: IncomingMessage, socket: Duplex, head: Buffer) => routes.upgrade(req, socket, head));
  server.on("clientError", (_err, socket) => socket.destroy());
  return server;
}

function serveRequest(req: IncomingMessage, res: ServerResponse, routes: HttpRoutes): void {
  const { stage, maxPostBytes, log, lookup, verifySignature, isOwnHost } = routes;
  if (serveWebClient(req, res, stage)) return log(req.method ?? "GET", "web", "-", "200", 0);
  handleConnectionsRequest(req, res, {
    stage,
    maxPostBytes,
    lookup,
    verifySignature,
    isOwnHost,
    log: (method, id, status, ms, note) => log(method, "@connections", id, String(status), ms, note),
  }).catch((error: unknown) => {
    log(req.method ?? "?", "@connections", "-", "500", 0, `error=${describeError(error)}`);
    if (!res.headersSent)
      res.writeHead(500, { "x-amzn-RequestId": randomUUID(), "x-amzn-ErrorType": "InternalServerErrorException" });
    res.end();
  });
}

/** Binds `port` (0: any free one) on `host`; resolves with the bound port. */
export function listen(server: Server, port: number, host: string): Promise<number> {
  return new Promise((resolve, reject) => {
    const onError = (error: NodeJS.ErrnoException) => {
      const where = `${host}:${port}`;
      const message =
        error.code === "EADDRINUSE"
          ? `port ${port} is already in use (${where})`
          : error.code === "EACCES"
            ? `no permission to listen on ${where}`
            : `cannot listen on ${where}: ${error.message}`;
      reject(new GatewayListenError(message, error.code));
    };
    server.once("error", onError);
    server.listen(port, host, () => {
      server.off("error", onError);
      resolve((server.address() as AddressInfo).port);
    });
  });
}

/** Stops listening; resolves once every HTTP connection has ended. */
export function closeServer(server: Server): Promise<void> {
  return new Promise<void>((resolve) => server.close(() => resolve()));
}
