/**
 * `npm start`: the chat backend on this machine. Runs the route table's handlers, unchanged, behind a local API
 * Gateway (WebSocket API + `@connections` management API on one port), with the store chosen by flags or the
 * environment. See `--help`.
 */
import { basename, resolve } from "node:path";
import { parseArgs } from "node:util";
import { AccessOptionError, readStackAccess, resolveLocalAccess, type LocalAccess } from "./access-options";
import { GatewayListenError, LocalGateway, DEFAULT_HOST, DEFAULT_PORT } from "./gateway";
import { DEFAULT_LIMITS, type GatewayLimits } from "./limits";
import { readStackSettings, type StackSettings } from "./pulumi-stack";
import {
  chooseStore,
  DEFAULT_REDIS_URL,
  DEFAULT_TABLE_NAME,
  oneLine,
  prepareStore,
  type PreparedStore,
} from "./store-setup";

const PROJECT_DIR = resolve(__dirname, "..");
const DEFAULT_STACK = "dev";

const USAGE = `Usage: npm start -- [options]

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
  -h, --help                    Show this help
`;

/** A problem the user can fix: printed as one line, exit code 1 (2 for usage errors). */
class CliError extends Error {
  constructor(
    message: string,
    readonly exitCode = 1,
  ) {
    super(message);
  }
}

function fail(message: string, exitCode: number): never {
  process.stderr.write(`local gateway: ${message}\n`);
  process.exit(exitCode);
}

function parseFlags(argv: string[]) {
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
        help: { type: "boolean", short: "h" },
      },
    }).values;
  } catch (error) {
    throw new CliError(`${oneLine(error)} (see --help)`, 2);
  }
}

type Flags = ReturnType<typeof parseFlags>;

function number(flag: string, raw: string | undefined, { integer = false, min = 0 } = {}): number | undefined {
  if (raw === undefined) return undefined;
  const value = Number(raw);
  if (raw.trim() === "" || !Number.isFinite(value) || (integer && !Number.isInteger(value)) || value < min) {
    throw new CliError(`--${flag} must be ${integer ? "an integer" : "a number"} >= ${min}, got "${raw}"`, 2);
  }
  return value;
}

function limitsFrom(flags: Flags): Partial<GatewayLimits> {
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

async function main(): Promise<void> {
  const flags = parseFlags(process.argv.slice(2));
  if (flags.help) {
    process.stdout.write(USAGE);
    return;
  }
  const port = number("port", flags.port ?? (process.env.PORT?.trim() || undefined), { integer: true }) ?? DEFAULT_PORT;
  if (port > 65535) throw new CliError(`--port must be at most 65535, got ${port}`, 2);
  const limits = limitsFrom(flags);
  const stack = flags.stack ?? DEFAULT_STACK;
  let stackSettings: StackSettings;
  try {
    stackSettings = readStackSettings(PROJECT_DIR, stack);
  } catch (error) {
    throw new CliError(oneLine(error));
  }
  const stage = flags.stage ?? stackSettings.stage ?? stack;
  let access: LocalAccess;
  try {
    access = resolveLocalAccess(flags, readStackAccess(PROJECT_DIR, stack));
  } catch (error) {
    throw new CliError(oneLine(error), error instanceof AccessOptionError ? 2 : 1);
  }

  // The SDK signs even loopback requests; dummy values where the real ones are absent (nothing here reaches AWS).
  process.env.AWS_REGION ??= process.env.AWS_DEFAULT_REGION ?? "us-east-1";
  process.env.AWS_ACCESS_KEY_ID ??= "local";
  process.env.AWS_SECRET_ACCESS_KEY ??= "local";
  // The SDK's notice about future Node versions would only clutter a local run's output.
  process.env.AWS_SDK_JS_NODE_VERSION_SUPPORT_WARNING_DISABLED ??= "true";

  let choice: ReturnType<typeof chooseStore>;
  try {
    choice = chooseStore(flags.store, process.env, flags["redis-url"]);
  } catch (error) {
    throw new CliError(oneLine(error), 2);
  }
  let store: PreparedStore;
  try {
    store = await prepareStore(choice.kind, { redisUrl: flags["redis-url"], tableName: flags["table-name"] });
  } catch (error) {
    throw new CliError(oneLine(error));
  }

  let gateway: LocalGateway;
  try {
    gateway = new LocalGateway({
      port,
      host: flags.host,
      stage,
      limits,
      env: { ...store.env, ...access.env },
      ...(access.auth ? { authorizer: { identitySources: access.auth.identitySources } } : {}),
      log: (line) => console.log(line),
    });
    await gateway.start();
  } catch (error) {
    await store.stop();
    const hint =
      error instanceof GatewayListenError && error.code === "EADDRINUSE" ? "; pick another with --port or PORT" : "";
    throw new CliError(`${oneLine(error)}${hint}`);
  }

  const lines = [
    `websocket-chat local gateway (stage "${stage}")`,
    `  WebSocket:    ${gateway.url}`,
    `  Callback URL: ${gateway.callbackUrl}   (@connections management API, CALLBACK_URL of the handlers)`,
    `  Store:        ${store.kind} (${choice.reason}): ${store.description}`,
    `  Auth:         ${access.description.auth}`,
    `  Limits:       ${access.description.limits}`,
  ];
  if (stackSettings.store && stackSettings.store !== store.kind) {
    lines.push(
      `  Note:         ${basename(stackSettings.file ?? "")} deploys with store ${stackSettings.store}; --store ${stackSettings.store} runs it locally`,
    );
  }
  const tokenSource = access.auth?.tokenSource;
  const connectWith =
    tokenSource?.kind === "query"
      ? `"${gateway.url}?${tokenSource.name}=$JWT"`
      : tokenSource?.kind === "header"
        ? `${gateway.url} -H "${tokenSource.name}: Bearer $JWT"`
        : gateway.url;
  lines.push(`  Try:          npx wscat -c ${connectWith}   then   {"action":"sendmessage","data":"hello"}`);
  lines.push("Ctrl-C to stop.");
  console.log(lines.join("\n"));

  let stopping = false;
  const shutdown = (signal: NodeJS.Signals) => {
    if (stopping) {
      process.stderr.write(`local gateway: ${signal} again, exiting without waiting\n`);
      process.exit(1);
    }
    stopping = true;
    console.log(`${signal}: closing ${gateway.openConnectionIds().length} connection(s)...`);
    gateway
      .stop()
      .then(() => store.stop())
      .then(
        () => {
          console.log("stopped");
          process.exit(0);
        },
        (error: unknown) => fail(`error while stopping: ${oneLine(error)}`, 1),
      );
  };
  process.on("SIGINT", shutdown);
  process.on("SIGTERM", shutdown);
}

main().catch((error: unknown) => {
  if (error instanceof CliError) fail(error.message, error.exitCode);
  fail(oneLine(error), 1);
});
