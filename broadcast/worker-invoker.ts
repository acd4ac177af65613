/**
 * How `sendmessage` hands a shard of a large broadcast to the fan-out worker:
 * - on AWS, Lambda's `Invoke` API with `InvocationType: Event` (asynchronous: Lambda queues the event and answers
 *   202 at once), signed here with the same SigV4 code as the posts — one small request per shard, no extra SDK
 *   client in the bundle;
 * - locally and in tests, the worker module runs in the same process ({@link InProcessInvoker}), so the local
 *   gateway, which loads the route handlers in-process, needs no Lambda at all.
 */
import type { IncomingMessage } from "node:http";
import { Agent, request } from "node:https";
import { request as httpRequest } from "node:http";
import type { FanOutShardEvent, InvokeWorker } from "./broadcast";
import { backoffMs } from "../runtime/connections-api";
import { SigV4Signer, escapeUri, sha256Hex, type AwsCredentials } from "../runtime/sigv4";

const INVOKE_ATTEMPTS = 3;
const INVOKE_TIMEOUT_MS = 5_000;

export class InvokeError extends Error {
  constructor(
    override readonly name: string,
    message: string,
    readonly status?: number,
  ) {
    super(message);
  }
}

/** `lambda:InvokeFunction` with `X-Amz-Invocation-Type: Event`, retried on 429 / 5xx / socket errors. */
export class LambdaInvoker {
  private readonly agent = new Agent({ keepAlive: true, maxSockets: 8 });
  private signer: SigV4Signer | undefined;

  /**
   * @param functionName name or ARN of the worker function.
   * @param endpoint `AWS_ENDPOINT_URL_LAMBDA`-style override; default `https://lambda.{region}.amazonaws.com`.
   */
  constructor(
    readonly functionName: string,
    private readonly credentials: () => Promise<AwsCredentials>,
    private readonly region: () => Promise<string>,
    private readonly endpoint?: string,
  ) {}

  readonly invoke: InvokeWorker = async (event: FanOutShardEvent): Promise<void> => {
    const body = Buffer.from(JSON.stringify(event));
    let lastError: Error | undefined;
    for (let attempt = 1; attempt <= INVOKE_ATTEMPTS; attempt++) {
      try {
        await this.once(body);
        return;
      } catch (error) {
        lastError = error as Error;
        const status = (error as InvokeError).status;
        const retryable = status === undefined || status === 429 || status >= 500;
        if (!retryable || attempt === INVOKE_ATTEMPTS) break;
        await new Promise((resolve) => setTimeout(resolve, backoffMs(100, 1_000, attempt)));
      }
    }
    throw lastError;
  };

  close(): void {
    this.agent.destroy();
  }

  private async once(body: Buffer): Promise<void> {
    const region = await this.region();
    const url = new URL(this.endpoint ?? `https://lambda.${region}.amazonaws.com`);
    const path = `${url.pathname.replace(/\/+$/, "")}/2015-03-31/functions/${escapeUri(this.functionName)}/invocations`;
    this.signer ??= new SigV4Signer(region, "lambda");
    const hash = sha256Hex(body);
    const signedHeaders = {
      "content-type": "application/json",
      "x-amz-invocation-type": "Event",
      "x-amz-content-sha256": hash,
    };
    const headers = {
      ...signedHeaders,
      ...this.signer.sign(
        { method: "POST", host: url.host, path, payloadHash: hash, headers: signedHeaders },
        await this.credentials(),
      ),
      "content-length": String(body.byteLength),
    };
    const send = url.protocol === "https:" ? request : httpRequest;
    await new Promise<void>((resolve, reject) => {
      const req = send(
        {
          protocol: url.protocol,
          hostname: url.hostname,
          port: url.port || undefined,
          method: "POST",
          path,
          headers,
          ...(url.protocol === "https:" ? { agent: this.agent } : {}),
        },
        (res: IncomingMessage) => {
          const chunks: Buffer[] = [];
          res.on("data", (c: Buffer) => chunks.push(c));
          res.on("error", reject);
          res.on("end", () => {
            const status = res.statusCode ?? 0;
            if (status >= 200 && status < 300) return resolve();
            const type = String(res.headers["x-amzn-errortype"] ?? `Http${status}`).split(":")[0]!;
            reject(
              new InvokeError(
                type,
                `Lambda Invoke answered ${status}: ${Buffer.concat(chunks).toString("utf8").slice(0, 300)}`,
                status,
              ),
            );
          });
        },
      );
      req.setTimeout(INVOKE_TIMEOUT_MS, () =>
        req.destroy(new InvokeError("TimeoutError", `Lambda Invoke took over ${INVOKE_TIMEOUT_MS} ms`)),
      );
      req.on("error", reject);
      req.end(body);
    });
  }
}

/**
 * Runs shards in this process, like Lambda runs queued async events: the shard runs later, at most `parallelism`
 * at a time. Unlike Lambda's queue this one is bounded (`parallelism` running plus as many waiting): `invoke`
 * resolves only once the shard has a place, so a huge local broadcast holds a few shards in memory, not all.
 * `idle()` resolves when every accepted shard has run (tests, bench).
 */
export class InProcessInvoker {
  private readonly queue: FanOutShardEvent[] = [];
  private running = 0;
  private idleWaiters: (() => void)[] = [];
  private spaceWaiters: (() => void)[] = [];

  constructor(
    private readonly run: (event: FanOutShardEvent) => Promise<unknown>,
    private readonly parallelism = 1,
  ) {}

  readonly invoke: InvokeWorker = async (event: FanOutShardEvent): Promise<void> => {
    while (this.queue.length >= this.parallelism) await new Promise<void>((resolve) => this.spaceWaiters.push(resolve));
    // The event crosses a process boundary on AWS: copy it, so nothing is shared with the caller.
    this.queue.push(JSON.parse(JSON.stringify(event)) as FanOutShardEvent);
    setImmediate(() => this.pump());
  };

  /** Shards accepted and not finished. */
  get pending(): number {
    return this.queue.length + this.running;
  }

  idle(): Promise<void> {
    if (this.pending === 0) return Promise.resolve();
    return new Promise((resolve) => this.idleWaiters.push(resolve));
  }

  private pump(): void {
    while (this.running < this.parallelism && this.queue.length > 0) {
      const event = this.queue.shift()!;
      this.running++;
      const space = this.spaceWaiters.shift();
      space?.();
      void this.run(event)
        .catch(() => undefined)
        .finally(() => {
          this.running--;
          this.pump();
          if (this.pending === 0) {
            const waiters = this.idleWaiters;
            this.idleWaiters = [];
            for (const w of waiters) w();
          }
        });
    }
  }
}
