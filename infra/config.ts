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
  LOG_LEVELS,
  LOG_RETENTION_DAYS,
  MAX_REDIS_REPLICAS,
  MEMORY_SIZE_MB,
  PROJECT_NAME,
  fullKey,
  specOf,
  type ConfigKey,
} from "./config-schema";
import { parseAccess, type AuthConfig } from "./config-access";
import { parseFanOut, type FanOutConfig } from "./config-fanout";
import type { MessageLimits } from "../functions/runtime/message-limits";
import { MAX_ROOMS_PER_CONNECTION_CEILING } from "../functions/runtime/env";

/** A store a deployed stack can run on. */
export type DeployedStore = (typeof DEPLOYED_STORES)[number] & StoreKind;

/** An existing VPC to place Redis and the functions that use it in. */
export interface ExistingNetwork {
  readonly vpcId: string;
  /** Private subnets with a NAT route (the functions must reach the public `@connections` endpoint). */
  readonly subnetIds: readonly string[];
}

/** Lambda application log level of the functions (`logLevel`). */
export type FunctionLogLevel = (typeof LOG_LEVELS)[number];

/** A custom domain in front of the WebSocket URL (`domain.*`). */
export interface CustomDomain {
  /** e.g. `chat.example.com`; clients connect to `wss://{name}`. */
  readonly name: string;
  /** ACM certificate covering `name`, in the stack's region. */
  readonly certificateArn: string;
  /** Route 53 hosted zone for the alias record; absent: the DNS record is the user's to create. */
  readonly zoneId?: string;
}

/** Where alarms send their notifications (`alarms.*`); at most one is set, neither means no actions. */
export interface AlarmNotifications {
  /** An existing standard SNS topic. */
  readonly topicArn?: string;
  /** An address subscribed to a topic the stack creates. */
  readonly email?: string;
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
  /** Rooms one connection may be in at once. */
  readonly maxRoomsPerConnection: number;
  readonly redis: {
    readonly nodeType: string;
    readonly engineVersion: string;
    /** Secret output; absent when the stack sets none (infra then generates one). */
    readonly authToken?: pulumi.Output<string>;
    /** Absent when infra should create the VPC. */
    readonly network?: ExistingNetwork;
    /** Read replicas; above 0 the group fails over automatically across availability zones. */
    readonly replicas: number;
  };
  /** DynamoDB PITR and deletion protection, Secrets Manager recovery window (default: stack is not `dev`). */
  readonly dataProtection: boolean;
  /** Pulumi `protect` on the resources that hold data. */
  readonly protect: boolean;
  readonly logLevel: FunctionLogLevel;
  /** X-Ray active tracing on the functions. */
  readonly tracing: boolean;
  /** Create (and retain) the account's API Gateway CloudWatch Logs role. */
  readonly apiGatewayAccountRole: boolean;
  /** Create the stack's CloudWatch dashboard. */
  readonly dashboard: boolean;
  readonly alarms: AlarmNotifications;
  /** Absent: clients use the execute-api URL. */
  readonly domain?: CustomDomain;
  /** Who may connect: nobody is checked (`none`) or a JWT authorizer guards `$connect` (config-access.ts). */
  readonly auth: AuthConfig;
  /** Per-connection rate limit and largest `data` (`rateLimit.*`, `maxDataBytes`). */
  readonly limits: MessageLimits;
  /** Broadcast fan-out: concurrency, post timeout, memory of the posting functions, split (`fanout.*`). */
  readonly fanOut: FanOutConfig;
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

/** What else about the stack validation may use. */
export interface ConfigContext {
  /** `aws:region`, when the stack sets it: a REGIONAL custom domain needs its certificate there. */
  readonly region?: string;
}

/** Parses and validates raw values; keys the stack leaves unset take the schema's default. */
export function parseConfig(raw: RawConfig, stackName: string, context: ConfigContext = {}): ChatConfig {
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

  const stageRaw = raw.stage;
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
  const maxRoomsPerConnection = integer(
    "maxRoomsPerConnection",
    1,
    MAX_ROOMS_PER_CONNECTION_CEILING,
    `an integer from 1 to ${MAX_ROOMS_PER_CONNECTION_CEILING}`,
  );

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
  const replicas = integer("redis.replicas", 0, MAX_REDIS_REPLICAS, `an integer from 0 to ${MAX_REDIS_REPLICAS}`);
  const production = parseProduction(raw, stackName, context, problems);
  const access = parseAccess(raw, stackName, problems);
  const fanOut = parseFanOut(raw, problems);

  if (problems.length > 0) throw new ConfigError(problems);

  return deepFreeze({
    store,
    stage,
    throttle,
    logRetentionDays,
    memorySize,
    connectionTtlSeconds,
    maxRoomsPerConnection,
    redis: { nodeType, engineVersion, authToken, network, replicas },
    ...production,
    ...access,
    ...fanOut,
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
  if (!VPC_ID.test(vpcId))
    problems.push(invalid("redis.vpcId", JSON.stringify(vpcId), "a VPC id such as vpc-0abc1234"));
  const badSubnets = subnetIds.filter((s) => !SUBNET_ID.test(s));
  if (badSubnets.length > 0) {
    problems.push(invalid("redis.subnetIds", JSON.stringify(badSubnets), "subnet ids such as subnet-0abc1234"));
  }
  return { vpcId, subnetIds };
}

const SNS_TOPIC_ARN = /^arn:aws[a-z-]*:sns:[a-z0-9-]+:\d{12}:[A-Za-z0-9_-]{1,256}$/;
const EMAIL = /^[^\s@"]+@[^\s@"]+\.[^\s@"]+$/;
/** A DNS name API Gateway accepts for a custom domain: labels of letters, digits and inner hyphens, no wildcard. */
const DOMAIN_NAME = /^(?=.{1,253}$)(?:[a-z0-9](?:[a-z0-9-]{0,61}[a-z0-9])?\.)+[a-z]{2,63}$/;
const ACM_CERTIFICATE_ARN = /^arn:aws[a-z-]*:acm:([a-z0-9-]+):\d{12}:certificate\/[A-Za-z0-9-]+$/;
const HOSTED_ZONE_ID = /^Z[A-Z0-9]{1,32}$/;
/** What the Pulumi CLI's `boolean` type accepts (Go's strconv.ParseBool), so the program agrees with it. */
const TRUE_VALUES = ["true", "True", "TRUE", "t", "T", "1"];
const FALSE_VALUES = ["false", "False", "FALSE", "f", "F", "0"];

type ProductionSettings = Pick<
  ChatConfig,
  "dataProtection" | "protect" | "logLevel" | "tracing" | "apiGatewayAccountRole" | "dashboard" | "alarms" | "domain"
>;

/** The production-readiness keys: data protection, observability and the custom domain. */
function parseProduction(
  raw: RawConfig,
  stackName: string,
  context: ConfigContext,
  problems: string[],
): ProductionSettings {
  const set = (key: ConfigKey): string | undefined => {
    const value = raw[key]?.trim();
    return value ? value : undefined;
  };
  const bool = (key: ConfigKey, fallback: boolean): boolean => {
    const value = set(key);
    if (value === undefined) return fallback;
    if (TRUE_VALUES.includes(value)) return true;
    if (FALSE_VALUES.includes(value)) return false;
    problems.push(invalid(key, JSON.stringify(raw[key]), "true, false"));
    return fallback;
  };
  const flag = (key: ConfigKey): boolean => bool(key, specOf(key).default === true);

  // A stack-dependent default cannot live in Pulumi.yaml (the CLI would write it into every stack), so the
  // schema's default is "" and it is resolved here: production data is protected unless the stack is `dev`.
  const dataProtection = bool("dataProtection", stackName !== "dev");

  const levelRaw = set("logLevel") ?? String(specOf("logLevel").default);
  const logLevel = levelRaw.toUpperCase() as FunctionLogLevel;
  if (!LOG_LEVELS.includes(logLevel))
    problems.push(invalid("logLevel", JSON.stringify(raw.logLevel), LOG_LEVELS.join(", ")));

  const topicArn = set("alarms.topicArn");
  const email = set("alarms.email");
  if (topicArn && !SNS_TOPIC_ARN.test(topicArn)) {
    problems.push(
      invalid(
        "alarms.topicArn",
        JSON.stringify(topicArn),
        "a standard SNS topic ARN such as arn:aws:sns:us-east-1:123456789012:alerts",
      ),
    );
  }
  if (email && !EMAIL.test(email)) problems.push(invalid("alarms.email", JSON.stringify(email), "an email address"));
  if (topicArn && email) {
    problems.push(
      `Invalid config ${fullKey("alarms.topicArn")} and ${fullKey("alarms.email")}: set one or neither ` +
        `(an existing topic, or an email address for a topic the stack creates)`,
    );
  }

  return {
    dataProtection,
    protect: flag("protect"),
    logLevel,
    tracing: flag("tracing"),
    apiGatewayAccountRole: flag("apiGatewayAccountRole"),
    dashboard: flag("dashboard"),
    alarms: { ...(topicArn ? { topicArn } : {}), ...(email ? { email } : {}) },
    domain: parseDomain(set("domain.name"), set("domain.certificateArn"), set("domain.zoneId"), context, problems),
  };
}

function parseDomain(
  name: string | undefined,
  certificateArn: string | undefined,
  zoneId: string | undefined,
  context: ConfigContext,
  problems: string[],
): CustomDomain | undefined {
  if (name === undefined && certificateArn === undefined) {
    if (zoneId !== undefined) {
      problems.push(
        invalid(
          "domain.zoneId",
          JSON.stringify(zoneId),
          "a hosted zone id together with domain.name",
          "domain.name is empty",
        ),
      );
    }
    return undefined;
  }
  if (name === undefined || certificateArn === undefined) {
    problems.push(
      `Invalid config ${fullKey("domain.name")} and ${fullKey("domain.certificateArn")}: set both or neither ` +
        `(domain.name is ${name === undefined ? "empty" : JSON.stringify(name)}, ` +
        `domain.certificateArn is ${certificateArn === undefined ? "empty" : JSON.stringify(certificateArn)})`,
    );
    return undefined;
  }
  if (!DOMAIN_NAME.test(name)) {
    problems.push(
      invalid("domain.name", JSON.stringify(name), "a lower-case DNS name such as chat.example.com, no wildcard"),
    );
  }
  const arn = ACM_CERTIFICATE_ARN.exec(certificateArn);
  if (!arn) {
    problems.push(
      invalid(
        "domain.certificateArn",
        JSON.stringify(certificateArn),
        "an ACM certificate ARN such as arn:aws:acm:us-east-1:123456789012:certificate/0a1b2c3d-…",
      ),
    );
  } else if (context.region && arn[1] !== context.region) {
    problems.push(
      invalid(
        "domain.certificateArn",
        JSON.stringify(certificateArn),
        `a certificate in ${context.region}, the stack's region`,
        "WebSocket APIs only have REGIONAL custom domains, which need the certificate in the API's region",
      ),
    );
  }
  if (zoneId !== undefined && !HOSTED_ZONE_ID.test(zoneId)) {
    problems.push(
      invalid("domain.zoneId", JSON.stringify(zoneId), "a Route 53 hosted zone id such as Z0123456789ABCDEFGHIJ"),
    );
  }
  return { name, certificateArn, ...(zoneId ? { zoneId } : {}) };
}

/** Reads this project's keys from the Pulumi runtime and parses them. */
export function loadConfig(): ChatConfig {
  const prefix = `${PROJECT_NAME}:`;
  const raw: Record<string, string> = {};
  for (const [key, value] of Object.entries(pulumi.runtime.allConfig())) {
    if (key.startsWith(prefix)) raw[key.slice(prefix.length)] = value;
  }
  return parseConfig(raw, pulumi.getStack(), { region: pulumi.runtime.allConfig()["aws:region"] || undefined });
}

function deepFreeze<T>(value: T): T {
  // Outputs carry internal state of their own; freezing one is not ours to do.
  if (value === null || typeof value !== "object" || pulumi.Output.isInstance(value)) return value;
  for (const child of Object.values(value as object)) deepFreeze(child);
  return Object.freeze(value);
}
