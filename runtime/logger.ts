/**
 * Structured logs: one JSON object per line, always carrying the route and connection id, so CloudWatch Logs
 * Insights (and `npm start`'s console) can filter by them.
 */

export type LogLevel = "debug" | "info" | "warn" | "error";
const LEVELS: Record<LogLevel, number> = { debug: 10, info: 20, warn: 30, error: 40 };

export type LogFields = Record<string, unknown>;
export type LogSink = (line: string) => void;

function serializeError(err: unknown): unknown {
  if (!(err instanceof Error)) return err;
  const meta = (err as { $metadata?: { httpStatusCode?: number } }).$metadata;
  return {
    name: err.name,
    message: err.message,
    ...(meta?.httpStatusCode ? { httpStatusCode: meta.httpStatusCode } : {}),
  };
}

/** Lambda's application log levels (AWS_LAMBDA_LOG_LEVEL) onto ours; TRACE and FATAL have no level of their own. */
const LAMBDA_LEVELS: Readonly<Record<string, LogLevel>> = {
  TRACE: "debug",
  DEBUG: "debug",
  INFO: "info",
  WARN: "warn",
  ERROR: "error",
  FATAL: "error",
};

/**
 * The level to log at: Lambda's AWS_LAMBDA_LOG_LEVEL first (Lambda sets it from the function's configured
 * application log level, which stack config `logLevel` sets), then LOG_LEVEL (local runs), else `info`.
 */
export function levelFromEnv(env: Readonly<Record<string, string | undefined>> = process.env): LogLevel {
  const lambda = LAMBDA_LEVELS[env.AWS_LAMBDA_LOG_LEVEL?.trim().toUpperCase() ?? ""];
  if (lambda) return lambda;
  const local = env.LOG_LEVEL?.trim().toLowerCase() ?? "";
  return local in LEVELS ? (local as LogLevel) : "info";
}

export class Logger {
  constructor(
    private readonly context: LogFields = {},
    private readonly minLevel: LogLevel = levelFromEnv(),
    private readonly sink: LogSink = (line) => process.stdout.write(`${line}\n`),
  ) {}

  /** A logger whose every line also carries `fields` (e.g. route, connectionId, requestId). */
  child(fields: LogFields): Logger {
    return new Logger({ ...this.context, ...fields }, this.minLevel, this.sink);
  }

  debug(message: string, fields?: LogFields): void {
    this.write("debug", message, fields);
  }
  info(message: string, fields?: LogFields): void {
    this.write("info", message, fields);
  }
  warn(message: string, fields?: LogFields): void {
    this.write("warn", message, fields);
  }
  error(message: string, fields?: LogFields): void {
    this.write("error", message, fields);
  }

  private write(level: LogLevel, message: string, fields: LogFields = {}): void {
    if (LEVELS[level] < LEVELS[this.minLevel]) return;
    const entry: LogFields = { level, time: new Date().toISOString(), message, ...this.context };
    for (const [key, value] of Object.entries(fields)) entry[key] = key === "error" ? serializeError(value) : value;
    this.sink(JSON.stringify(entry));
  }
}
