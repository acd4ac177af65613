/**
 * One signed POST to an AWS JSON endpoint outside the SDK, and its whole answer: the transport that the worker
 * invoker (Lambda `Invoke`) and the shard queue (SQS `SendMessage`) share. Each caller signs its own request (its
 * service, target and headers) and reads the answer its own way; here only the socket work lives: https on the
 * caller's keep-alive agent (plain http for a loopback endpoint), a bounded wait, the body collected.
 */
import type { IncomingHttpHeaders, IncomingMessage, OutgoingHttpHeaders } from "node:http";
import { request as httpRequest } from "node:http";
import { type Agent, request } from "node:https";

export interface SignedPost {
  readonly url: URL;
  readonly path: string;
  readonly headers: OutgoingHttpHeaders;
  readonly body: Buffer;
  /** Used for https endpoints only. */
  readonly agent: Agent;
  readonly timeoutMs: number;
  /** The error a request that took longer than `timeoutMs` is destroyed with. */
  readonly timeoutError: () => Error;
}

export interface PostAnswer {
  readonly status: number;
  readonly headers: IncomingHttpHeaders;
  readonly body: Buffer;
}

/** Resolves with any answer, whatever its status; rejects on a socket error or the timeout. */
export function postSigned({
  url,
  path,
  headers,
  body,
  agent,
  timeoutMs,
  timeoutError,
}: SignedPost): Promise<PostAnswer> {
  const send = url.protocol === "https:" ? request : httpRequest;
  return new Promise((resolve, reject) => {
    const req = send(
      {
        protocol: url.protocol,
        hostname: url.hostname,
        port: url.port || undefined,
        method: "POST",
        path,
        headers,
        ...(url.protocol === "https:" ? { agent } : {}),
      },
      (res: IncomingMessage) => {
        const chunks: Buffer[] = [];
        res.on("data", (c: Buffer) => chunks.push(c));
        res.on("error", reject);
        res.on("end", () =>
          resolve({ status: res.statusCode ?? 0, headers: res.headers, body: Buffer.concat(chunks) }),
        );
      },
    );
    req.setTimeout(timeoutMs, () => req.destroy(timeoutError()));
    req.on("error", reject);
    req.end(body);
  });
}
