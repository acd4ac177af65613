/**
 * `npm start`: the chat backend on this machine. Runs the route table's handlers, unchanged, behind a local API
 * Gateway (WebSocket API + `@connections` management API on one port), with the store chosen by flags or the
 * environment. See `--help` (cli-args.ts). This file is the local run's composition root: the steps below, in
 * order, and the one call that gives this process the SDK's environment (handler-env.ts).
 */
import { resolve } from "node:path";
import { AccessOptionError, type LocalAccess, readStackAccess, resolveLocalAccess } from "./access-options";
import {
  CliError,
  DEFAULT_STACK,
  type Flags,
  limitsFrom,
  parseFlags,
  portFrom,
  tokenSweepFrom,
  USAGE,
  workersFrom,
} from "./cli-args";
import { banner } from "./cli-banner";
import { fail, stopOnSignals } from "./cli-signals";
import { type ConsoleStyle, condenseWrites, useColor } from "./console-format";
import { GatewayListenError, LocalGateway } from "./gateway";
import { installHandlerEnv, sdkDefaults } from "./handler-env";
import type { GatewayLimits } from "./limits";
import { normaliseAllowedOrigin } from "./origin-policy";
import { readStackSettings, type StackSettings } from "./pulumi-stack";
import { chooseStore, oneLine, type PreparedStore, prepareStore, type StoreChoice } from "./store-setup";

const PROJECT_DIR = resolve(__dirname, "..");

/** Everything the flags, the environment and the stack file decide, checked before anything starts. */
interface RunSettings {
  readonly flags: Flags;
  readonly port: number;
  readonly limits: Partial<GatewayLimits>;
  readonly stage: string;
  readonly stackSettings: StackSettings;
  readonly access: LocalAccess;
  readonly allowedOrigins: readonly string[];
  readonly workers: number;
}

async function main(): Promise<void> {
  const flags = parseFlags(process.argv.slice(2));
  if (flags.help) {
    process.stdout.write(USAGE);
    return;
  }
  const settings = readSettings(flags);
  const style = flags["json-logs"] ? undefined : { color: useColor(process.env, process.stdout.isTTY === true) };
  if (style) condenseWrites(process.stdout, style);
  // Before the store: creating a DynamoDB table signs its requests too.
  installHandlerEnv(sdkDefaults(process.env));
  const { choice, store } = await startStore(flags);
  const gateway = await startGateway(settings, store, style);
  console.log(
    banner({
      stage: settings.stage,
      url: gateway.url,
      webClientUrl: gateway.webClientUrl,
      callbackUrl: gateway.callbackUrl,
      host: gateway.listenHost,
      allowedOrigins: settings.allowedOrigins,
      hotReload: !settings.flags["no-reload"],
      workers: settings.workers,
      store,
      choice,
      access: settings.access,
      stackSettings: settings.stackSettings,
    }),
  );
  stopOnSignals(gateway, store);
}

function readSettings(flags: Flags): RunSettings {
  const port = portFrom(flags, process.env);
  const limits = limitsFrom(flags);
  const stack = flags.stack ?? DEFAULT_STACK;
  let stackSettings: StackSettings;
  try {
    stackSettings = readStackSettings(PROJECT_DIR, stack);
  } catch (error) {
    throw new CliError(oneLine(error));
  }
  let access: LocalAccess;
  try {
    access = resolveLocalAccess(flags, readStackAccess(PROJECT_DIR, stack));
  } catch (error) {
    throw new CliError(oneLine(error), error instanceof AccessOptionError ? 2 : 1);
  }
  let allowedOrigins: string[];
  try {
    allowedOrigins = (flags["allow-origin"] ?? []).map(normaliseAllowedOrigin);
  } catch (error) {
    throw new CliError(oneLine(error), 2);
  }
  const stage = flags.stage ?? stackSettings.stage ?? stack;
  const workers = workersFrom(flags);
  return { flags, port, limits, stage, stackSettings, access, allowedOrigins, workers };
}

async function startStore(flags: Flags): Promise<{ choice: StoreChoice; store: PreparedStore }> {
  let choice: StoreChoice;
  try {
    choice = chooseStore(flags.store, process.env, flags["redis-url"]);
  } catch (error) {
    throw new CliError(oneLine(error), 2);
  }
  try {
    const store = await prepareStore(choice.kind, { redisUrl: flags["redis-url"], tableName: flags["table-name"] });
    return { choice, store };
  } catch (error) {
    throw new CliError(oneLine(error));
  }
}

/** The gateway, running the route table's handlers with the store's and the access settings' environment. */
async function startGateway(
  settings: RunSettings,
  store: PreparedStore,
  readableLog: ConsoleStyle | undefined,
): Promise<LocalGateway> {
  const { flags, port, stage, limits, access } = settings;
  try {
    const gateway = new LocalGateway({
      port,
      host: flags.host,
      stage,
      limits,
      env: { ...store.env, ...access.env },
      ...(access.auth ? { authorizer: { identitySources: access.auth.identitySources } } : {}),
      // Without auth no connection has a token to expire: no sweeps, as no sweeper is deployed.
      ...(access.auth ? { tokenSweep: { intervalMs: tokenSweepFrom(flags) } } : {}),
      allowedOrigins: settings.allowedOrigins,
      hotReload: !flags["no-reload"],
      handlerWorkers: settings.workers,
      log: (line) => console.log(line),
      ...(readableLog ? { readableLog } : {}),
    });
    return await gateway.start();
  } catch (error) {
    await store.stop();
    const hint =
      error instanceof GatewayListenError && error.code === "EADDRINUSE" ? "; pick another with --port or PORT" : "";
    throw new CliError(`${oneLine(error)}${hint}`);
  }
}

main().catch((error: unknown) => {
  if (error instanceof CliError) fail(error.message, error.exitCode);
  fail(oneLine(error), 1);
});
