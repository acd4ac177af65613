/**
 * The wire format of a broadcast shard: the event a fan-out worker invocation receives (handlers/fan-out-worker.ts),
 * how the payload travels in it, and the size limit it must fit.
 */

/** Lambda's limit on an asynchronous invocation's payload (256 KB). */
export const ASYNC_PAYLOAD_LIMIT_BYTES = 256 * 1024;

/**
 * The event of one fan-out worker invocation. Version 1: one payload for every id. Version 2: a room-less
 * broadcast's two payloads, `data`/`dataBase64` for plain clients and `typedData` (the envelope) for typed ones, and
 * every id tagged with the one it gets (broadcast/protocol-audience.ts). A worker that only knows version 1 refuses
 * a version 2 shard rather than posting the raw payload to typed clients.
 */
export interface FanOutShardEvent {
  readonly type: "fanout-shard";
  readonly version: 1 | 2;
  /** The `sendmessage` request id: every shard's log line carries it. */
  readonly broadcastId: string;
  /** 1-based shard number within the broadcast. */
  readonly shard: number;
  /** The connection that sent the message. */
  readonly sender?: string;
  /** The payload as text, or… */
  readonly data?: string;
  /** …as base64, when JSON-escaping the text would make it larger. */
  readonly dataBase64?: string;
  readonly connectionIds: readonly string[];
  /** Version 2: the envelope typed clients get (JSON text, so never base64). */
  readonly typedData?: string;
  /**
   * How many times these ids were queued again because their posts failed (absent or 0: the shard as the
   * broadcast dispatched it). A re-queued shard holds only the ids that failed, never the whole audience.
   */
  readonly hop?: number;
}

/** How a shard is queued: SQS may hold it back a while (a re-queued shard waits before its next try). */
export interface InvokeOptions {
  readonly delaySeconds?: number;
}

/** Sends one shard to a worker; resolves once the shard is accepted (queued, not run). */
export type InvokeWorker = (event: FanOutShardEvent, options?: InvokeOptions) => Promise<void>;

export function isFanOutShardEvent(event: unknown): event is FanOutShardEvent {
  const e = event as Partial<FanOutShardEvent> | null;
  return (
    typeof e === "object" &&
    e !== null &&
    e.type === "fanout-shard" &&
    (e.version === 1 || (e.version === 2 && typeof e.typedData === "string")) &&
    Array.isArray(e.connectionIds) &&
    (e.hop === undefined || (Number.isInteger(e.hop) && e.hop >= 0)) &&
    (typeof e.data === "string" || typeof e.dataBase64 === "string")
  );
}

/** The payload field of a shard event: text when that is smaller on the wire than base64. */
export function shardData(payload: Buffer): Pick<FanOutShardEvent, "data" | "dataBase64"> {
  const text = payload.toString("utf8");
  const lossless = Buffer.from(text, "utf8").equals(payload);
  const base64 = payload.toString("base64");
  return lossless && JSON.stringify(text).length <= base64.length + 2 ? { data: text } : { dataBase64: base64 };
}

export function shardPayload(event: FanOutShardEvent): Buffer {
  return event.dataBase64 !== undefined
    ? Buffer.from(event.dataBase64, "base64")
    : Buffer.from(event.data ?? "", "utf8");
}

/** Whether `event`, as JSON, is too large for one asynchronous invocation (a little room kept for Lambda's own wrapping). */
export function exceedsPayloadLimit(event: FanOutShardEvent): boolean {
  return Buffer.byteLength(JSON.stringify(event)) > ASYNC_PAYLOAD_LIMIT_BYTES - 1024;
}
