/**
 * Hands a shard to the fan-out worker on AWS: Lambda's `Invoke` API with `InvocationType: Event` (asynchronous:
 * Lambda queues the event and answers 202 at once), signed here with the same SigV4 code as the posts — one small
 * request per shard, no extra SDK client in the bundle.
 */
import type { OutgoingHttpHeaders } from "node:http";
import { Agent } from "node:https";
import { backoffMs } from "../runtime/connections-api";
import { type PostAnswer, postSigned } from "../runtime/signed-post";
import { type AwsCredentials, escapeUri, SigV4Signer, sha256Hex } from "../runtime/sigv4";
import type { FanOutShardEvent, InvokeWorker } from "./shard-format";

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

/** One signed `Invoke` request, ready to send. */
interface SignedInvoke {
  readonly url: URL;
  readonly path: string;
  readonly headers: OutgoingHttpHeaders;
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
    await this.send(await this.sign(body), body);
  }

  private async sign(body: Buffer): Promise<SignedInvoke> {
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
    return { url, path, headers };
  }

  /** Sends a signed request; resolves on a 2xx, rejects with an {@link InvokeError} otherwise. */
  private async send({ url, path, headers }: SignedInvoke, body: Buffer): Promise<void> {
    const answer = await postSigned({
      url,
      path,
      headers,
      body,
      agent: this.agent,
      timeoutMs: INVOKE_TIMEOUT_MS,
      timeoutError: () => new InvokeError("TimeoutError", `Lambda Invoke took over ${INVOKE_TIMEOUT_MS} ms`),
    });
    if (answer.status < 200 || answer.status >= 300) throw invokeErrorOf(answer);
  }
}

/** The error of a non-2xx answer, named after Lambda's `X-Amzn-ErrorType`. */
function invokeErrorOf({ status, headers, body }: PostAnswer): InvokeError {
  const type = String(headers["x-amzn-errortype"] ?? `Http${status}`).split(":")[0]!;
  return new InvokeError(type, `Lambda Invoke answered ${status}: ${body.toString("utf8").slice(0, 300)}`, status);
}
