/**
 * A loopback HTTP server speaking the part of Amazon SQS's AWS JSON 1.0 protocol this project uses, with the
 * queue semantics the fan-out relies on, modelled on SQS's documentation:
 * - `POST /`, `X-Amz-Target: AmazonSQS.{Action}`, `Content-Type: application/x-amz-json-1.0`, a SigV4
 *   `Authorization` for service `sqs` ("Making query API requests using AWS JSON protocol", SQS Developer Guide);
 *   errors as `{"__type": "com.amazonaws.sqs#…", "message": …}` with HTTP 400/500;
 * - SendMessage (`MessageBody`, `DelaySeconds`; answers `MessageId`, `MD5OfMessageBody`; bodies over
 *   `MaximumMessageSize` (1 MiB) or with characters outside XML's Char are rejected);
 * - ReceiveMessage / DeleteMessage with a visibility timeout and `ApproximateReceiveCount`; a redrive policy
 *   moves a message to its dead-letter queue once it has been received `maxReceiveCount` times and is received
 *   again;
 * - GetQueueAttributes (`ApproximateNumberOfMessages`, `…NotVisible`), and StartMessageMoveTask (DLQ redrive: to
 *   `DestinationArn`, or to each message's original source queue).
 *
 * Time can be compressed for tests (`timeScale`: 0.01 turns a 10 s delay into 100 ms). `consume` plays Lambda's
 * event source mapping: receive a batch, call the function, delete what its partial batch response does not
 * name, delete nothing when it throws.
 */
import { createHash, randomUUID } from "node:crypto";
import { createServer, type IncomingHttpHeaders, type Server } from "node:http";
import type { AddressInfo, Socket } from "node:net";

const JSON_1_0 = "application/x-amz-json-1.0";
const ACCOUNT = "000000000000";
const REGION = "us-east-1";
/** SQS's MaximumMessageSize ceiling since 2025 (it was 256 KiB before). */
export const MAX_MESSAGE_BYTES = 1_048_576;

interface Message {
  readonly id: string;
  readonly body: string;
  readonly md5: string;
  receiveCount: number;
  visibleAt: number;
  receiptHandle?: string;
  /** The queue a dead-lettered message came from (redrive goes back there). */
  sourceArn?: string;
}

export interface QueueOptions {
  /** Visibility timeout, ms (before `timeScale`). Default 30 s. */
  readonly visibilityTimeoutMs?: number;
  readonly redrive?: { readonly deadLetterQueue: string; readonly maxReceiveCount: number };
}

interface Queue {
  readonly name: string;
  readonly url: string;
  readonly arn: string;
  readonly messages: Message[];
  readonly options: QueueOptions;
}

export interface SqsRequest {
  readonly action: string;
  readonly headers: IncomingHttpHeaders;
  readonly body: Record<string, unknown>;
}

export interface ReceivedMessage {
  readonly messageId: string;
  readonly receiptHandle: string;
  readonly body: string;
  readonly attributes: { readonly ApproximateReceiveCount: string };
}

export interface FakeSqs {
  /** `http://127.0.0.1:{port}` (AWS_ENDPOINT_URL_SQS). */
  readonly endpoint: string;
  readonly requests: SqsRequest[];
  /** Multiplies every delay and visibility timeout. */
  timeScale: number;
  createQueue(name: string, options?: QueueOptions): { url: string; arn: string };
  /** Bodies of the messages a queue holds, visible or not. */
  bodies(name: string): string[];
  /** Answers the next `count` requests with a 500 InternalFailure (or a throttle). */
  failNext(count: number, kind?: "internal" | "throttle"): void;
  /** One poll of the event source mapping: receive up to `batchSize`, run `fn`, delete what succeeded. */
  consume(
    name: string,
    fn: (event: { Records: ReceivedMessage[] }) => Promise<unknown>,
    batchSize?: number,
  ): Promise<number>;
  close(): Promise<void>;
}

export async function startSqs(): Promise<FakeSqs> {
  const requests: SqsRequest[] = [];
  const queues = new Map<string, Queue>();
  const failures: ("internal" | "throttle")[] = [];
  const sockets = new Set<Socket>();
  let endpoint = "";

  const byUrl = (url: unknown) => [...queues.values()].find((q) => q.url === url);
  const byArn = (arn: unknown) => [...queues.values()].find((q) => q.arn === arn);
  const scaled = (ms: number) => ms * fake.timeScale;

  /** SQS moves a message to the DLQ when a receive would exceed maxReceiveCount. */
  function receive(queue: Queue, max: number): Message[] {
    const now = Date.now();
    const out: Message[] = [];
    for (const message of [...queue.messages]) {
      if (out.length >= max) break;
      if (message.visibleAt > now) continue;
      const redrive = queue.options.redrive;
      if (redrive && message.receiveCount >= redrive.maxReceiveCount) {
        queue.messages.splice(queue.messages.indexOf(message), 1);
        const dlq = queues.get(redrive.deadLetterQueue)!;
        dlq.messages.push({ ...message, receiptHandle: undefined, sourceArn: queue.arn, visibleAt: now });
        continue;
      }
      message.receiveCount++;
      message.visibleAt = now + scaled(queue.options.visibilityTimeoutMs ?? 30_000);
      message.receiptHandle = randomUUID();
      out.push(message);
    }
    return out;
  }

  function handle(action: string, body: Record<string, unknown>): [number, Record<string, unknown>] {
    const error = (type: string, message: string): [number, Record<string, unknown>] => [
      400,
      { __type: `com.amazonaws.sqs#${type}`, message },
    ];
    switch (action) {
      case "SendMessage": {
        const queue = byUrl(body.QueueUrl);
        if (!queue) return error("QueueDoesNotExist", "The specified queue does not exist.");
        const text = body.MessageBody;
        if (typeof text !== "string" || text.length === 0) return error("InvalidParameterValue", "MessageBody");
        if (Buffer.byteLength(text) > MAX_MESSAGE_BYTES)
          return error(
            "InvalidParameterValue",
            `One or more parameters are invalid. Reason: Message must be shorter than ${MAX_MESSAGE_BYTES} bytes.`,
          );
        // biome-ignore lint/suspicious/noControlCharactersInRegex: XML's Char production is what SQS accepts.
        if (/[^\x09\x0a\x0d\x20-\ud7ff\ue000-\ufffd\u{10000}-\u{10ffff}]/u.test(text))
          return error("InvalidMessageContents", "Invalid characters found.");
        const delay = Number(body.DelaySeconds ?? 0);
        if (!Number.isInteger(delay) || delay < 0 || delay > 900) return error("InvalidParameterValue", "DelaySeconds");
        const md5 = createHash("md5").update(text, "utf8").digest("hex");
        const id = randomUUID();
        queue.messages.push({ id, body: text, md5, receiveCount: 0, visibleAt: Date.now() + scaled(delay * 1000) });
        return [200, { MessageId: id, MD5OfMessageBody: md5 }];
      }
      case "ReceiveMessage": {
        const queue = byUrl(body.QueueUrl);
        if (!queue) return error("QueueDoesNotExist", "The specified queue does not exist.");
        const messages = receive(queue, Number(body.MaxNumberOfMessages ?? 1));
        return [
          200,
          {
            Messages: messages.map((m) => ({
              MessageId: m.id,
              ReceiptHandle: m.receiptHandle,
              MD5OfBody: m.md5,
              Body: m.body,
              Attributes: { ApproximateReceiveCount: String(m.receiveCount) },
            })),
          },
        ];
      }
      case "DeleteMessage": {
        const queue = byUrl(body.QueueUrl);
        if (!queue) return error("QueueDoesNotExist", "The specified queue does not exist.");
        const index = queue.messages.findIndex((m) => m.receiptHandle === body.ReceiptHandle);
        if (index < 0) return error("ReceiptHandleIsInvalid", "The receipt handle is not valid.");
        queue.messages.splice(index, 1);
        return [200, {}];
      }
      case "GetQueueAttributes": {
        const queue = byUrl(body.QueueUrl);
        if (!queue) return error("QueueDoesNotExist", "The specified queue does not exist.");
        const now = Date.now();
        const visible = queue.messages.filter((m) => m.visibleAt <= now).length;
        return [
          200,
          {
            Attributes: {
              ApproximateNumberOfMessages: String(visible),
              ApproximateNumberOfMessagesNotVisible: String(queue.messages.length - visible),
              QueueArn: queue.arn,
            },
          },
        ];
      }
      case "StartMessageMoveTask": {
        const source = byArn(body.SourceArn);
        if (!source) return error("ResourceNotFoundException", "The source queue does not exist.");
        const isDlq = [...queues.values()].some((q) => q.options.redrive?.deadLetterQueue === source.name);
        if (!isDlq) return error("InvalidParameterValue", "Source queue must be configured as a Dead Letter Queue.");
        const destination = body.DestinationArn === undefined ? undefined : byArn(body.DestinationArn);
        if (body.DestinationArn !== undefined && !destination)
          return error("ResourceNotFoundException", "The destination queue does not exist.");
        for (const message of [...source.messages]) {
          const target = destination ?? byArn(message.sourceArn);
          // A message sent to the DLQ directly has no source queue to go back to: it stays.
          if (!target) continue;
          source.messages.splice(source.messages.indexOf(message), 1);
          target.messages.push({
            id: message.id,
            body: message.body,
            md5: message.md5,
            receiveCount: 0,
            visibleAt: Date.now(),
          });
        }
        return [200, { TaskHandle: randomUUID() }];
      }
      default:
        return [400, { __type: "com.amazon.coral.service#UnknownOperationException", message: action }];
    }
  }

  const server: Server = createServer((req, res) => {
    const chunks: Buffer[] = [];
    req.on("data", (chunk: Buffer) => chunks.push(chunk));
    req.on("end", () => {
      const target = String(req.headers["x-amz-target"] ?? "");
      const action = target.startsWith("AmazonSQS.") ? target.slice("AmazonSQS.".length) : "";
      let body: Record<string, unknown> = {};
      try {
        body = JSON.parse(Buffer.concat(chunks).toString("utf8") || "{}") as Record<string, unknown>;
      } catch {
        body = {};
      }
      requests.push({ action, headers: req.headers, body });
      const answer = (status: number, payload: Record<string, unknown>) =>
        res
          .writeHead(status, { "content-type": JSON_1_0, "x-amzn-requestid": randomUUID() })
          .end(JSON.stringify(payload));
      const authorization = String(req.headers.authorization ?? "");
      if (
        req.method !== "POST" ||
        req.headers["content-type"] !== JSON_1_0 ||
        !/^AWS4-HMAC-SHA256 Credential=[^/]+\/\d{8}\/[a-z0-9-]+\/sqs\/aws4_request, SignedHeaders=[^,]*x-amz-target[^,]*, Signature=[0-9a-f]{64}$/.test(
          authorization,
        )
      ) {
        return answer(400, { __type: "com.amazon.coral.service#MissingAuthenticationTokenException", message: "" });
      }
      const failure = failures.shift();
      if (failure === "internal") return answer(500, { __type: "com.amazonaws.sqs#InternalFailure", message: "" });
      if (failure === "throttle")
        return answer(400, { __type: "com.amazonaws.sqs#RequestThrottled", message: "Rate exceeded" });
      const [status, payload] = handle(action, body);
      answer(status, payload);
    });
  });
  server.on("connection", (socket: Socket) => {
    sockets.add(socket);
    socket.on("close", () => sockets.delete(socket));
  });
  await new Promise<void>((resolve) => server.listen(0, "127.0.0.1", resolve));
  endpoint = `http://127.0.0.1:${(server.address() as AddressInfo).port}`;

  const fake: FakeSqs = {
    endpoint,
    requests,
    timeScale: 1,
    createQueue(name, options = {}) {
      const queue: Queue = {
        name,
        url: `${endpoint}/${ACCOUNT}/${name}`,
        arn: `arn:aws:sqs:${REGION}:${ACCOUNT}:${name}`,
        messages: [],
        options,
      };
      queues.set(name, queue);
      return { url: queue.url, arn: queue.arn };
    },
    bodies(name) {
      return (queues.get(name)?.messages ?? []).map((m) => m.body);
    },
    failNext(count, kind = "internal") {
      for (let i = 0; i < count; i++) failures.push(kind);
    },
    async consume(name, fn, batchSize = 1) {
      const queue = queues.get(name);
      if (!queue) throw new Error(`no queue ${name}`);
      const batch = receive(queue, batchSize);
      if (batch.length === 0) return 0;
      const records = batch.map((m) => ({
        messageId: m.id,
        receiptHandle: m.receiptHandle!,
        body: m.body,
        attributes: { ApproximateReceiveCount: String(m.receiveCount) },
      }));
      let failed: Set<string>;
      try {
        const response = (await fn({ Records: records })) as { batchItemFailures?: { itemIdentifier: string }[] };
        failed = new Set((response?.batchItemFailures ?? []).map((f) => f.itemIdentifier));
      } catch {
        return batch.length; // the whole batch stays, visible again after the visibility timeout
      }
      for (const m of batch) {
        if (failed.has(m.id)) continue;
        const index = queue.messages.indexOf(m);
        if (index >= 0) queue.messages.splice(index, 1);
      }
      return batch.length;
    },
    async close() {
      for (const socket of sockets) socket.destroy();
      await new Promise((resolve) => server.close(resolve));
    },
  };
  return fake;
}
