/**
 * Stack configuration, read and validated once into a typed, frozen {@link ChatConfig}. Every problem is
 * collected and reported together, each naming the full key, the bad value and what is allowed, so one
 * `pulumi up` shows everything to fix.
 */
import * as pulumi from "@pulumi/pulumi";
import type { StoreKind } from "../contract/connection-store";
import type { MessageLimits } from "../contract/message-limits";
import { parseAccess, type AuthConfig } from "./config-access";
import { parseFanOut, type FanOutConfig } from "./config-fanout";
import { LEGACY_KEYS, legacyKeyProblem } from "./config-legacy";
import {
  CONFIG_SCHEMA,
  DEPLOYED_STORES,
  type LOG_LEVELS,
  PROJECT_NAME,
  type REDIS_ENGINES,
  UNPROTECTED_STACK,
  fullKey,
} from "./config-schema";
import { ConfigReader, type RawConfig, invalid } from "./config-values";

export type { RawConfig } from "./config-values";

/** A store a deployed stack can run on. */
export type DeployedStore = (typeof DEPLOYED_STORES)[number] & StoreKind;

/** An existing VPC to place Redis and the functions that use it in. */
export interface ExistingNetwork {
  readonly vpcId: string;
  /** Private subnets with a NAT route (the functions must reach the public `@connections` endpoint). */
  readonly subnetIds: readonly string[];
}

/** The ElastiCache engine of the Redis store. */
export type RedisEngine = (typeof REDIS_ENGINES)[number];

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
    readonly engine: RedisEngine;
    readonly nodeType: string;
    readonly engineVersion: string;
    /** Secret output; absent when the stack sets none (infra then generates one). */
    readonly authToken?: pulumi.Output<string>;
    /** Absent when infra should create the VPC. */
    readonly network?: ExistingNetwork;
    /** Read replicas; above 0 the group fails over automatically across availability zones. */
    readonly replicas: number;
    /** NAT gateways of a VPC the stack creates: one, or one per availability zone. */
    readonly natGateways: "single" | "perAz";
  };
  /** DynamoDB PITR and deletion protection, Secrets Manager recovery window (default: stack is not `dev`). */
  readonly dataProtection: boolean;
  /** Pulumi `protect` on the resources that hold data. */
  readonly protect: boolean;
  readonly logLevel: FunctionLogLevel;
  /** X-Ray active tracing on the functions. */
  readonly tracing: boolean;
  /** Create (and retain) the account's API Gateway CloudWatch Logs role when the account has none. */
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

const STAGE_NAME = /^[A-Za-z0-9_-]{1,128}$/;
const NODE_TYPE = /^cache\.[a-z0-9]+\.[a-z0-9]+$/;
const ENGINE_VERSION = /^(\d+)\.(\d+|x)$|^(\d+)$/;
const VPC_ID = /^vpc-[0-9a-f]{8,17}$/;
const SUBNET_ID = /^subnet-[0-9a-f]{8,17}$/;
/**
 * ElastiCache's AUTH token rule, checked at preview because AWS checks it only when the replication group is
 * created (after the VPC and NAT exist): "16-128 printable characters ... the only permitted printable special
 * characters are !, &, #, $, ^, <, >, and -" (ElastiCache API reference, CreateReplicationGroup, AuthToken).
 */
const AUTH_TOKEN = /^[A-Za-z0-9!&#$^<>-]{16,128}$/;
/**
 * The oldest engine version of each engine the store runs on: it lists members with `ZRANGE … BYLEX`, which
 * Redis added in 6.2; ElastiCache offers Valkey from 7.2.
 */
const MIN_ENGINE_VERSION: Readonly<Record<RedisEngine, readonly [number, number]>> = {
  redis: [6, 2],
  valkey: [7, 2],
};

/** What else about the stack validation may use. */
export interface ConfigContext {
  /** `aws:region`, when the stack sets it: a REGIONAL custom domain needs its certificate there. */
  readonly region?: string;
}

/** Parses and validates raw values; settings the stack leaves unset take the schema's default. */
export function parseConfig(raw: RawConfig, stackName: string, context: ConfigContext = {}): ChatConfig {
  const read = new ConfigReader(raw);
  const problems = read.problems;

  for (const key of Object.keys(raw)) {
    if (Object.hasOwn(CONFIG_SCHEMA, key)) continue;
    const replacement = LEGACY_KEYS[key];
    if (replacement) problems.push(legacyKeyProblem(key, replacement));
    else problems.push(`Unknown config ${fullKey(key)} (known keys: ${Object.keys(CONFIG_SCHEMA).join(", ")})`);
  }

  // Values past a problem are placeholders: nothing is returned while any problem stands.
  let store: DeployedStore = "dynamodb";
  if (raw.store === "memory") {
    problems.push(
      invalid(
        "store",
        raw.store,
        DEPLOYED_STORES.join(", "),
        "memory is for local runs only: it lives inside one process, and every Lambda instance is its own process",
      ),
    );
  } else {
    store = read.string("store") as DeployedStore;
  }

  const stageSet = read.string("stage");
  const stage = stageSet === "" ? stackName : stageSet;
  if (!STAGE_NAME.test(stage)) {
    const shown = stageSet === "" ? `${JSON.stringify(stage)} (the stack name)` : JSON.stringify(stage);
    problems.push(`Invalid config ${fullKey("stage")}: ${shown} (allowed: 1-128 characters of A-Z a-z 0-9 _ -)`);
  }

  const throttle = { rateLimit: read.integer("throttle.rateLimit"), burstLimit: read.integer("throttle.burstLimit") };
  const logRetentionDays = read.integer("logRetentionDays");
  const memorySize = read.integer("memorySize");
  const connectionTtlSeconds = read.integer("connectionTtlSeconds");
  const maxRoomsPerConnection = read.integer("maxRoomsPerConnection");

  const redis = parseRedis(read);
  const production = parseProduction(read, stackName, context);
  const access = parseAccess(read, stackName);
  const fanOut = parseFanOut(read);

  if (problems.length > 0) throw new ConfigError(problems);

  return deepFreeze({
    store,
    stage,
    throttle,
    logRetentionDays,
    memorySize,
    connectionTtlSeconds,
    maxRoomsPerConnection,
    redis,
    ...production,
    ...access,
    ...fanOut,
  });
}

function parseRedis(read: ConfigReader): ChatConfig["redis"] {
  const problems = read.problems;
  const engine = read.string("redis.engine") as RedisEngine;
  const nodeType = read.string("redis.nodeType");
  if (!NODE_TYPE.test(nodeType))
    problems.push(invalid("redis.nodeType", nodeType, "an ElastiCache node type such as cache.t4g.micro"));

  const engineVersion = read.string("redis.engineVersion");
  const version = ENGINE_VERSION.exec(engineVersion);
  const minimum = MIN_ENGINE_VERSION[engine] ?? MIN_ENGINE_VERSION.redis;
  const major = Number(version?.[1] ?? version?.[3]);
  const minor = version?.[2] === "x" ? Number.POSITIVE_INFINITY : Number(version?.[2] ?? 0);
  if (!version || major < minimum[0] || (major === minimum[0] && minor < minimum[1])) {
    problems.push(
      invalid(
        "redis.engineVersion",
        engineVersion,
        `a ${engine} version ${minimum.join(".")} or later, such as ${engine === "valkey" ? "8.0" : "7.1"}`,
        "the store lists room members with ZRANGE … BYLEX (Redis 6.2+, every Valkey)",
      ),
    );
  }

  let authToken: pulumi.Output<string> | undefined;
  const token = read.string("redisAuthToken");
  if (token !== "") {
    if (!AUTH_TOKEN.test(token)) {
      problems.push(
        invalid(
          "redisAuthToken",
          token,
          "16-128 characters of letters, digits and ! & # $ ^ < > -",
          "ElastiCache refuses any other character, and only when it creates the group",
        ),
      );
    } else {
      authToken = pulumi.secret(token);
    }
  }

  const replicas = read.integer("redis.replicas");
  const natChoice = read.string("redis.natGateways");
  const natGateways = natChoice === "auto" ? (replicas > 0 ? "perAz" : "single") : (natChoice as "single" | "perAz");
  const network = parseNetwork(read);
  if (network && read.value("redis.natGateways") !== undefined) {
    problems.push(
      invalid(
        "redis.natGateways",
        natChoice,
        "unset when redis.vpcId is set",
        "the stack creates NAT gateways only in a VPC it creates",
      ),
    );
  }
  return { engine, nodeType, engineVersion, authToken, network, replicas, natGateways };
}

function parseNetwork(read: ConfigReader): ExistingNetwork | undefined {
  const problems = read.problems;
  const before = problems.length;
  const vpcId = read.string("redis.vpcId");
  const subnetIds = read.list("redis.subnetIds");
  if (problems.length > before || (vpcId === "" && subnetIds.length === 0)) return undefined;
  if (vpcId === "" || subnetIds.length === 0) {
    problems.push(
      `Invalid config ${fullKey("redis.vpcId")} and ${fullKey("redis.subnetIds")}: set both or neither ` +
        `(redis.vpcId is ${vpcId === "" ? "empty" : JSON.stringify(vpcId)}, ` +
        `redis.subnetIds has ${subnetIds.length} entries)`,
    );
    return undefined;
  }
  if (!VPC_ID.test(vpcId)) problems.push(invalid("redis.vpcId", vpcId, "a VPC id such as vpc-0abc1234"));
  const badSubnets = subnetIds.filter((s) => !SUBNET_ID.test(s));
  if (badSubnets.length > 0) {
    problems.push(invalid("redis.subnetIds", badSubnets, "subnet ids such as subnet-0abc1234"));
  }
  return { vpcId, subnetIds };
}

const SNS_TOPIC_ARN = /^arn:aws[a-z-]*:sns:[a-z0-9-]+:\d{12}:[A-Za-z0-9_-]{1,256}$/;
const EMAIL = /^[^\s@"]+@[^\s@"]+\.[^\s@"]+$/;
/** A DNS name API Gateway accepts for a custom domain: labels of letters, digits and inner hyphens, no wildcard. */
const DOMAIN_NAME = /^(?=.{1,253}$)(?:[a-z0-9](?:[a-z0-9-]{0,61}[a-z0-9])?\.)+[a-z]{2,63}$/;
const ACM_CERTIFICATE_ARN = /^arn:aws[a-z-]*:acm:([a-z0-9-]+):\d{12}:certificate\/[A-Za-z0-9-]+$/;
const HOSTED_ZONE_ID = /^Z[A-Z0-9]{1,32}$/;

type ProductionSettings = Pick<
  ChatConfig,
  "dataProtection" | "protect" | "logLevel" | "tracing" | "apiGatewayAccountRole" | "dashboard" | "alarms" | "domain"
>;

/** The production-readiness keys: data protection, observability and the custom domain. */
function parseProduction(read: ConfigReader, stackName: string, context: ConfigContext): ProductionSettings {
  const problems = read.problems;
  const protection = read.string("dataProtection");
  const dataProtection = protection === "auto" ? stackName !== UNPROTECTED_STACK : protection === "true";

  // Any case, as Lambda's own log level setting takes it.
  const logLevel = read.string("logLevel", (level) => level.toUpperCase()) as FunctionLogLevel;

  const topicArn = read.string("alarms.topicArn");
  const email = read.string("alarms.email");
  if (topicArn && !SNS_TOPIC_ARN.test(topicArn)) {
    problems.push(
      invalid(
        "alarms.topicArn",
        topicArn,
        "a standard SNS topic ARN such as arn:aws:sns:us-east-1:123456789012:alerts",
      ),
    );
  }
  if (email && !EMAIL.test(email)) problems.push(invalid("alarms.email", email, "an email address"));
  if (topicArn && email) {
    problems.push(
      `Invalid config ${fullKey("alarms.topicArn")} and ${fullKey("alarms.email")}: set one or neither ` +
        `(an existing topic, or an email address for a topic the stack creates)`,
    );
  }

  return {
    dataProtection,
    protect: read.boolean("protect"),
    logLevel,
    tracing: read.boolean("tracing"),
    apiGatewayAccountRole: read.boolean("apiGatewayAccountRole"),
    dashboard: read.boolean("dashboard"),
    alarms: { ...(topicArn ? { topicArn } : {}), ...(email ? { email } : {}) },
    domain: parseDomain(read, context),
  };
}

function parseDomain(read: ConfigReader, context: ConfigContext): CustomDomain | undefined {
  const problems = read.problems;
  const name = read.string("domain.name") || undefined;
  const certificateArn = read.string("domain.certificateArn") || undefined;
  const zoneId = read.string("domain.zoneId") || undefined;
  if (name === undefined && certificateArn === undefined) {
    if (zoneId !== undefined) {
      problems.push(
        invalid("domain.zoneId", zoneId, "a hosted zone id together with domain.name", "domain.name is empty"),
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
    problems.push(invalid("domain.name", name, "a lower-case DNS name such as chat.example.com, no wildcard"));
  }
  const arn = ACM_CERTIFICATE_ARN.exec(certificateArn);
  if (!arn) {
    problems.push(
      invalid(
        "domain.certificateArn",
        certificateArn,
        "an ACM certificate ARN such as arn:aws:acm:us-east-1:123456789012:certificate/0a1b2c3d-…",
      ),
    );
  } else if (context.region && arn[1] !== context.region) {
    problems.push(
      invalid(
        "domain.certificateArn",
        certificateArn,
        `a certificate in ${context.region}, the stack's region`,
        "WebSocket APIs only have REGIONAL custom domains, which need the certificate in the API's region",
      ),
    );
  }
  if (zoneId !== undefined && !HOSTED_ZONE_ID.test(zoneId)) {
    problems.push(invalid("domain.zoneId", zoneId, "a Route 53 hosted zone id such as Z0123456789ABCDEFGHIJ"));
  }
  return { name, certificateArn, ...(zoneId ? { zoneId } : {}) };
}

/** Reads this project's keys from the Pulumi runtime and parses them. */
export function loadConfig(): ChatConfig {
  const prefix = `${PROJECT_NAME}:`;
  const all = pulumi.runtime.allConfig();
  const raw: Record<string, string> = {};
  for (const [key, value] of Object.entries(all)) {
    if (key.startsWith(prefix)) raw[key.slice(prefix.length)] = value;
  }
  return parseConfig(raw, pulumi.getStack(), { region: all["aws:region"] || undefined });
}

function deepFreeze<T>(value: T): T {
  // Outputs carry internal state of their own; freezing one is not ours to do.
  if (value === null || typeof value !== "object" || pulumi.Output.isInstance(value)) return value;
  for (const child of Object.values(value as object)) deepFreeze(child);
  return Object.freeze(value);
}
