/**
 * The client's connection as an explicit state machine. Every change goes through {@link transition}, which
 * refuses the moves the table does not list, so a late socket event (a `close` after the user closed, an `open`
 * of a socket already replaced) cannot put the client in a state it should not be in.
 *
 * ```
 *  idle ──connect──► connecting ──opened──► open
 *                      │  ▲                   │
 *             failed   │  │ retry             │ lost (socket closed, heartbeat missed, planned renewal)
 *                      ▼  │                   ▼
 *                   reconnecting ◄────────────┘
 *  (any) ──close / gave up / refused──► closed   (final)
 * ```
 */

export type ConnectionState = "idle" | "connecting" | "open" | "reconnecting" | "closed";

export type ConnectionEvent = "connect" | "opened" | "failed" | "lost" | "retry" | "close";

const TABLE: Readonly<Record<ConnectionState, Partial<Record<ConnectionEvent, ConnectionState>>>> = {
  idle: { connect: "connecting", close: "closed" },
  connecting: { opened: "open", failed: "reconnecting", close: "closed" },
  open: { lost: "reconnecting", close: "closed" },
  reconnecting: { retry: "connecting", close: "closed" },
  closed: {},
};

/** The state `event` leads to from `state`, or `undefined` when the table has no such move. */
export function transition(state: ConnectionState, event: ConnectionEvent): ConnectionState | undefined {
  return TABLE[state][event];
}
