/**
 * Hands a shard to the fan-out worker on AWS through a durable queue: SQS `SendMessage` (AWS JSON 1.0 protocol:
 * `POST /`, `X-Amz-Target: AmazonSQS.SendMessage`, `Content-Type: application/x-amz-json-1.0`), signed here with
 * the same SigV4 code as the posts, so the bundles need no SQS SDK client. The worker consumes the queue through
 * an event source mapping (infra/fanout-worker.ts); a shard the worker cannot finish is retried by SQS and ends in
 * the dead-letter queue, where an alarm sees it and an operator redrives it (docs/fan-out.md).
 *
 * Why a queue rather than Lambda's asynchronous invoke: an async event whose worker crashes, times out or is
 * throttled past the event's maximum age is dropped unless an on-failure destination is set, and retrying it
 * re-posts the whole shard. A queue keeps the shard until a worker has finished it, shows the backlog as a
 * metric, and redrives from its dead-letter queue with one API call (`StartMessageMoveTask`).
 */
import { createHash } from "node:crypto";
import type { OutgoingHttpHeaders } from "node:http";
import { Agent } from "node:https";
import { backoffMs } from "../runtime/connections-api";
import { postSigned } from "../runtime/signed-post";
import { type AwsCredentials, SigV4Signer, sha256Hex } from "../runtime/sigv4";
import type { FanOutShardEvent, InvokeWorker } from "./shard-format";

const SEND_ATTEMPTS = 3;
const SEND_TIMEOUT_MS = 5_000;
/** SQS's limit on `DelaySeconds` (15 minutes). */
export const MAX_DELAY_SECONDS = 900;

export class SqsError extends Error {
  constructor(
    override readonly name: string,
    message: string,
    readonly status?: number,
  ) {
    super(message);
  }
}

/** Error types SQS answers with HTTP 400 although retrying is right. */
const RETRYABLE_TYPES = new Set(["ThrottlingException", "RequestThrottled", "KmsThrottled", "ServiceUnavailable"]);

/**
 * A message body as SQS accepts it. SQS rejects characters outside XML's `Char` production (#x9 | #xA | #xD |
 * [#x20-#xD7FF] | [#xE000-#xFFFD] | [#x10000-#x10FFFF]); JSON.stringify already escapes control characters and
 * lone surrogates, which leaves U+FFFE and U+FFFF: they can only be inside a JSON string, so escaping them keeps
 * the JSON the same value.
 */
export function sqsMessageBody(event: unknown): string {
  return JSON.stringify(event).replace(/[\ufffe\uffff]/g, (c) => `\\u${c.charCodeAt(0).toString(16)}`);
}

/** `AmazonSQS.SendMessage`, retried on throttling, 5xx, socket errors and timeouts. */
export class SqsShardQueue {
  private readonly agent = new Agent({ keepAlive: true, maxSockets: 8 });
  private signer: SigV4Signer | undefined;

  /**
   * @param queueUrl the shard queue (`https://sqs.{region}.amazonaws.com/{account}/{name}`).
   * @param endpoint `AWS_ENDPOINT_URL_SQS`-style override; default `https://sqs.{region}.amazonaws.com`.
   */
  constructor(
    readonly queueUrl: string,
    private readonly credentials: () => Promise<AwsCredentials>,
    private readonly region: () => Promise<string>,
    private readonly endpoint?: string,
  ) {}

  /** Queues a shard for the worker; resolves once SQS has stored it. */
  readonly invoke: InvokeWorker = async (event, options): Promise<void> => {
    await this.send(this.queueUrl, event, options?.delaySeconds);
  };

  /** Sends `event` to `queueUrl` (this queue, or its dead-letter queue); resolves with the MessageId. */
  async send(queueUrl: string, event: FanOutShardEvent, delaySeconds = 0): Promise<string> {
    const messageBody = sqsMessageBody(event);
    const request: Record<string, unknown> = { QueueUrl: queueUrl, MessageBody: messageBody };
    if (delaySeconds > 0) request.DelaySeconds = Math.min(MAX_DELAY_SECONDS, Math.ceil(delaySeconds));
    const body = Buffer.from(JSON.stringify(request));
    let lastError: Error | undefined;
    for (let attempt = 1; attempt <= SEND_ATTEMPTS; attempt++) {
      try {
        const answer = await this.post("SendMessage", body);
        const md5 = createHash("md5").update(messageBody, "utf8").digest("hex");
        // SQS answers the MD5 of the body it stored: a mismatch means it stored something else.
        if (answer.MD5OfMessageBody !== md5) throw new SqsError("MD5Mismatch", "SQS stored another message body");
        return String(answer.MessageId);
      } catch (error) {
        lastError = error as Error;
        const { status, name } = error as SqsError;
        const retryable = status === undefined || status >= 500 || RETRYABLE_TYPES.has(name);
        if (!retryable || attempt === SEND_ATTEMPTS) break;
        await new Promise((resolve) => setTimeout(resolve, backoffMs(100, 1_000, attempt)));
      }
    }
    throw lastError;
  }

  close(): void {
    this.agent.destroy();
  }

  /** One signed JSON-protocol call; resolves with the parsed answer on a 2xx, rejects with an {@link SqsError}. */
  private async post(action: string, body: Buffer): Promise<Record<string, unknown>> {
    const region = await this.region();
    const url = new URL(this.endpoint ?? `https://sqs.${region}.amazonaws.com`);
    const path = url.pathname.endsWith("/") ? url.pathname : `${url.pathname}/`;
    this.signer ??= new SigV4Signer(region, "sqs");
    const hash = sha256Hex(body);
    const signedHeaders = {
      "content-type": "application/x-amz-json-1.0",
      "x-amz-target": `AmazonSQS.${action}`,
      "x-amz-content-sha256": hash,
    };
    const headers: OutgoingHttpHeaders = {
      ...signedHeaders,
      ...this.signer.sign(
        { method: "POST", host: url.host, path, payloadHash: hash, headers: signedHeaders },
        await this.credentials(),
      ),
      "content-length": String(body.byteLength),
    };
    const answer = await postSigned({
      url,
      path,
      headers,
      body,
      agent: this.agent,
      timeoutMs: SEND_TIMEOUT_MS,
      timeoutError: () => new SqsError("TimeoutError", `SQS ${action} took over ${SEND_TIMEOUT_MS} ms`),
    });
    const text = answer.body.toString("utf8");
    if (answer.status < 200 || answer.status >= 300) throw sqsErrorOf(action, answer.status, text);
    try {
      return JSON.parse(text) as Record<string, unknown>;
    } catch {
      throw new SqsError("InvalidResponse", `SQS ${action} answered ${answer.status} without JSON`, 500);
    }
  }
}

/** The error of a non-2xx answer: `__type` of the JSON body (`com.amazonaws.sqs#QueueDoesNotExist` → its tail). */
function sqsErrorOf(action: string, status: number, text: string): SqsError {
  let type = `Http${status}`;
  let message = text.slice(0, 300);
  try {
    const body = JSON.parse(text) as { __type?: string; message?: string };
    if (body.__type) type = body.__type.split("#").pop()!;
    if (body.message) message = body.message;
  } catch {
    // not JSON: keep the status
  }
  return new SqsError(type, `SQS ${action} answered ${status} ${type}: ${message}`, status);
}
