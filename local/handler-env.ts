/**
 * The one place a local run writes `process.env`, and why it must: the deployed handlers and the authorizer
 * are run unchanged, and on Lambda they read their settings (STORE, CALLBACK_URL, AUTH_*, ...) from the
 * environment on their first invocation, once per process (app/container.ts). Running them in process means
 * giving this process that environment before the first event. Everything else in local/ takes the
 * environment as data (`LocalGatewayOptions.env`); the gateway reaches `process.env` only through here.
 */
import { ENV } from "../contract/env";
import { type AuthorizerHandler, loadAuthorizerHandler } from "./authorizer";
import type { GatewayAddress } from "./gateway-options";
import { loadRouteTableHandlers, type RouteHandlers } from "./route-handlers";

export type EnvVars = Readonly<Record<string, string>>;

/**
 * The AWS SDK signs even loopback requests, so it needs a region and credentials: dummy values where the real
 * ones are absent (nothing local reaches AWS). Its notice about future Node versions would only clutter a local
 * run's output.
 */
export function sdkDefaults(current: NodeJS.ProcessEnv = process.env): EnvVars {
  const defaults: Record<string, string> = {
    AWS_REGION: current.AWS_DEFAULT_REGION ?? "us-east-1",
    AWS_ACCESS_KEY_ID: "local",
    AWS_SECRET_ACCESS_KEY: LOCAL_SECRET,
    AWS_SDK_JS_NODE_VERSION_SUPPORT_WARNING_DISABLED: "true",
  };
  for (const key of Object.keys(defaults)) if (current[key] !== undefined) delete defaults[key];
  return defaults;
}

/** The dummy secret every local tool and test signs with when no real credentials are set. */
export const LOCAL_SECRET = "local";

/**
 * The secret `@connections` accepts signatures from: the one the in-process handlers sign with. That is this
 * process's `AWS_SECRET_ACCESS_KEY` when set, and only then is the well-known `local` refused: a developer who sets
 * a secret (say, before binding beyond loopback) gets a gateway that nobody without it can post to. Unset, it is
 * `local`, which every local tool and test signs with.
 */
export function signingSecrets(current: NodeJS.ProcessEnv = process.env): string[] {
  return [current.AWS_SECRET_ACCESS_KEY ?? LOCAL_SECRET];
}

/** What infra sets on every Lambda, pointed at this gateway: `vars`, CALLBACK_URL and the SDK's defaults. */
export function lambdaEnv(vars: EnvVars, callbackUrl: string, current: NodeJS.ProcessEnv = process.env): EnvVars {
  const env: Record<string, string> = { ...vars, [ENV.CALLBACK_URL]: callbackUrl };
  for (const [key, value] of Object.entries(sdkDefaults(current))) env[key] ??= value;
  return env;
}

/** Writes `vars` into `process.env`: the only mutation of the environment in a local run. */
export function installHandlerEnv(vars: EnvVars): void {
  for (const [key, value] of Object.entries(vars)) process.env[key] = value;
}

/** The store the in-process handlers use (`STORE`, as installed). */
export function handlerStoreKind(): string | undefined {
  // Trimmed, as the handlers read it (contract/env.ts).
  return process.env[ENV.STORE]?.trim();
}

/** The region the in-process handlers (and the authorizer's `methodArn`) run in. */
export function handlerRegion(): string {
  return process.env.AWS_REGION ?? "us-east-1";
}

/** The route table's handlers read the environment once per process, so only one gateway may use them. */
let routeTableClaimed = false;

/**
 * The default `handlers` of a gateway: once it listens, installs the Lambda environment (`vars` plus
 * CALLBACK_URL = the gateway) and loads the route table's exported handlers. Throws when a gateway in this
 * process already did (the handlers would keep the first gateway's environment).
 */
export function routeTableHandlers(vars: EnvVars): (address: GatewayAddress) => RouteHandlers {
  return ({ callbackUrl }) => {
    if (routeTableClaimed) {
      throw new Error(
        "a gateway running the route table's handlers already ran in this process (handlers cache their environment per process); inject handlers to run more",
      );
    }
    routeTableClaimed = true;
    installHandlerEnv(lambdaEnv(vars, callbackUrl));
    return loadRouteTableHandlers();
  };
}

/** The deployed authorizer, which reads AUTH_* from the environment: installs `vars` first. */
export function deployedAuthorizer(vars: EnvVars): AuthorizerHandler {
  installHandlerEnv(vars);
  return loadAuthorizerHandler();
}
