/**
 * Stack configuration, read and validated once into a typed, frozen {@link ChatConfig}. Every problem is
 * collected and reported together, each naming the full key, the bad value and what is allowed, so one
 * `pulumi up` shows everything to fix.
 */
import * as pulumi from "@pulumi/pulumi";
import type { StoreKind } from "../stores/connection-store";
import {
  CONFIG_SCHEMA,
  DEPLOYED_STORES,
  LOG_RETENTION_DAYS,
  MEMORY_SIZE_MB,
  PROJECT_NAME,
  fullKey,
  specOf,
  type ConfigKey,
} from "./config-schema";

/** A store a deployed stack can run on. */
export type DeployedStore = (typeof DEPLOYED_STORES)[number] & StoreKind;

/** An existing VPC to place Redis and the functions that use it in. */
export interface ExistingNetwork {
  readonly vpcId: string;
  /** Private subnets with a NAT route (the functions must reach the public `@connections` endpoint). */
  readonly subnetIds: readonly string[];
}

/** The validated stack configuration. See `Pulumi.yaml` or {@link CONFIG_SCHEMA} for each key's meaning. */
export interface ChatConfig {
  readonly store: DeployedStore;
  /** API Gateway stage name (the stack name unless `stage` is set). */
  readonly stage: string;
  readonly throttle: { readonly rateLimit: number; readonly burstLimit: number };
  readonly logRetentionDays: number;
  readonly memorySize: number;
  readonly connectionTtlSeconds: number;
  readonly redis: {
    readonly nodeType: string;
    readonly engineVersion: string;
    /** Secret output; absent when the stack sets none (infra then generates one). */
    readonly authToken?: pulumi.Output<string>;
    /** Absent when infra should create the VPC. */
    readonly network?: ExistingNetwork;
  };
}

/**
 * Thrown for invalid configuration; `problems` holds one message per bad key. A RunError, so Pulumi prints the
 * message alone instead of a stack trace and program source.
 */
export class ConfigError extends pulumi.RunError {
  override readonly name = "ConfigError";
  constructor(readonly problems: readonly string[]) {
    super(problems.join("\n"));
  }
}

/** Raw values as the Pulumi runtime holds them: strings, with arrays as JSON. Keys without the namespace. */
export type RawConfig = Readonly<Record<string, string | undefined>>;

const STAGE_NAME = /^[A-Za-z0-9_-]{1,128}$/;
const NODE_TYPE = /^cache\.[a-z0-9]+\.[a-z0-9]+$/;
const ENGINE_VERSION = /^\d+(\.(\d+|x))?$/;
const VPC_ID = /^vpc-[0-9a-f]{8,17}$/;
const SUBNET_ID = /^subnet-[0-9a-f]{8,17}$/;
/** ElastiCache AUTH: printable ASCII without spaces (0x21-0x7E), minus the characters below. */
const AUTH_TOKEN_CHARS = /^[\x21-\x7e]+$/;
const AUTH_TOKEN_FORBIDDEN = /[@"/]/;
const AUTH_TOKEN_LENGTH = { min: 16, max: 128 } as const;

function invalid(key: ConfigKey, shown: string, allowed: string, why?: string): string {
  return `Invalid config ${fullKey(key)}: ${shown} (allowed: ${allowed})${why ? `; ${why}` : ""}`;
}

/** Parses and validates raw values; keys the stack leaves unset take the schema's default. */
export function parseConfig(raw: RawConfig, stackName: string): ChatConfig {
  const problems: string[] = [];
  const known = new Set<string>(CONFIG_SCHEMA.map((s) => s.key));

  for (const key of Object.keys(raw)) {
    if (known.has(key)) continue;
    // `pulumi config set --path redis.nodeType` nests the value under `redis` instead of setting the flat key.
    const nested = [...known].some((k) => k.startsWith(`${key}.`));
    problems.push(
      `Unknown config ${fullKey(key)} (known keys: ${[...known].join(", ")})` +
        (nested ? `; dotted keys are flat names, set them without --path` : ""),
    );
  }

  const text = (key: ConfigKey): string => {
    const value = raw[key];
    if (value === undefined || value === "") return String(specOf(key).default);
    return value;
  };

  const integer = (key: ConfigKey, min: number, max: number, allowed: string): number => {
    const value = text(key).trim();
    const parsed = /^[+-]?\d+$/.test(value) ? Number(value) : Number.NaN;
    if (!Number.isSafeInteger(parsed) || parsed < min || parsed > max) {
      problems.push(invalid(key, JSON.stringify(text(key)), allowed));
      return Number(specOf(key).default);
    }
    return parsed;
  };

  const positive = (key: ConfigKey): number => integer(key, 1, Number.MAX_SAFE_INTEGER, "an integer > 0");

  const oneOf = <T extends string | number>(key: ConfigKey, values: readonly T[], parse: (v: string) => T): T => {
    const value = text(key);
    const parsed = parse(value);
    if (!values.includes(parsed)) {
      problems.push(invalid(key, JSON.stringify(value), values.join(", ")));
      return specOf(key).default as T;
    }
    return parsed;
  };

  const matching = (key: ConfigKey, pattern: RegExp, allowed: string): string => {
    const value = text(key);
    if (!pattern.test(value)) problems.push(invalid(key, JSON.stringify(value), allowed));
    return value;
  };

  // Values past a problem are placeholders: nothing is returned while any problem stands.
  const store = text("store") as DeployedStore;
  if (!DEPLOYED_STORES.includes(store)) {
    problems.push(
      invalid(
        "store",
        JSON.stringify(store),
        DEPLOYED_STORES.join(", "),
        (store as string) === "memory"
          ? "memory is for local runs only: it lives inside one process, and every Lambda instance is its own process"
          : undefined,
      ),
    );
  }

  const stageRaw = raw["stage"];
  const stage = stageRaw === undefined || stageRaw === "" ? stackName : stageRaw;
  if (!STAGE_NAME.test(stage)) {
    const shown = stageRaw ? JSON.stringify(stage) : `${JSON.stringify(stage)} (the stack name)`;
    problems.push(invalid("stage", shown, "1-128 characters of A-Z a-z 0-9 _ -"));
  }

  const throttle = { rateLimit: positive("throttle.rateLimit"), burstLimit: positive("throttle.burstLimit") };
  const logRetentionDays = oneOf("logRetentionDays", LOG_RETENTION_DAYS as readonly number[], (v) =>
    /^\d+$/.test(v.trim()) ? Number(v) : Number.NaN,
  );
  const memorySize = integer(
    "memorySize",
    MEMORY_SIZE_MB.min,
    MEMORY_SIZE_MB.max,
    `an integer from ${MEMORY_SIZE_MB.min} to ${MEMORY_SIZE_MB.max}`,
  );
  const connectionTtlSeconds = positive("connectionTtlSeconds");

  const nodeType = matching("redis.nodeType", NODE_TYPE, "an ElastiCache node type such as cache.t4g.micro");
  const engineVersion = matching("redis.engineVersion", ENGINE_VERSION, "a version such as 7.1 or 6.x");

  let authToken: pulumi.Output<string> | undefined;
  const token = raw["redis.authToken"];
  if (token) {
    const length = token.length;
    const fits = length >= AUTH_TOKEN_LENGTH.min && length <= AUTH_TOKEN_LENGTH.max;
    if (!fits || !AUTH_TOKEN_CHARS.test(token) || AUTH_TOKEN_FORBIDDEN.test(token)) {
      // The value itself is a secret and stays out of the message.
      problems.push(
        invalid(
          "redis.authToken",
          `[secret, ${length} characters]`,
          `${AUTH_TOKEN_LENGTH.min}-${AUTH_TOKEN_LENGTH.max} printable ASCII characters except spaces, @, " and /`,
        ),
      );
    } else {
      authToken = pulumi.secret(token);
    }
  }

  const network = parseNetwork(raw, problems);

  if (problems.length > 0) throw new ConfigError(problems);

  return deepFreeze({
    store,
    stage,
    throttle,
    logRetentionDays,
    memorySize,
    connectionTtlSeconds,
    redis: { nodeType, engineVersion, authToken, network },
  });
}

function parseNetwork(raw: RawConfig, problems: string[]): ExistingNetwork | undefined {
  const vpcId = raw["redis.vpcId"] ?? "";
  const subnetsRaw = raw["redis.subnetIds"] ?? "";
  let subnetIds: string[] = [];
  if (subnetsRaw !== "") {
    let parsed: unknown;
    try {
      parsed = JSON.parse(subnetsRaw);
    } catch {
      parsed = undefined;
    }
    if (Array.isArray(parsed) && parsed.every((s) => typeof s === "string")) {
      subnetIds = parsed;
    } else {
      problems.push(invalid("redis.subnetIds", JSON.stringify(subnetsRaw), "a list of subnet ids (a YAML list)"));
      return undefined;
    }
  }

  if (vpcId === "" && subnetIds.length === 0) return undefined;
  if (vpcId === "" || subnetIds.length === 0) {
    problems.push(
      `Invalid config ${fullKey("redis.vpcId")} and ${fullKey("redis.subnetIds")}: set both or neither ` +
        `(redis.vpcId is ${vpcId === "" ? "empty" : JSON.stringify(vpcId)}, ` +
        `redis.subnetIds has ${subnetIds.length} entries)`,
    );
    return undefined;
  }
  if (!VPC_ID.test(vpcId)) problems.push(invalid("redis.vpcId", JSON.stringify(vpcId), "a VPC id such as vpc-0abc1234"));
  const badSubnets = subnetIds.filter((s) => !SUBNET_ID.test(s));
  if (badSubnets.length > 0) {
    problems.push(
      invalid("redis.subnetIds", JSON.stringify(badSubnets), "subnet ids such as subnet-0abc1234"),
    );
  }
  return { vpcId, subnetIds };
}

/** Reads this project's keys from the Pulumi runtime and parses them. */
export function loadConfig(): ChatConfig {
  const prefix = `${PROJECT_NAME}:`;
  const raw: Record<string, string> = {};
  for (const [key, value] of Object.entries(pulumi.runtime.allConfig())) {
    if (key.startsWith(prefix)) raw[key.slice(prefix.length)] = value;
  }
  return parseConfig(raw, pulumi.getStack());
}

function deepFreeze<T>(value: T): T {
  // Outputs carry internal state of their own; freezing one is not ours to do.
  if (value === null || typeof value !== "object" || pulumi.Output.isInstance(value)) return value;
  for (const child of Object.values(value as object)) deepFreeze(child);
  return Object.freeze(value);
}
