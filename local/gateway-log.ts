/**
 * The local gateway's log: one aligned line per event, `@connections` call, close and refusal, so a developer
 * can follow a connection's life in the terminal. The sink is the caller's (`console.log` by default).
 */

import { type ConsoleStyle, eventLine } from "./console-format";

/** Writes one line: `time KIND route connectionId status durationMs [note]`. */
export type GatewayLog = (
  kind: string,
  route: string,
  connectionId: string,
  status: string,
  durationMs: number,
  note?: string,
) => void;

/**
 * A `GatewayLog` that formats each line and hands it to `sink`: with `readable`, `npm start`'s console format
 * (console-format.ts); without, an ISO timestamp first, as `--json-logs` and the library always print.
 */
export function gatewayLog(sink: (line: string) => void, readable?: ConsoleStyle): GatewayLog {
  if (readable) {
    return (kind, route, connectionId, status, durationMs, note) =>
      sink(eventLine(readable, { kind, route, connectionId, status, durationMs, note }));
  }
  return (kind, route, connectionId, status, durationMs, note) => {
    const parts = [
      new Date().toISOString(),
      kind.padEnd(10),
      route.padEnd(12),
      connectionId.padEnd(16),
      status.padStart(3),
      `${durationMs}ms`,
    ];
    if (note) parts.push(note);
    sink(parts.join(" "));
  };
}

/** `Name: message` of an error (or its string form), for a log note. */
export function describeError(error: unknown): string {
  return error instanceof Error ? `${error.name}: ${error.message}` : String(error);
}
