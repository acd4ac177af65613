/**
 * Hands shards of a broadcast to fan-out workers, halving a shard until each event fits Lambda's async payload
 * limit, and saying exactly which ids no worker got when a part fails (so none is posted twice or lost).
 */
import { exceedsPayloadLimit, type FanOutShardEvent, type InvokeWorker } from "./shard-format";

/**
 * A dispatch that failed after handing part of its ids to workers: only `undispatched` may go back to the inline
 * lane, or the part already dispatched would be posted twice.
 */
export class PartialDispatchError extends Error {
  override readonly name = "PartialDispatchError";
  constructor(
    override readonly cause: unknown,
    readonly undispatched: string[],
  ) {
    super(cause instanceof Error ? cause.message : String(cause));
  }
}

/** The ids of `ids` that no worker got, after a dispatch of `ids` failed with `error`. */
export function undispatchedOf(error: unknown, ids: string[]): string[] {
  return error instanceof PartialDispatchError ? error.undispatched : ids;
}

/** The underlying cause of a failed dispatch (what the log should show). */
export function dispatchCauseOf(error: unknown): unknown {
  return error instanceof PartialDispatchError ? error.cause : error;
}

/**
 * Sends one shard to the worker, halving it until each event fits Lambda's 256 KB async payload. If a part fails,
 * the error names exactly the ids no worker got.
 */
export function shardDispatcher(
  base: Omit<FanOutShardEvent, "shard" | "connectionIds">,
  invokeWorker: InvokeWorker,
): (ids: string[]) => Promise<void> {
  let shard = 0;
  const dispatch = async (ids: string[]): Promise<void> => {
    const event: FanOutShardEvent = { ...base, shard: ++shard, connectionIds: ids };
    if (ids.length > 1 && exceedsPayloadLimit(event)) {
      // This number goes to the first half instead.
      shard--;
      await dispatchHalves(ids);
      return;
    }
    try {
      await invokeWorker(event);
    } catch (error) {
      throw new PartialDispatchError(error, ids);
    }
  };
  const dispatchHalves = async (ids: string[]): Promise<void> => {
    const half = Math.ceil(ids.length / 2);
    const first = ids.slice(0, half);
    const second = ids.slice(half);
    try {
      await dispatch(first);
    } catch (error) {
      throw new PartialDispatchError(error, [...undispatchedOf(error, first), ...second]);
    }
    await dispatch(second);
  };
  return dispatch;
}
