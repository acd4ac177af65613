/**
 * The stack configuration's public face: read it (`loadConfig`, `parseConfig`), the error it raises, the shape it
 * produces, and the schema the CLI, the docs and the local gateway share. Other folders import from here; code
 * that must not load the Pulumi SDK (the local gateway, bench) imports the pure ./schema.ts directly.
 */
export type { AuthConfig } from "./access";
export { renderConfigurationDoc, renderPulumiYaml } from "./docs";
export { ConfigError } from "./error";
export { DEFAULT_FANOUT_CONFIG, type FanOutConfig, fanOutEnv } from "./fanout";
export { LEGACY_KEYS } from "./legacy";
export { loadConfig } from "./load";
export { parseConfig } from "./parse";
export {
  CONFIG_SCHEMA,
  DEPLOYED_STORES,
  LOG_RETENTION_DAYS,
  PROJECT_NAME,
  specOf,
  UNPROTECTED_STACK,
} from "./schema";
export type {
  AlarmNotifications,
  ChatConfig,
  ConfigContext,
  CustomDomain,
  DeployedStore,
  ExistingNetwork,
  FunctionLogLevel,
  NatGateways,
  RedisConfig,
  RedisEngine,
} from "./types";
export type { RawConfig } from "./values";
