/**
 * Stack configuration, read and validated once into a typed, frozen {@link ChatConfig}. Every problem is
 * collected and reported together, each naming the full key, the bad value and what is allowed, so one
 * `pulumi up` shows everything to fix. The parts with rules of their own are parsed next door (redis.ts,
 * production.ts, access.ts, fanout.ts), in the order their problems are listed.
 */
import * as pulumi from "@pulumi/pulumi";
import { parseAccess } from "./access";
import { ConfigError } from "./error";
import { parseFanOut } from "./fanout";
import { parseHistory } from "./history";
import { LEGACY_KEYS, legacyKeyProblem } from "./legacy";
import { parseProduction } from "./production";
import { parseRedis } from "./redis";
import { CONFIG_SCHEMA, DEPLOYED_STORES, fullKey } from "./schema";
import type { ChatConfig, ConfigContext, DeployedStore } from "./types";
import { ConfigReader, invalid, type RawConfig } from "./values";

const STAGE_NAME = /^[A-Za-z0-9_-]{1,128}$/;

/** Parses and validates raw values; settings the stack leaves unset take the schema's default. */
export function parseConfig(raw: RawConfig, stackName: string, context: ConfigContext = {}): ChatConfig {
  const read = new ConfigReader(raw);
  checkKeys(raw, read.problems);
  // Values past a problem are placeholders: nothing is returned while any problem stands.
  const store = parseStore(raw, read);
  const stage = parseStage(read, stackName);
  const throttle = { rateLimit: read.integer("throttle.rateLimit"), burstLimit: read.integer("throttle.burstLimit") };
  const logRetentionDays = read.integer("logRetentionDays");
  const memorySize = read.integer("memorySize");
  const connectionTtlSeconds = read.integer("connectionTtlSeconds");
  const maxRoomsPerConnection = read.integer("maxRoomsPerConnection");
  const maxMembersPerRoom = read.integer("maxMembersPerRoom");
  const tokenSweepMinutes = read.integer("tokenSweepMinutes");
  const redis = parseRedis(read, context);
  const production = parseProduction(read, stackName, context);
  const access = parseAccess(read, stackName);
  const fanOut = parseFanOut(read);
  const history = parseHistory(read);

  if (read.problems.length > 0) throw new ConfigError(read.problems);

  return deepFreeze({
    store,
    stage,
    throttle,
    logRetentionDays,
    memorySize,
    connectionTtlSeconds,
    maxRoomsPerConnection,
    maxMembersPerRoom,
    tokenSweepMinutes,
    redis,
    ...production,
    ...access,
    ...fanOut,
    ...history,
  });
}

/** Every key must be one of the schema's; a key of the earlier flat layout is named with its new spelling. */
function checkKeys(raw: RawConfig, problems: string[]): void {
  for (const key of Object.keys(raw)) {
    if (Object.hasOwn(CONFIG_SCHEMA, key)) continue;
    const replacement = LEGACY_KEYS[key];
    if (replacement) problems.push(legacyKeyProblem(key, replacement));
    else problems.push(`Unknown config ${fullKey(key)} (known keys: ${Object.keys(CONFIG_SCHEMA).join(", ")})`);
  }
}

function parseStore(raw: RawConfig, read: ConfigReader): DeployedStore {
  if (raw.store !== "memory") return read.string("store") as DeployedStore;
  read.problems.push(
    invalid(
      "store",
      raw.store,
      DEPLOYED_STORES.join(", "),
      "memory is for local runs only: it lives inside one process, and every Lambda instance is its own process",
    ),
  );
  return "dynamodb";
}

/** The stage name: the stack's own name unless `stage` is set. */
function parseStage(read: ConfigReader, stackName: string): string {
  const stageSet = read.string("stage");
  const stage = stageSet === "" ? stackName : stageSet;
  if (!STAGE_NAME.test(stage)) {
    const shown = stageSet === "" ? `${JSON.stringify(stage)} (the stack name)` : JSON.stringify(stage);
    read.problems.push(`Invalid config ${fullKey("stage")}: ${shown} (allowed: 1-128 characters of A-Z a-z 0-9 _ -)`);
  }
  return stage;
}

function deepFreeze<T>(value: T): T {
  // Outputs carry internal state of their own; freezing one is not ours to do.
  if (value === null || typeof value !== "object" || pulumi.Output.isInstance(value)) return value;
  for (const child of Object.values(value as object)) deepFreeze(child);
  return Object.freeze(value);
}
