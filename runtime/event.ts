/** The Lambda proxy event API Gateway sends for WebSocket routes, and what handlers return. */
import type { Logger } from "./logger";

/**
 * Written out here rather than taken from @types/aws-lambda, whose WebSocket type marks `messageId` required:
 * real CONNECT and DISCONNECT events do not carry it.
 */
export interface WebSocketRequestContext {
  readonly routeKey: string;
  readonly eventType: "CONNECT" | "MESSAGE" | "DISCONNECT";
  /** MESSAGE only. */
  readonly messageId?: string;
  readonly extendedRequestId: string;
  /** CLF, `11/Nov/2024:13:45:46 +0000`. */
  readonly requestTime: string;
  readonly messageDirection: "IN";
  readonly stage: string;
  /** Epoch ms of the handshake, the same on every event of a connection. */
  readonly connectedAt: number;
  readonly requestTimeEpoch: number;
  readonly identity: { readonly sourceIp: string; readonly userAgent?: string | null };
  readonly requestId: string;
  readonly domainName: string;
  readonly connectionId: string;
  readonly apiId: string;
  /** Present when a Lambda authorizer guards `$connect`: `{principalId, integrationLatency, ...context}`. */
  readonly authorizer?: Record<string, unknown>;
  /** DISCONNECT only. */
  readonly disconnectStatusCode?: number;
  readonly disconnectReason?: string;
}

export interface WebSocketEvent {
  readonly requestContext: WebSocketRequestContext;
  /** MESSAGE only: the frame's text. */
  readonly body?: string;
  readonly isBase64Encoded: boolean;
  /** CONNECT (upgrade request headers) and DISCONNECT (a fixed synthetic set) only. */
  readonly headers?: Record<string, string | undefined>;
  readonly multiValueHeaders?: Record<string, string[] | undefined>;
  /** CONNECT only, and only when the URL had a query string. */
  readonly queryStringParameters?: Record<string, string | undefined>;
  readonly multiValueQueryStringParameters?: Record<string, string[] | undefined>;
}

export interface HandlerResult {
  readonly statusCode: number;
  readonly body?: string;
  readonly headers?: Record<string, string>;
}

/** A logger carrying what every line of an invocation must carry. */
export function invocationLogger(log: Logger, event: WebSocketEvent): Logger {
  return log.child({
    route: event.requestContext.routeKey,
    connectionId: event.requestContext.connectionId,
    requestId: event.requestContext.requestId,
  });
}
