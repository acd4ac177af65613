/**
 * The environment every function of a `ChatApi` shares, so the runtime's env contract (contract/env.ts) holds for
 * all of them, and the `@connections` endpoint it points them at.
 */
import * as pulumi from "@pulumi/pulumi";
import { ENV } from "../contract/env";
import { messageLimitsEnv } from "../contract/message-limits";
import { historySettingsEnv } from "../contract/room-history";
import type { ChatApiSettings } from "./chat-api-args";
import type { StoreResources } from "./chat-store";
import { fanOutEnv } from "./config";

/** Variables by name; values may be outputs of the API or the store. */
export type FunctionEnv = Readonly<Record<string, pulumi.Input<string>>>;

/**
 * The same store location for every function. Only functions that use the store get the Redis token's secret
 * (and the right to read it): that is added per function.
 */
export function sharedFunctionEnv(
  apiEndpoint: pulumi.Input<string>,
  store: StoreResources,
  settings: ChatApiSettings,
): FunctionEnv {
  return {
    [ENV.STORE]: settings.store,
    [ENV.CALLBACK_URL]: pulumi.interpolate`${managementEndpoint(apiEndpoint)}/${settings.stage}`,
    [ENV.CONNECTION_TTL_SECONDS]: String(settings.connectionTtlSeconds),
    [ENV.MAX_ROOMS_PER_CONNECTION]: String(settings.maxRoomsPerConnection),
    [ENV.MAX_MEMBERS_PER_ROOM]: String(settings.maxMembersPerRoom),
    ...messageLimitsEnv(settings.limits),
    ...fanOutEnv(settings.fanOut),
    ...historySettingsEnv(settings.history),
    ...(store.kind === "dynamodb"
      ? { [ENV.TABLE_NAME]: store.table.name }
      : {
          [ENV.REDIS_HOST]: store.cluster.host,
          [ENV.REDIS_PORT]: String(store.cluster.port),
          [ENV.REDIS_TLS]: "true",
        }),
  };
}

/** The https twin of the API's `wss://` endpoint: where `@connections` lives, whatever custom domain fronts it. */
export function managementEndpoint(apiEndpoint: pulumi.Input<string>): pulumi.Output<string> {
  return pulumi.output(apiEndpoint).apply((endpoint) => {
    if (!endpoint.startsWith("wss://")) throw new Error(`expected a wss:// API endpoint, got ${endpoint}`);
    return `https://${endpoint.slice("wss://".length)}`;
  });
}
