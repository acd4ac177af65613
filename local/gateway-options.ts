/**
 * What a LocalGateway is configured with, and its defaults. Kept apart from the gateway so the pieces that
 * need these types (the handler environment, the CLI) do not pull in the server.
 */
import type { LocalAuthorizerOptions } from "./authorizer";
import type { ConsoleStyle } from "./console-format";
import type { HandlerModules } from "./handler-modules";
import type { GatewayLimits } from "./limits";
import type { RouteHandlers } from "./route-handlers";
import type { TokenSweepOptions } from "./token-sweep-timer";

export const DEFAULT_PORT = 3001;
export const DEFAULT_STAGE = "dev";
export const DEFAULT_HOST = "127.0.0.1";
export const LOCAL_API_ID = "local";

/** What an injected-handler factory learns about the gateway it serves (known only once it listens). */
export interface GatewayAddress {
  readonly port: number;
  readonly stage: string;
  /** `http://127.0.0.1:PORT/{stage}`: CALLBACK_URL for the handlers. */
  readonly callbackUrl: string;
}

/** Handlers, or a factory called once the port is known (so it can build dependencies around `callbackUrl`). */
export type HandlersOption = RouteHandlers | ((address: GatewayAddress) => RouteHandlers | Promise<RouteHandlers>);

export interface LocalGatewayOptions {
  /** Default 3001; 0 picks a free port. */
  readonly port?: number;
  /** Interface to listen on; default 127.0.0.1 (loopback only). */
  readonly host?: string;
  /** Default `dev`. */
  readonly stage?: string;
  /** `requestContext.apiId`; default `local`. */
  readonly apiId?: string;
  /**
   * Handlers to invoke instead of the route table's exported ones: a map, or a factory called once the port is
   * known. The map's keys are the API's routes.
   */
  readonly handlers?: HandlersOption;
  /**
   * Handlers as modules instead of functions (`{ file, exportName }` per route key), which `handlerWorkers` can
   * load in worker threads (a worker loads modules, not functions); loaded in the gateway's thread without
   * workers. Not with `handlers`.
   */
  readonly handlerModules?: HandlerModules;
  /**
   * Run the handlers in this many worker threads (handler-pool.ts) instead of the gateway's own: the route
   * table's (default `handlers`) or `handlerModules`; injected `handlers` functions always run in the gateway's
   * thread. The memory store stays in the gateway's thread, shared by every worker. Default 0 (`npm start`: 1).
   */
  readonly handlerWorkers?: number;
  /**
   * The handlers' environment, as data: the store's part of the contract (STORE, TABLE_NAME, REDIS_URL, ...) and
   * AUTH_*. Used only by what reads the environment itself: the route table's handlers (default `handlers`; with
   * CALLBACK_URL and dummy AWS credentials added) and the deployed authorizer (no `authorizer.handler`).
   * handler-env.ts installs it.
   */
  readonly env?: Readonly<Record<string, string>>;
  /** Default: the route table's `$request.body.action`. */
  readonly routeSelectionExpression?: string;
  /** Overrides of API Gateway's limits (tests use short timeouts). */
  readonly limits?: Partial<GatewayLimits>;
  /** One line per event and per `@connections` call; default `console.log`. */
  readonly log?: (line: string) => void;
  /** `npm start`'s readable line format (local time, colours when asked); default ISO-timestamped lines. */
  readonly readableLog?: ConsoleStyle;
  /** A Lambda REQUEST authorizer on `$connect` (see authorizer.ts); none by default, as with `auth: none`. */
  readonly authorizer?: LocalAuthorizerOptions;
  /** The token sweeper's schedule (token-sweep-timer.ts); none by default. */
  readonly tokenSweep?: TokenSweepOptions;
  /**
   * Browser origins allowed to open a WebSocket besides the gateway's own (origin-policy.ts): exact origins,
   * `null`, or `*` for any. A handshake without `Origin` (non-browser clients) is always allowed.
   */
  readonly allowedOrigins?: readonly string[];
  /**
   * Secret access keys `@connections` signatures are checked with (connections-signature.ts); any access key id
   * is accepted. Default: `AWS_SECRET_ACCESS_KEY` of the process (what the handlers sign with) and `local`.
   * `false` turns the check off (not offered by `npm start`).
   */
  readonly signingSecrets?: readonly string[] | false;
  /**
   * Reload the route table's handlers when a file they are built from changes (hot-reload.ts); only with the
   * default `handlers`. Default false (`npm start` turns it on).
   */
  readonly hotReload?: boolean;
}

/** Stage names API Gateway accepts. */
export function checkStage(stage: string): string {
  if (!/^[A-Za-z0-9_-]{1,128}$/.test(stage)) {
    throw new RangeError(`stage must be 1-128 characters of A-Z a-z 0-9 _ -, got ${JSON.stringify(stage)}`);
  }
  return stage;
}
