/**
 * The `@connections` management API, wrapped so callers get an outcome instead of an exception: the fan-out
 * must treat "gone", "throttled" and "failed" differently and must never let one failed post abort the rest.
 */
import {
  ApiGatewayManagementApiClient,
  DeleteConnectionCommand,
  PostToConnectionCommand,
} from "@aws-sdk/client-apigatewaymanagementapi";

/** `PostToConnection`'s documented maximum `Data` size. */
export const MAX_POST_BYTES = 131_072;

export type PostOutcome =
  | { readonly kind: "delivered"; readonly attempts: number }
  | { readonly kind: "gone"; readonly attempts: number }
  | { readonly kind: "too-large"; readonly attempts: number }
  | { readonly kind: "failed"; readonly attempts: number; readonly error: unknown };

export interface PostOptions {
  /** Abort one attempt after this many ms: a post to API Gateway can hang past the SDK's own timeouts. */
  readonly timeoutMs?: number;
  /** Total attempts for throttling (429) and server errors (5xx). */
  readonly maxAttempts?: number;
  /** Base of the exponential backoff, ms (full jitter). */
  readonly backoffBaseMs?: number;
  /** Cap of one backoff sleep, ms. */
  readonly backoffCapMs?: number;
}

const DEFAULT_POST_OPTIONS: Required<PostOptions> = {
  timeoutMs: 3_000,
  maxAttempts: 4,
  backoffBaseMs: 50,
  backoffCapMs: 1_000,
};

function httpStatus(err: unknown): number | undefined {
  return (err as { $metadata?: { httpStatusCode?: number } })?.$metadata?.httpStatusCode;
}

/** SDK v3 errors carry `name` and `$metadata.httpStatusCode`; they have no `statusCode` (the seed's bug). */
export function isGone(err: unknown): boolean {
  return (err as Error)?.name === "GoneException" || httpStatus(err) === 410;
}

function isTooLarge(err: unknown): boolean {
  return (err as Error)?.name === "PayloadTooLargeException" || httpStatus(err) === 413;
}

function isRetryable(err: unknown): boolean {
  const status = httpStatus(err);
  if ((err as Error)?.name === "LimitExceededException" || status === 429) return true;
  if (status !== undefined && status >= 500) return true;
  // Our own per-attempt timeout and dropped sockets: the post may not have reached API Gateway.
  const name = (err as Error)?.name;
  return name === "AbortError" || name === "TimeoutError" || (err as { code?: string })?.code === "ECONNRESET";
}

const sleep = (ms: number) => new Promise<void>((resolve) => setTimeout(resolve, ms));

export class ConnectionsApi {
  private readonly options: Required<PostOptions>;

  constructor(
    readonly client: ApiGatewayManagementApiClient,
    options: PostOptions = {},
  ) {
    this.options = { ...DEFAULT_POST_OPTIONS, ...options };
  }

  /** A client for `callbackUrl` (`https://{apiId}.execute-api.{region}.amazonaws.com/{stage}`). */
  static forEndpoint(callbackUrl: string, options: PostOptions = {}): ConnectionsApi {
    // Retries are ours (counted, jittered, bounded), so the SDK's own are off: they would multiply.
    return new ConnectionsApi(new ApiGatewayManagementApiClient({ endpoint: callbackUrl, maxAttempts: 1 }), options);
  }

  /** Posts `data` to one connection, retrying throttling and 5xx; never throws. */
  async post(connectionId: string, data: string | Uint8Array, options: PostOptions = {}): Promise<PostOutcome> {
    const { timeoutMs, maxAttempts, backoffBaseMs, backoffCapMs } = { ...this.options, ...options };
    const body = typeof data === "string" ? Buffer.from(data) : data;
    let lastError: unknown;
    let attempt = 0;
    while (attempt < maxAttempts) {
      attempt++;
      const abort = new AbortController();
      const timer = setTimeout(() => abort.abort(), timeoutMs);
      try {
        await this.client.send(new PostToConnectionCommand({ ConnectionId: connectionId, Data: body }), {
          abortSignal: abort.signal,
        });
        return { kind: "delivered", attempts: attempt };
      } catch (err) {
        if (isGone(err)) return { kind: "gone", attempts: attempt };
        if (isTooLarge(err)) return { kind: "too-large", attempts: attempt };
        lastError = err;
        if (!isRetryable(err) || attempt === maxAttempts) break;
        await sleep(Math.random() * Math.min(backoffCapMs, backoffBaseMs * 2 ** (attempt - 1)));
      } finally {
        clearTimeout(timer);
      }
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
}
