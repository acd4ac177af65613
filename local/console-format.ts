/**
 * `npm start`'s readable console: one line per event with the local time, and the handlers' JSON log lines
 * condensed to their level, route, message and the fields that say something (zeros, empty lists and the ids the
 * event line already shows are left out), coloured on a terminal. `--json-logs` skips all of this and prints
 * what the gateway always printed: ISO timestamps and the handlers' JSON lines untouched, for machines.
 *
 * Colours follow the common conventions: on when stdout is a terminal, off when `NO_COLOR` is set to anything
 * non-empty (https://no-color.org), forced on by `FORCE_COLOR` (anything but `0`, as Node's own util does).
 */

export interface ConsoleStyle {
  readonly color: boolean;
}

/** Whether to colour, from the environment and whether stdout is a terminal. */
export function useColor(env: NodeJS.ProcessEnv, isTTY: boolean): boolean {
  if (env.NO_COLOR !== undefined && env.NO_COLOR !== "") return false;
  if (env.FORCE_COLOR !== undefined) return env.FORCE_COLOR !== "0";
  return isTTY;
}

const CODES = { dim: 2, red: 31, green: 32, yellow: 33, cyan: 36 } as const;
type Paint = keyof typeof CODES;

/**
 * `text` with every control and invisible formatting character written as an escape (`\u001b`): what reaches the
 * console may come from anyone (a connection id decoded from a request's path, a client's display name in a
 * handler's log line), and a raw ESC, CSI or OSC sequence would let a web page that POSTs to `@connections`
 * rewrite the developer's terminal: erase or forge lines, set its title, write its clipboard.
 */
export function printable(text: string): string {
  return text.replace(/[\p{Cc}\p{Cf}\u2028\u2029]/gu, (c) => `\\u${c.codePointAt(0)!.toString(16).padStart(4, "0")}`);
}

function paint(style: ConsoleStyle, color: Paint, text: string): string {
  return style.color ? `\u001b[${CODES[color]}m${text}\u001b[0m` : text;
}

/** `12:00:01.234`, local time. */
export function clockTime(at: Date = new Date()): string {
  const pad = (n: number, width = 2) => String(n).padStart(width, "0");
  return `${pad(at.getHours())}:${pad(at.getMinutes())}:${pad(at.getSeconds())}.${pad(at.getMilliseconds(), 3)}`;
}

function statusColor(status: string): Paint {
  const code = Number(status);
  if (code >= 500) return "red";
  if (code >= 400) return "yellow";
  return Number.isNaN(code) ? "dim" : "green";
}

/** `12:00:01.234 MESSAGE    sendmessage  Kx3vZc1ToAMCJWg= 200 12ms [note]`. */
export function eventLine(
  style: ConsoleStyle,
  fields: {
    readonly kind: string;
    readonly route: string;
    readonly connectionId: string;
    readonly status: string;
    readonly durationMs: number;
    readonly note?: string;
  },
  at: Date = new Date(),
): string {
  const parts = [
    paint(style, "dim", clockTime(at)),
    paint(style, "cyan", printable(fields.kind).padEnd(10)),
    printable(fields.route).padEnd(12),
    printable(fields.connectionId).padEnd(16),
    paint(style, statusColor(fields.status), printable(fields.status).padStart(3)),
    `${fields.durationMs}ms`,
  ];
  if (fields.note) parts.push(paint(style, "dim", printable(fields.note)));
  return parts.join(" ");
}

/** Fields the event line already carries, or the JSON line's own frame. */
const SKIPPED = new Set(["level", "time", "message", "route", "connectionId", "requestId"]);

function quiet(value: unknown): boolean {
  return (
    value === undefined ||
    value === null ||
    value === 0 ||
    value === false ||
    value === "" ||
    (Array.isArray(value) && value.length === 0)
  );
}

function fieldText(value: unknown): string {
  return printable(rawFieldText(value));
}

function rawFieldText(value: unknown): string {
  if (typeof value === "string") return /[\s"=]/.test(value) ? JSON.stringify(value) : value;
  if (value && typeof value === "object" && "message" in value && typeof value.message === "string") {
    const name = "name" in value && typeof value.name === "string" ? `${value.name}: ` : "";
    return JSON.stringify(`${name}${value.message}`);
  }
  return JSON.stringify(value);
}

const LEVEL_COLOR: Record<string, Paint> = { debug: "dim", info: "green", warn: "yellow", error: "red" };

/**
 * A handler's JSON log line, condensed: `12:00:01.240   info sendmessage broadcast targets=3 delivered=3 …`.
 * Anything that is not such a line comes back as it was.
 */
export function condenseLogLine(style: ConsoleStyle, line: string): string {
  if (!line.startsWith("{")) return line;
  let entry: Record<string, unknown>;
  try {
    entry = JSON.parse(line) as Record<string, unknown>;
  } catch {
    return line;
  }
  if (typeof entry.level !== "string" || typeof entry.message !== "string") return line;
  const time = typeof entry.time === "string" ? new Date(entry.time) : new Date();
  const fields = Object.entries(entry)
    .filter(([key, value]) => !SKIPPED.has(key) && !quiet(value))
    .map(([key, value]) => `${key}=${fieldText(value)}`);
  const level = entry.level.padStart(5);
  return [
    paint(style, "dim", clockTime(Number.isNaN(time.getTime()) ? new Date() : time)),
    `  ${paint(style, LEVEL_COLOR[entry.level] ?? "dim", level)}`,
    typeof entry.route === "string" ? printable(entry.route) : "-",
    printable(entry.message),
    ...(fields.length > 0 ? [paint(style, "dim", fields.join(" "))] : []),
  ].join(" ");
}

/** Every line of `text` (a chunk written to stdout) condensed, the line breaks kept. */
export function condenseChunk(style: ConsoleStyle, text: string): string {
  return text
    .split("\n")
    .map((line) => condenseLogLine(style, line))
    .join("\n");
}

/**
 * Makes `stream.write` condense the handlers' JSON lines (the handlers write them to stdout themselves, runtime's
 * Logger). Strings are condensed, and so are byte chunks: a handler worker thread's stdout reaches this stream as
 * bytes, one chunk per write of the handler's (handler-pool.ts).
 */
export function condenseWrites(stream: NodeJS.WriteStream, style: ConsoleStyle): void {
  const write = stream.write.bind(stream) as (chunk: unknown, ...rest: unknown[]) => boolean;
  const condense = (chunk: unknown): unknown => {
    if (typeof chunk === "string") return condenseChunk(style, chunk);
    if (chunk instanceof Uint8Array) return condenseChunk(style, Buffer.from(chunk).toString("utf8"));
    return chunk;
  };
  stream.write = ((chunk: unknown, ...rest: unknown[]) => write(condense(chunk), ...rest)) as typeof stream.write;
}
