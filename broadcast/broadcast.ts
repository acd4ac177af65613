/**
 * A broadcast end to end: list the audience, post to as much of it as this invocation can within its budget,
 * and hand the rest, in shards, to asynchronous invocations of the fan-out worker (handlers/fan-out-worker.ts).
 *
 * Why split: one invocation pushes a bounded number of posts per second (CPU: ~5,000 per vCPU with the signed
 * poster; window / latency; the account throttle), and API Gateway abandons `sendmessage` after 29 s. The
 * README's fan-out section has the measurement; below ~`inlineMax` connections nothing is split.
 *
 * How (memory bounded by one shard plus a few pages, whatever N is):
 * - The listing is read ahead of the posting into a buffer. The inline lane (this invocation's `fanOut`) takes
 *   pages from the head of the buffer as its window frees up, until it has taken `inlineMax` ids.
 * - Whenever the buffer holds a full shard, the listing is running ahead of what this invocation posts, so the
 *   shard is dispatched to a worker at once: workers start while the listing is still running.
 * - When the listing ends, what is left in the buffer stays inline if the inline budget covers it, else it is
 *   dispatched too. Small broadcasts (the whole audience fits in one shard) therefore never leave the invocation.
 * - The inline lane stops taking ids a few seconds before its deadline (the intake deadline), leaving time for its
 *   posts in flight to finish; whatever it has not taken is dispatched. So a broadcast never depends on this
 *   invocation being fast enough: under a saturated throttle it simply posts less itself.
 * - If a dispatch fails, its ids go back to the buffer, dispatching stops, and the inline lane takes everything
 *   (bounded by its deadline) rather than losing them.
 *
 * The parts: the split between lane and workers (splitter.ts), the shard wire format (shard-format.ts) and its
 * dispatcher (shard-dispatcher.ts), the deadlines (deadline.ts), the inline fan-out (fan-out.ts). This file wires
 * them together, and re-exports what callers outside broadcast/ use.
 */
import type { ConnectionStore, RemovedConnection } from "../contract/connection-store";
import type { FanOutSettings } from "../contract/env";
import type { ConnectionsApi, PreparedPayload } from "../runtime/connections-api";
import { intakeDeadlineOf } from "./deadline";
import { type FanOutOptions, type FanOutSummary, fanOut } from "./fan-out";
import { fanOutPolicy } from "./fan-out-policy";
import { errorText } from "./fan-out-summary";
import { taggedAttempt, taggedPages, untaggingRemover } from "./protocol-audience";
import { shardDispatcher } from "./shard-dispatcher";
import { type InvokeWorker, shardData } from "./shard-format";
import { type SplitStats, splitListing } from "./splitter";

export {
  DEADLINE_MARGIN_MS,
  deadlineOf,
  FANOUT_WORKER_TIMEOUT_SECONDS,
  HANDOFF_DRAIN_MS,
  INTEGRATION_TIMEOUT_MS,
  type InvocationContext,
} from "./deadline";
export { fanOutPolicy } from "./fan-out-policy";
export { taggedAttempt, untaggingRemover } from "./protocol-audience";
export { PartialDispatchError, shardDispatcher } from "./shard-dispatcher";
export {
  ASYNC_PAYLOAD_LIMIT_BYTES,
  type FanOutShardEvent,
  type InvokeOptions,
  type InvokeWorker,
  isFanOutShardEvent,
  shardData,
  shardPayload,
} from "./shard-format";
export { ListingDeadlineError, type SplitPlan, type SplitStats, splitListing } from "./splitter";

export interface BroadcastOptions {
  readonly store: ConnectionStore;
  readonly connections: ConnectionsApi;
  readonly settings: FanOutSettings;
  readonly payload: PreparedPayload;
  readonly broadcastId: string;
  readonly sender?: string;
  readonly deadline: number;
  readonly invokeWorker: InvokeWorker;
  /** Only this room's members (`store.list({ room })`); default every connection. */
  readonly room?: string;
  /** Told what each removal of stale ids (410s of the inline lane) removed, e.g. to announce `left` in their rooms. */
  readonly onRemoved?: (removed: RemovedConnection[]) => void;
  /**
   * A room-less broadcast's envelope for typed clients: then `payload` goes to plain clients only, and the audience
   * is listed by protocol (`store.listByProtocol`, protocol-audience.ts). Not with `room`.
   */
  readonly typedPayload?: PreparedPayload;
}

export interface BroadcastSummary extends FanOutSummary {
  /** Ids listed: the audience (inline + dispatched). */
  listed: number;
  /** Ids handed to worker invocations, and how many invocations. */
  dispatched: number;
  shards: number;
  dispatchFailed: boolean;
  dropped: number;
}

/** Whether every listed connection got the message: nothing failed, was too large, dropped or cut short. */
export function isComplete(summary: BroadcastSummary): boolean {
  return (
    summary.failed === 0 &&
    summary.tooLarge === 0 &&
    !summary.truncated &&
    !summary.listingFailed &&
    summary.dropped === 0
  );
}

export async function broadcast(options: BroadcastOptions): Promise<BroadcastSummary> {
  const split = splitAudience(options);
  const summary = await fanOut(inlineLane(options, split));
  const stats = await split.done;
  return summarize(summary, stats);
}

/** The audience's listing, split between the inline lane and worker shards. */
function splitAudience(options: BroadcastOptions): ReturnType<typeof splitListing> {
  const { settings } = options;
  const { typedPayload } = options;
  if (typedPayload !== undefined && options.room !== undefined) throw new Error("a room broadcast has one payload");
  const dispatch = shardDispatcher(
    {
      type: "fanout-shard",
      version: typedPayload !== undefined ? 2 : 1,
      broadcastId: options.broadcastId,
      sender: options.sender,
      ...shardData(options.payload.body),
      ...(typedPayload !== undefined ? { typedData: typedPayload.body.toString("utf8") } : {}),
    },
    options.invokeWorker,
  );
  const listing =
    typedPayload !== undefined
      ? taggedPages(options.store.listByProtocol({ pageSize: settings.pageSize }))
      : options.store.list({
          pageSize: settings.pageSize,
          ...(options.room !== undefined ? { room: options.room } : {}),
        });
  return splitListing(listing, {
    inlineMax: settings.inlineMax,
    shardSize: settings.shardSize,
    pageSize: settings.pageSize,
    dispatch,
    // The router stops waiting for a hanging listing at the invocation's deadline (its margin is left for
    // dispatching what was listed by then).
    deadline: options.deadline,
  });
}

/** The inline lane's fan-out: the split's pages, posted by this invocation until its intake deadline. */
function inlineLane(options: BroadcastOptions, split: ReturnType<typeof splitListing>): FanOutOptions {
  const policy = fanOutPolicy(options.connections, options.settings);
  const { connections, payload, typedPayload } = options;
  return {
    targets: split.inline,
    // Ids the deadline leaves unstarted mid-page go back to the split, and on to workers.
    giveBack: split.giveBack,
    // The split already reads the listing ahead; a prefetched page would be lost at the intake deadline.
    prefetch: false,
    // Two payloads: the ids are tagged with the one each gets.
    ...(typedPayload !== undefined
      ? {
          attempt: taggedAttempt(connections, { plain: payload, typed: typedPayload }),
          store: untaggingRemover(options.store),
        }
      : {
          attempt: (connectionId: string, timeoutMs: number, waitLimitMs?: number) =>
            connections.attempt(connectionId, payload, timeoutMs, waitLimitMs),
          store: options.store,
        }),
    onRemoved: options.onRemoved,
    deadline: options.deadline,
    // Stop taking ids early enough for the posts in flight to finish: workers take the rest.
    intakeDeadline: intakeDeadlineOf(options.deadline, policy.postTimeoutMs ?? 0),
    ...policy,
  };
}

/** The inline lane's summary, completed with what the split did: listing and dispatch errors, shards, drops. */
function summarize(summary: FanOutSummary, stats: SplitStats): BroadcastSummary {
  if (stats.listingError !== undefined && !summary.listingFailed) {
    summary.listingFailed = true;
    summary.errors.push(errorText(stats.listingError));
  }
  if (stats.dispatchError !== undefined) summary.errors.push(`dispatch: ${errorText(stats.dispatchError)}`);
  // Ids neither posted nor dispatched (the inline lane stopped after dispatching had failed) were never answered.
  summary.failed += stats.dropped;
  summary.expired += stats.dropped;
  return {
    ...summary,
    listed: stats.listed,
    dispatched: stats.dispatched,
    shards: stats.shards,
    dispatchFailed: stats.dispatchFailed,
    dropped: stats.dropped,
  };
}
