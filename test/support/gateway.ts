/**
 * Helpers for the local gateway's end-to-end tests: the real handlers wired to explicit dependencies (so several
 * gateways and stores can live in one mocha process), an event recorder, and a WebSocket client that queues
 * what it receives.
 */
import { ApiGatewayManagementApiClient } from "@aws-sdk/client-apigatewaymanagementapi";
import { type ClientOptions, WebSocket } from "ws";
import type { HandlerDeps } from "../../chat/deps";
import type { ConnectionStore } from "../../contract/connection-store";
import { DEFAULT_MESSAGE_LIMITS } from "../../contract/message-limits";
import { ROUTES } from "../../contract/routes";
import { connect } from "../../handlers/connect";
import { defaultRoute } from "../../handlers/default";
import { disconnect } from "../../handlers/disconnect";
import { roomHistory } from "../../handlers/history";
import { joinRoom } from "../../handlers/join";
import { leaveRoom } from "../../handlers/leave";
import { ping } from "../../handlers/ping";
import { sendMessage } from "../../handlers/send-message";
import { sendTo } from "../../handlers/send-to";
import { whoami } from "../../handlers/whoami";
import { type LocalGateway, type LocalGatewayOptions, startLocalGateway } from "../../local/gateway";
import type { RouteHandler, RouteHandlers } from "../../local/route-handlers";
import type { HandlerResult, WebSocketEvent } from "../../runtime/event";
import { SigV4Signer, sha256Hex } from "../../runtime/sigv4";
import { type TestDeps, testDeps } from "./handler-deps";

/** The plain (dependency-taking) function behind each module's exported `handler`. */
const PLAIN_HANDLERS: Record<string, (event: WebSocketEvent, deps: HandlerDeps) => Promise<HandlerResult>> = {
  connect,
  disconnect,
  "send-message": sendMessage,
  default: defaultRoute,
  join: joinRoom,
  leave: leaveRoom,
  whoami,
  "send-to": sendTo,
  history: roomHistory,
  ping,
};

/** The route table's routes, each running its module's handler logic with `deps` instead of the container's. */
export function routeTableHandlersWith(deps: HandlerDeps): Record<string, RouteHandler> {
  const handlers: Record<string, RouteHandler> = {};
  for (const route of ROUTES) {
    const plain = PLAIN_HANDLERS[route.module];
    if (!plain) throw new Error(`test/support/gateway.ts does not know the handler of handlers/${route.module}`);
    handlers[route.routeKey] = (event) => plain(event, deps);
  }
  return handlers;
}

export interface RecordedEvent {
  readonly routeKey: string;
  readonly event: WebSocketEvent;
}

/** Wraps every handler so each event it receives is recorded (before it runs). */
export function recording(handlers: RouteHandlers): { handlers: RouteHandlers; events: RecordedEvent[] } {
  const events: RecordedEvent[] = [];
  const wrapped: Record<string, RouteHandler> = {};
  for (const [routeKey, handler] of Object.entries(handlers)) {
    wrapped[routeKey] = (event) => {
      events.push({ routeKey, event });
      return handler(event);
    };
  }
  return { handlers: wrapped, events };
}

export interface ChatGateway {
  readonly gateway: LocalGateway;
  readonly deps: TestDeps;
  readonly events: RecordedEvent[];
  /** DISCONNECT events received so far. */
  disconnects(): WebSocketEvent[];
  /** Resolves with the DISCONNECT event of `connectionId` once it arrives. */
  disconnectOf(connectionId: string, timeoutMs?: number): Promise<WebSocketEvent>;
  stop(): Promise<void>;
}

/**
 * A gateway on a free port (or `options.port`: a restart on the same address) running the real handlers against `store`, optionally with some routes replaced
 * (`override`, given the real handlers) and other gateway options.
 */
export async function startChatGateway(
  store: ConnectionStore,
  options: Omit<LocalGatewayOptions, "handlers"> & {
    override?: (real: Record<string, RouteHandler>) => RouteHandlers;
  } = {},
): Promise<ChatGateway> {
  let deps: TestDeps | undefined;
  let events: RecordedEvent[] = [];
  const gateway = await startLocalGateway({
    log: () => {},
    ...options,
    port: options.port ?? 0,
    handlers: ({ callbackUrl }) => {
      deps = testDeps(store, callbackUrl);
      const real = routeTableHandlersWith(deps);
      const recorded = recording(options.override ? options.override(real) : real);
      events = recorded.events;
      return recorded.handlers;
    },
  });
  const disconnects = () => events.filter((e) => e.routeKey === "$disconnect").map((e) => e.event);
  return {
    gateway,
    deps: deps!,
    get events() {
      return events;
    },
    disconnects,
    disconnectOf: (connectionId, timeoutMs = 3000) =>
      waitFor(
        () => disconnects().find((e) => e.requestContext.connectionId === connectionId),
        timeoutMs,
        `$disconnect of ${connectionId}`,
      ),
    stop: () => gateway.stop(),
  };
}

/** {@link startChatGateway} with the rate limits raised out of the way of a test or bench that sends in bursts. */
export async function startBurstGateway(
  store: ConnectionStore,
  options: Parameters<typeof startChatGateway>[1] = {},
): Promise<ChatGateway> {
  const gw = await startChatGateway(store, options);
  (gw.deps.env as { limits?: unknown }).limits = {
    ...DEFAULT_MESSAGE_LIMITS,
    messages: 100_000,
    userMessages: 100_000,
    broadcasts: 100_000,
  };
  return gw;
}

/** Polls `probe` until it returns a value. */
export async function waitFor<T>(probe: () => T | undefined, timeoutMs = 3000, what = "condition"): Promise<T> {
  const deadline = Date.now() + timeoutMs;
  for (;;) {
    const value = probe();
    if (value !== undefined) return value;
    if (Date.now() > deadline) throw new Error(`timed out after ${timeoutMs} ms waiting for ${what}`);
    await new Promise((resolve) => setTimeout(resolve, 10));
  }
}

/** Polls an async check until it holds. */
export async function eventually(check: () => Promise<boolean>, what: string, timeoutMs = 3000): Promise<void> {
  const deadline = Date.now() + timeoutMs;
  while (!(await check())) {
    if (Date.now() > deadline) throw new Error(`timed out after ${timeoutMs} ms waiting for ${what}`);
    await new Promise((resolve) => setTimeout(resolve, 10));
  }
}

export interface TestClient {
  readonly ws: WebSocket;
  /** Every text frame received, in order. */
  readonly received: string[];
  /** The `connectionId` the gateway gave this client (from the `$connect` event), when known. */
  connectionId?: string;
  /** Resolves with the next unread frame (in order), or rejects after `timeoutMs`. */
  next(timeoutMs?: number): Promise<string>;
  /** Like `next`, parsed as JSON. */
  nextJson(timeoutMs?: number): Promise<Record<string, unknown>>;
  /** Asserts nothing more arrives within `ms`; resolves with what did. */
  quiet(ms?: number): Promise<string[]>;
  send(data: string): Promise<void>;
  /** Resolves when the socket closes, with the close code and reason the client saw. */
  readonly closed: Promise<{ code: number; reason: string }>;
  close(code?: number, reason?: string): Promise<{ code: number; reason: string }>;
}

/** Opens a client; resolves once the handshake completed, rejects with the HTTP status if it was refused. */
export function openClient(url: string, options: ClientOptions & { protocols?: string[] } = {}): Promise<TestClient> {
  const { protocols, ...clientOptions } = options;
  const ws = new WebSocket(url, protocols, clientOptions);
  const received: string[] = [];
  let read = 0;
  const waiters: (() => void)[] = [];
  ws.on("message", (data, isBinary) => {
    received.push(isBinary ? `<binary ${String(data)}>` : data.toString());
    for (const wake of waiters.splice(0)) wake();
  });
  const closed = new Promise<{ code: number; reason: string }>((resolve) =>
    ws.on("close", (code, reason) => resolve({ code, reason: reason.toString() })),
  );
  const next = (timeoutMs = 3000) =>
    new Promise<string>((resolve, reject) => {
      const attempt = () => {
        if (read < received.length) {
          clearTimeout(timer);
          resolve(received[read++]!);
          return true;
        }
        return false;
      };
      const timer = setTimeout(
        () => reject(new Error(`no frame within ${timeoutMs} ms (received so far: ${JSON.stringify(received)})`)),
        timeoutMs,
      );
      if (attempt()) return;
      const wait = () => {
        if (!attempt()) waiters.push(wait);
      };
      waiters.push(wait);
    });
  const client: TestClient = {
    ws,
    received,
    next,
    nextJson: async (timeoutMs) => JSON.parse(await next(timeoutMs)) as Record<string, unknown>,
    quiet: async (ms = 150) => {
      const before = received.length;
      await new Promise((resolve) => setTimeout(resolve, ms));
      return received.slice(before);
    },
    send: (data) =>
      new Promise<void>((resolve, reject) => ws.send(data, (error) => (error ? reject(error) : resolve()))),
    closed,
    close: (code, reason) => {
      ws.close(code, reason);
      return closed;
    },
  };
  return new Promise((resolve, reject) => {
    ws.once("open", () => resolve(client));
    ws.once("unexpected-response", (_req, res) => {
      reject(
        Object.assign(new Error(`handshake refused: ${res.statusCode}`), {
          statusCode: res.statusCode,
          headers: res.headers,
        }),
      );
      res.resume();
      ws.terminate();
    });
    ws.once("error", (error) => reject(error));
  });
}

/** Opens a client and learns its connection id from the gateway's `$connect` event. */
export async function openChatClient(chat: ChatGateway, options: ClientOptions = {}): Promise<TestClient> {
  const before = new Set(
    chat.events.filter((e) => e.routeKey === "$connect").map((e) => e.event.requestContext.connectionId),
  );
  const client = await openClient(chat.gateway.url, options);
  const ids = chat.events
    .filter((e) => e.routeKey === "$connect" && !before.has(e.event.requestContext.connectionId))
    .map((e) => e.event.requestContext.connectionId)
    .filter((id) => chat.gateway.openConnectionIds().includes(id));
  // Clients are opened one at a time in these tests, so exactly one new open connection appears.
  if (ids.length !== 1) throw new Error(`expected one new connection, found ${ids.length}`);
  client.connectionId = ids[0];
  return client;
}

/**
 * SigV4 headers for a raw `@connections` request to a local gateway, signed as the SDK signs it (service
 * `execute-api`) with the dummy credentials every local tool uses: the gateway refuses unsigned calls.
 */
export function signedHeaders(
  port: number,
  method: string,
  path: string,
  body: string | Buffer = "",
  credentials = { accessKeyId: "local", secretAccessKey: "local" },
): Record<string, string> {
  const payloadHash = sha256Hex(body);
  const host = `127.0.0.1:${port}`;
  const extra = { "x-amz-content-sha256": payloadHash };
  return {
    ...extra,
    ...new SigV4Signer("us-east-1", "execute-api").sign(
      { method, host, path, payloadHash, headers: extra },
      credentials,
    ),
  };
}

/**
 * The real AWS SDK client for a local gateway's `@connections` API (`endpoint`: its callback URL), signing with the
 * local dummy credentials it accepts (or others, to be refused); one attempt, so a refusal shows as it is.
 */
export function managementClient(
  endpoint: string,
  secretAccessKey = "local",
  accessKeyId = "local",
): ApiGatewayManagementApiClient {
  return new ApiGatewayManagementApiClient({
    endpoint,
    region: "us-east-1",
    credentials: { accessKeyId, secretAccessKey },
    maxAttempts: 1,
  });
}
