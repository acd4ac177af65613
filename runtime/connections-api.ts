/**
 * The `@connections` management API, wrapped so callers get an outcome instead of an exception: the fan-out
 * must treat "gone", "throttled" and "failed" differently and must never let one failed post abort the rest.
 *
 * Posts go through {@link ConnectionPoster}: one keep-alive HTTP agent sized to the fan-out's concurrency, and
 * SigV4 signing done here (runtime/sigv4.ts) rather than by the SDK client, whose middleware stack
 * costs ~5x more CPU per post than the request itself — on the hot path that is the difference between a
 * Lambda pushing ~1,400 and ~5,000 posts per second per vCPU. The SDK client stays for everything else
 * (`DeleteConnection`) and lends the poster its credential provider and region, so credentials are resolved
 * (and rotated) exactly as the SDK does.
 */
import { Agent as HttpAgent, request as httpRequest, type IncomingMessage } from "node:http";
import { Agent as HttpsAgent, request as httpsRequest } from "node:https";
import { ApiGatewayManagementApiClient, DeleteConnectionCommand } from "@aws-sdk/client-apigatewaymanagementapi";
import { type AwsCredentials, escapeUri, SigV4Signer, sha256Hex } from "./sigv4";

/** `PostToConnection`'s documented maximum `Data` size. */
export const MAX_POST_BYTES = 131_072;

/** What one HTTP attempt of a post came to. */
export type Attempt =
  | { readonly kind: "delivered" }
  /** 410 GoneException: the connection is closed; remove it from the store. */
  | { readonly kind: "gone" }
  /** 413 PayloadTooLargeException: the same payload is too large for every connection. */
  | { readonly kind: "too-large" }
  /** 429 LimitExceededException: the account throttle (or the client's buffer); retry later, slower. */
  | { readonly kind: "throttled" }
  /** 5xx, a dropped socket or our own timeout: the post may not have arrived; retry a bounded number of times. */
  | { readonly kind: "retryable"; readonly error: Error; readonly timedOut: boolean }
  /** Any other answer (403 Forbidden, 400 BadRequest): retrying cannot help. */
  | { readonly kind: "fatal"; readonly error: Error };

/** What a post came to after its retries. */
export type PostOutcome =
  | { readonly kind: "delivered"; readonly attempts: number }
  | { readonly kind: "gone"; readonly attempts: number }
  | { readonly kind: "too-large"; readonly attempts: number }
  | { readonly kind: "failed"; readonly attempts: number; readonly error: unknown };

export interface PostOptions {
  /** Abort one attempt after this many ms: a post to API Gateway can hang past the SDK's own timeouts. */
  readonly timeoutMs?: number;
  /** Total attempts for throttling (429) and server errors (5xx) of a single post ({@link ConnectionsApi.post}). */
  readonly maxAttempts?: number;
  /** Base of the exponential backoff, ms (full jitter). */
  readonly backoffBaseMs?: number;
  /** Cap of one backoff sleep, ms. */
  readonly backoffCapMs?: number;
}

export const DEFAULT_POST_TIMEOUT_MS = 3_000;

/** How long an attempt may wait for a free socket, in per-attempt timeouts, when its caller sets no limit. */
const SOCKET_WAIT_FACTOR = 10;

const DEFAULT_POST_OPTIONS: Required<PostOptions> = {
  timeoutMs: DEFAULT_POST_TIMEOUT_MS,
  maxAttempts: 4,
  backoffBaseMs: 50,
  backoffCapMs: 1_000,
};

/** Sockets of the keep-alive agent when the caller does not size it (the SDK's own default is 50). */
const DEFAULT_MAX_SOCKETS = 64;

/** A body prepared once per broadcast: the same bytes and the same payload hash for every post. */
export interface PreparedPayload {
  readonly body: Buffer;
  readonly sha256: string;
}

export function preparePayload(data: string | Uint8Array): PreparedPayload {
  const body =
    typeof data === "string" ? Buffer.from(data) : Buffer.from(data.buffer, data.byteOffset, data.byteLength);
  return { body, sha256: sha256Hex(body) };
}

class HttpError extends Error {
  constructor(
    override readonly name: string,
    message: string,
    readonly status: number,
  ) {
    super(message);
  }
}

class PostTimeoutError extends Error {
  override readonly name = "TimeoutError";
}

function classify(status: number, errorType: string | undefined): Attempt {
  if (status >= 200 && status < 300) return { kind: "delivered" };
  if (status === 410 || errorType === "GoneException") return { kind: "gone" };
  if (status === 413 || errorType === "PayloadTooLargeException") return { kind: "too-large" };
  if (status === 429 || errorType === "LimitExceededException") return { kind: "throttled" };
  const error = new HttpError(errorType ?? `Http${status}`, `@connections answered ${status}`, status);
  return status >= 500 ? { kind: "retryable", error, timedOut: false } : { kind: "fatal", error };
}

/**
 * `PostToConnection` as one signed HTTP request on a keep-alive agent. Never throws: every answer, socket error
 * and timeout becomes an {@link Attempt}.
 */
export class ConnectionPoster {
  private readonly url: URL;
  private readonly basePath: string;
  private readonly request: typeof httpRequest;
  private signer: SigV4Signer | undefined;
  private credentialsCache: { value: AwsCredentials; refreshAt: number } | undefined;

  /**
   * @param callbackUrl `https://{apiId}.execute-api.{region}.amazonaws.com/{stage}` (or a local endpoint).
   * @param agent keep-alive agent of the URL's protocol, sized to the concurrency.
   */
  constructor(
    callbackUrl: string,
    readonly agent: HttpAgent,
    private readonly credentials: () => Promise<AwsCredentials>,
    private readonly region: () => Promise<string>,
  ) {
    this.url = new URL(callbackUrl);
    this.basePath = this.url.pathname.replace(/\/+$/, "");
    this.request = this.url.protocol === "https:" ? (httpsRequest as typeof httpRequest) : httpRequest;
  }

  /**
   * The provider's credentials, reused without a round trip through its promise for up to a minute (a post is
   * signed thousands of times a second), and never within 5 minutes of their expiry: Lambda rotates them.
   */
  private cachedCredentials(): AwsCredentials | undefined {
    const cache = this.credentialsCache;
    return cache && Date.now() < cache.refreshAt ? cache.value : undefined;
  }

  private async refreshCredentials(): Promise<AwsCredentials> {
    const value = await this.credentials();
    const now = Date.now();
    const expiration = (value as { expiration?: Date }).expiration?.getTime();
    this.credentialsCache = {
      value,
      refreshAt: Math.min(now + 60_000, expiration === undefined ? Infinity : expiration - 300_000),
    };
    return value;
  }

  /**
   * One attempt, aborted `timeoutMs` after it got a socket, or after `waitLimitMs` without one (default: the
   * same as `timeoutMs`, ten times over).
   */
  async attempt(
    connectionId: string,
    payload: PreparedPayload,
    timeoutMs: number,
    waitLimitMs: number = timeoutMs * SOCKET_WAIT_FACTOR,
  ): Promise<Attempt> {
    let headers: Record<string, string>;
    const path = `${this.basePath}/@connections/${escapeUri(connectionId)}`;
    try {
      const credentials = this.cachedCredentials() ?? (await this.refreshCredentials());
      this.signer ??= new SigV4Signer(await this.region(), "execute-api");
      headers = { "content-type": "application/octet-stream", "x-amz-content-sha256": payload.sha256 };
      Object.assign(
        headers,
        this.signer.sign(
          { method: "POST", host: this.url.host, path, payloadHash: payload.sha256, headers },
          credentials,
        ),
      );
      headers["content-length"] = String(payload.body.byteLength);
    } catch (error) {
      // No credentials or region: nothing this post can fix by retrying.
      return { kind: "fatal", error: error instanceof Error ? error : new Error(String(error)) };
    }

    return new Promise<Attempt>((resolve) => {
      let settled = false;
      const finish = (attempt: Attempt) => {
        if (settled) return;
        settled = true;
        clearTimeout(timer);
        resolve(attempt);
      };
      const req = this.request(
        {
          protocol: this.url.protocol,
          hostname: this.url.hostname,
          port: this.url.port || undefined,
          method: "POST",
          path,
          headers,
          agent: this.agent,
        },
        (res: IncomingMessage) => {
          const status = res.statusCode ?? 0;
          const rawType = res.headers["x-amzn-errortype"];
          const errorType = typeof rawType === "string" ? rawType.split(/[:,]/)[0]!.split("#").pop() : undefined;
          res.on("error", (error) => finish({ kind: "retryable", error, timedOut: false }));
          res.on("end", () => finish(classify(status, errorType)));
          res.resume();
        },
      );
      // The attempt's timer runs from the moment the request has a socket. A request queued inside the agent
      // (every socket busy) has not been sent: timing it out would retry a post that may then be delivered
      // twice. Its wait for a socket is bounded separately (`waitLimitMs`), and a request dropped there was
      // never written, so retrying it cannot duplicate it.
      let timer: NodeJS.Timeout = setTimeout(() => {
        const error = new PostTimeoutError(`post to ${connectionId} waited over ${waitLimitMs} ms for a socket`);
        req.destroy(error);
        finish({ kind: "retryable", error, timedOut: false });
      }, waitLimitMs);
      req.once("socket", () => {
        clearTimeout(timer);
        if (settled) return;
        timer = setTimeout(() => {
          const error = new PostTimeoutError(`post to ${connectionId} took over ${timeoutMs} ms`);
          req.destroy(error);
          finish({ kind: "retryable", error, timedOut: true });
        }, timeoutMs);
      });
      req.on("error", (error) => finish({ kind: "retryable", error, timedOut: false }));
      req.end(payload.body);
    });
  }
}

const sleep = (ms: number) => new Promise<void>((resolve) => setTimeout(resolve, ms));

/** Full-jitter exponential backoff: uniform in [0, min(cap, base * 2^(n-1))]. */
export function backoffMs(base: number, cap: number, n: number): number {
  return Math.random() * Math.min(cap, base * 2 ** Math.max(0, n - 1));
}

export interface ConnectionsApiOptions extends PostOptions {
  /** Sockets of the keep-alive agent: the fan-out's concurrency (one socket per post in flight). */
  readonly maxSockets?: number;
}

export class ConnectionsApi {
  private readonly options: Required<PostOptions>;

  constructor(
    readonly client: ApiGatewayManagementApiClient,
    readonly poster: ConnectionPoster,
    options: PostOptions = {},
  ) {
    this.options = { ...DEFAULT_POST_OPTIONS, ...options };
  }

  /** A client for `callbackUrl` (`https://{apiId}.execute-api.{region}.amazonaws.com/{stage}`). */
  static forEndpoint(callbackUrl: string, options: ConnectionsApiOptions = {}): ConnectionsApi {
    const maxSockets = options.maxSockets ?? DEFAULT_MAX_SOCKETS;
    const https = new URL(callbackUrl).protocol === "https:";
    // One agent for the poster and the SDK client: every socket to the endpoint is kept alive and reused.
    const agent = https
      ? new HttpsAgent({ keepAlive: true, maxSockets, maxFreeSockets: maxSockets })
      : new HttpAgent({ keepAlive: true, maxSockets, maxFreeSockets: maxSockets });
    const client = new ApiGatewayManagementApiClient({
      endpoint: callbackUrl,
      // Retries are ours (counted, jittered, bounded), so the SDK's own are off: they would multiply.
      maxAttempts: 1,
      requestHandler: https ? { httpsAgent: agent as HttpsAgent } : { httpAgent: agent },
    });
    const poster = new ConnectionPoster(
      callbackUrl,
      agent,
      () => client.config.credentials(),
      () => client.config.region(),
    );
    return new ConnectionsApi(client, poster, options);
  }

  /** Sockets of the keep-alive agent: more posts in flight would only queue inside the agent. */
  get maxSockets(): number {
    return this.poster.agent.maxSockets;
  }

  /** Options every post of this API uses unless overridden. */
  get postOptions(): Required<PostOptions> {
    return this.options;
  }

  /** One attempt (the fan-out runs its own retry policy around it). */
  attempt(
    connectionId: string,
    payload: PreparedPayload,
    timeoutMs: number = this.options.timeoutMs,
    waitLimitMs?: number,
  ): Promise<Attempt> {
    return this.poster.attempt(connectionId, payload, timeoutMs, waitLimitMs);
  }

  /** Posts `data` to one connection, retrying throttling, 5xx and timeouts; never throws. */
  async post(
    connectionId: string,
    data: string | Uint8Array | PreparedPayload,
    options: PostOptions = {},
  ): Promise<PostOutcome> {
    const { timeoutMs, maxAttempts, backoffBaseMs, backoffCapMs } = { ...this.options, ...options };
    const payload = typeof data === "string" || data instanceof Uint8Array ? preparePayload(data) : data;
    let lastError: unknown;
    let attempt = 0;
    while (attempt < maxAttempts) {
      attempt++;
      const result = await this.poster.attempt(connectionId, payload, timeoutMs);
      switch (result.kind) {
        case "delivered":
        case "gone":
        case "too-large":
          return { kind: result.kind, attempts: attempt };
        case "fatal":
          return { kind: "failed", attempts: attempt, error: result.error };
        case "throttled":
          lastError = new HttpError("LimitExceededException", "@connections answered 429", 429);
          break;
        case "retryable":
          lastError = result.error;
          break;
      }
      if (attempt < maxAttempts) await sleep(backoffMs(backoffBaseMs, backoffCapMs, attempt));
    }
    return { kind: "failed", attempts: attempt, error: lastError };
  }

  /** Closes a connection (API Gateway then runs `$disconnect`). Resolves `false` when it was already gone. */
  async disconnect(connectionId: string): Promise<boolean> {
    try {
      await this.client.send(new DeleteConnectionCommand({ ConnectionId: connectionId }));
      return true;
    } catch (err) {
      if (isGone(err)) return false;
      throw err;
    }
  }

  /** Releases the keep-alive sockets. */
  close(): void {
    this.client.destroy();
    this.poster.agent.destroy();
  }
}

function httpStatus(err: unknown): number | undefined {
  return (err as { $metadata?: { httpStatusCode?: number } })?.$metadata?.httpStatusCode;
}

/** SDK v3 errors carry `name` and `$metadata.httpStatusCode`; they have no `statusCode` (the seed's bug). */
export function isGone(err: unknown): boolean {
  return (err as Error)?.name === "GoneException" || httpStatus(err) === 410;
}
