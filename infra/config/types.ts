/**
 * The shape of a validated stack configuration, {@link ChatConfig}, declared once: `parseConfig` produces it
 * with every default filled in, and `ChatApiArgs` (infra/chat-api-args.ts) is the same shape with the defaulted
 * fields optional, so a field and its documentation live here only.
 */
import type * as pulumi from "@pulumi/pulumi";
import type { StoreKind } from "../../contract/connection-store";
import type { MessageLimits } from "../../contract/message-limits";
import type { HistorySettings } from "../../contract/room-history";
import type { AuthConfig } from "./access";
import type { FanOutConfig } from "./fanout";
import type { DEPLOYED_STORES, LOG_LEVELS, REDIS_ENGINES } from "./schema";

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

/** NAT gateways of a VPC the stack creates: one, or one per availability zone. */
export type NatGateways = "single" | "perAz";

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

/** Redis settings (`redis.*`, `redisAuthToken`); read only when `store` is `redis`. */
export interface RedisConfig {
  /**
   * ElastiCache engine.
   * @default "redis"
   */
  readonly engine: RedisEngine;
  /**
   * ElastiCache node type.
   * @example "cache.t4g.micro"
   */
  readonly nodeType: string;
  /**
   * Engine version: Redis 6.2 or later (`ZRANGE … BYLEX`), or any Valkey.
   * @example "7.1"
   */
  readonly engineVersion: string;
  /** AUTH token, kept secret; generated (and kept secret in state) when absent. */
  readonly authToken?: pulumi.Output<string>;
  /**
   * An existing VPC and private subnets to use. Its subnets need a NAT route, since the functions post to
   * the public `@connections` endpoint. A new VPC with a NAT gateway is created when absent.
   */
  readonly network?: ExistingNetwork;
  /**
   * Read replicas (0-5); above 0 adds automatic failover and Multi-AZ.
   * @default 0
   */
  readonly replicas: number;
  /**
   * NAT gateways of the VPC created when `network` is absent: one, or one per availability zone.
   * @default "perAz" with replicas (a zone outage must not cut the functions off), else "single"
   */
  readonly natGateways: NatGateways;
}

/**
 * The validated stack configuration. See `Pulumi.yaml` or `CONFIG_SCHEMA` for each key's stack-file spelling.
 * @example
 * ```ts
 * const config = loadConfig();
 * new ChatApi(PROJECT_NAME, config);
 * ```
 */
export interface ChatConfig {
  /** Where connections are kept: a DynamoDB table, or ElastiCache Redis in a VPC. */
  readonly store: DeployedStore;
  /**
   * API Gateway stage name; the last path segment of the client and `@connections` URLs.
   * @default the stack name
   */
  readonly stage: string;
  /**
   * Stage-wide throttling, applied to every route. Both must be greater than zero: API Gateway treats a missing
   * value as 0 and then rejects every message.
   */
  readonly throttle: {
    /** Steady-state requests per second. */
    readonly rateLimit: number;
    /** Requests allowed in a burst. */
    readonly burstLimit: number;
  };
  /** Retention of the access log and each function's log group, in days (a value CloudWatch accepts). */
  readonly logRetentionDays: number;
  /** Memory of each function, in MB. */
  readonly memorySize: number;
  /** How long a connection record lives when `$disconnect` never arrives, in seconds. */
  readonly connectionTtlSeconds: number;
  /**
   * Rooms one connection may be in at once.
   * @default DEFAULT_MAX_ROOMS_PER_CONNECTION (contract/env.ts)
   */
  readonly maxRoomsPerConnection: number;
  /**
   * Members one room may have at once; 0 for no bound.
   * @default DEFAULT_MAX_MEMBERS_PER_ROOM (contract/env.ts)
   */
  readonly maxMembersPerRoom: number;
  /**
   * With `auth: jwt`, minutes between token sweeps (infra/token-sweeper.ts); 0 deploys no sweeper.
   * @default DEFAULT_TOKEN_SWEEP_MINUTES (contract/message-limits.ts)
   */
  readonly tokenSweepMinutes: number;
  readonly redis: RedisConfig;
  /**
   * DynamoDB point-in-time recovery and deletion protection, and a 30-day recovery window on the Redis AUTH
   * secret.
   * @default true (stack config turns it off for the `dev` stack)
   */
  readonly dataProtection: boolean;
  /**
   * Pulumi `protect` on the table, the Redis replication group and the Redis AUTH secret.
   * @default false
   */
  readonly protect: boolean;
  /**
   * Lambda application log level of every function; the runtime logger follows it.
   * @default "INFO"
   */
  readonly logLevel: FunctionLogLevel;
  /**
   * X-Ray active tracing on every function.
   * @default false
   */
  readonly tracing: boolean;
  /**
   * Manage the account's API Gateway CloudWatch Logs role and setting: read the setting, and when none is set
   * create the role and set it (both retained on delete). `false` never touches the account settings.
   * @default true
   */
  readonly apiGatewayAccountRole: boolean;
  /**
   * Create a CloudWatch dashboard.
   * @default true
   */
  readonly dashboard: boolean;
  /**
   * Where alarms notify.
   * @default {} (the alarms notify nobody)
   */
  readonly alarms: AlarmNotifications;
  /** Serve the client URL from this domain instead of the execute-api host; absent: the execute-api URL. */
  readonly domain?: CustomDomain;
  /**
   * Who may connect: `jwt` puts a Lambda REQUEST authorizer on `$connect` (infra/authorizer.ts).
   * @default { mode: "none" }
   */
  readonly auth: AuthConfig;
  /**
   * Per-connection rate limit and largest `data` of the message routes (`rateLimit.*`, `maxDataBytes`).
   * @default DEFAULT_MESSAGE_LIMITS (contract/message-limits.ts)
   */
  readonly limits: MessageLimits;
  /**
   * Broadcast fan-out: concurrency, post timeout, memory of the posting functions, split (`fanout.*`).
   * @default DEFAULT_FANOUT_CONFIG (infra/config/fanout.ts)
   */
  readonly fanOut: FanOutConfig;
  /**
   * Per-room history bounds and the send-reference window.
   * @default DEFAULT_HISTORY_SETTINGS (contract/room-history.ts)
   */
  readonly history: HistorySettings;
}

/** What else about the stack validation may use. */
export interface ConfigContext {
  /** `aws:region`, when the stack sets it: a REGIONAL custom domain needs its certificate there. */
  readonly region?: string;
  /**
   * Whether the CLI handed a key over as a secret (set with `--secret`). Absent: not checked (unit tests of
   * the parser); the program passes the runtime's answer.
   */
  readonly isSecret?: (key: string) => boolean;
}
