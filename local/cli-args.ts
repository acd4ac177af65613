/**
 * `npm start`'s command line: the usage text, the flags, and the numbers they carry. Problems are CliErrors
 * (exit code 2 for usage errors), which cli.ts prints as one line.
 */
import { parseArgs } from "node:util";
import { DEFAULT_HOST, DEFAULT_PORT } from "./gateway-options";
import { MAX_HANDLER_WORKERS } from "./handler-pool";
import { DEFAULT_LIMITS, type GatewayLimits } from "./limits";
import { DEFAULT_REDIS_URL, DEFAULT_TABLE_NAME, oneLine } from "./store-setup";

export const DEFAULT_STACK = "dev";

/**
 * One worker thread takes the handlers' CPU off the gateway's thread, which is what a 2-core laptop can use; each
 * more costs a cold start's memory (the SDK, the store client) and helps only with more cores.
 */
export const DEFAULT_HANDLER_WORKERS = 1;

export const USAGE = `Usage: npm start -- [options]

Runs the WebSocket chat backend locally: the same handlers as on Lambda, behind an emulated API Gateway.

Options:
  --port <n>                    Port for WebSocket and @connections (default: $PORT or ${DEFAULT_PORT}; 0 = any free port)
  --host <address>              Interface to listen on (default: ${DEFAULT_HOST})
  --stage <name>                Stage, the URL's path (default: websocket-chat:stage of Pulumi.<stack>.yaml, else the stack name)
  --stack <name>                Pulumi stack whose Pulumi.<stack>.yaml is read (default: ${DEFAULT_STACK})
  --store <memory|redis|dynamodb>
                                Connection store (default: redis if --redis-url or $REDIS_URL is set, else
                                dynamodb if $AWS_ENDPOINT_URL_DYNAMODB is set, else memory)
  --redis-url <url>             Redis for --store redis (default: $REDIS_URL or ${DEFAULT_REDIS_URL})
  --table-name <name>           DynamoDB table for --store dynamodb (default: $TABLE_NAME or ${DEFAULT_TABLE_NAME});
                                the table lives at $AWS_ENDPOINT_URL_DYNAMODB, else in an embedded dynalite
  --idle-timeout <s>            Close idle connections after this many seconds (default: ${DEFAULT_LIMITS.idleTimeoutMs / 1000})
  --max-connection-duration <s> Close every connection after this many seconds (default: ${DEFAULT_LIMITS.maxConnectionMs / 1000})
  --integration-timeout <s>     Handler timeout in seconds (default: ${DEFAULT_LIMITS.integrationTimeoutMs / 1000})
  --max-frame-size <bytes>      Largest inbound frame (default: ${DEFAULT_LIMITS.maxFrameBytes})
  --max-message-size <bytes>    Largest inbound message (default: ${DEFAULT_LIMITS.maxMessageBytes})
  --allow-origin <origin>       Also accept WebSocket handshakes from this browser origin (repeatable), e.g.
                                http://localhost:5173; "null" for file:// pages, "*" for any. The gateway's own
                                page and clients without Origin (wscat, Node) are always accepted
  --workers <n>                 Run the handlers in this many worker threads beside the gateway's, 0 = in the
                                gateway's own thread (default: ${DEFAULT_HANDLER_WORKERS})
  --no-reload                   Do not reload handlers, stores and shared modules when their files change
  --json-logs                   Print for machines: ISO-timestamped event lines and the handlers' JSON lines as
                                they are (default: readable lines, handler logs condensed, colours on a terminal)

Who may connect, how much they may send (default: the stack file's websocket-chat:auth*, rateLimit.* and
maxDataBytes, else these defaults):
  --auth <none|jwt>             none: anyone connects (default); jwt: the $connect authorizer checks a JWT
  --auth-issuer <iss>           Exact iss claim required (auth jwt)
  --auth-audience <aud>         aud claim required (auth jwt)
  --auth-jwks-url <url>         The issuer's JSON Web Key Set; http is allowed locally (auth jwt)
  --auth-token-source <query|header>
                                What must be present before the authorizer runs, else 401 (default: query)
  --auth-query-param <name>     Query parameter with the token (default: token): ws://.../dev?token=JWT
  --auth-header <name>          Header with the token, e.g. Authorization (read when the query has none)
  --auth-algorithms <list>      Comma-separated JWS algorithms (default: RS256..512, PS256..512, ES256..512)
  --rate-limit-messages <n>     Messages per window per connection, 0 = no limit (default: 20)
  --rate-limit-window <s>       Rate-limit window in seconds (default: 10)
  --max-data-bytes <n>          Largest sendmessage data in bytes, below 131072 (default: 32768)
  --rate-limit-user-messages <n>
                                Messages per window per user over all its connections, auth jwt, 0 = off (default: 40)
  --rate-limit-broadcasts <n>   Room-less broadcasts per window per user (per connection without auth), 0 = off
                                (default: 10)
  --max-connections-per-user <n>
                                Live connections per user, one more gets 429 at connect, auth jwt, 0 = off (default: 5)
  --token-sweep <s>             With auth jwt: close idle connections whose token has expired, every this many
                                seconds, 0 = never (default: 60, the deployed schedule's rate)
  -h, --help                    Show this help
`;

/** A problem the user can fix: printed as one line, exit code 1 (2 for usage errors). */
export class CliError extends Error {
  constructor(
    message: string,
    readonly exitCode = 1,
  ) {
    super(message);
  }
}

export function parseFlags(argv: string[]) {
  try {
    return parseArgs({
      args: argv,
      strict: true,
      allowPositionals: false,
      options: {
        port: { type: "string" },
        host: { type: "string" },
        stage: { type: "string" },
        stack: { type: "string" },
        store: { type: "string" },
        "redis-url": { type: "string" },
        "table-name": { type: "string" },
        "idle-timeout": { type: "string" },
        "max-connection-duration": { type: "string" },
        "integration-timeout": { type: "string" },
        "max-frame-size": { type: "string" },
        "max-message-size": { type: "string" },
        "allow-origin": { type: "string", multiple: true },
        workers: { type: "string" },
        "no-reload": { type: "boolean" },
        "json-logs": { type: "boolean" },
        auth: { type: "string" },
        "auth-issuer": { type: "string" },
        "auth-audience": { type: "string" },
        "auth-jwks-url": { type: "string" },
        "auth-token-source": { type: "string" },
        "auth-query-param": { type: "string" },
        "auth-header": { type: "string" },
        "auth-algorithms": { type: "string" },
        "rate-limit-messages": { type: "string" },
        "rate-limit-window": { type: "string" },
        "max-data-bytes": { type: "string" },
        "rate-limit-user-messages": { type: "string" },
        "rate-limit-broadcasts": { type: "string" },
        "max-connections-per-user": { type: "string" },
        "token-sweep": { type: "string" },
        help: { type: "boolean", short: "h" },
      },
    }).values;
  } catch (error) {
    throw new CliError(`${oneLine(error)} (see --help)`, 2);
  }
}

export type Flags = ReturnType<typeof parseFlags>;

export function number(flag: string, raw: string | undefined, { integer = false, min = 0 } = {}): number | undefined {
  if (raw === undefined) return undefined;
  const value = Number(raw);
  if (raw.trim() === "" || !Number.isFinite(value) || (integer && !Number.isInteger(value)) || value < min) {
    throw new CliError(`--${flag} must be ${integer ? "an integer" : "a number"} >= ${min}, got "${raw}"`, 2);
  }
  return value;
}

export function limitsFrom(flags: Flags): Partial<GatewayLimits> {
  const seconds = (flag: string, raw: string | undefined) => {
    const value = number(flag, raw);
    if (value === 0) throw new CliError(`--${flag} must be > 0`, 2);
    return value === undefined ? undefined : value * 1000;
  };
  const bytes = (flag: string, raw: string | undefined) => number(flag, raw, { integer: true, min: 1 });
  return {
    idleTimeoutMs: seconds("idle-timeout", flags["idle-timeout"]),
    maxConnectionMs: seconds("max-connection-duration", flags["max-connection-duration"]),
    integrationTimeoutMs: seconds("integration-timeout", flags["integration-timeout"]),
    maxFrameBytes: bytes("max-frame-size", flags["max-frame-size"]),
    maxMessageBytes: bytes("max-message-size", flags["max-message-size"]),
  };
}

/** The deployed token sweeper's schedule rate (infra's `tokenSweepMinutes` default), the local default. */
export const DEFAULT_TOKEN_SWEEP_SECONDS = 60;

/** `--token-sweep` in ms: the local token sweeper's interval, 0 for none. */
export function tokenSweepFrom(flags: Flags): number {
  return (number("token-sweep", flags["token-sweep"]) ?? DEFAULT_TOKEN_SWEEP_SECONDS) * 1000;
}

/** `--workers`: handler worker threads, 0 for none. */
export function workersFrom(flags: Flags): number {
  const workers = number("workers", flags.workers, { integer: true }) ?? DEFAULT_HANDLER_WORKERS;
  if (workers > MAX_HANDLER_WORKERS)
    throw new CliError(`--workers must be at most ${MAX_HANDLER_WORKERS}, got ${workers}`, 2);
  return workers;
}

/** The port: `--port`, else `$PORT`, else the default. */
export function portFrom(flags: Flags, env: NodeJS.ProcessEnv): number {
  const port = number("port", flags.port ?? (env.PORT?.trim() || undefined), { integer: true }) ?? DEFAULT_PORT;
  if (port > 65535) throw new CliError(`--port must be at most 65535, got ${port}`, 2);
  return port;
}
