/**
 * The arguments of `ChatApi`: the validated stack configuration's shape ({@link ChatConfig}, where every field
 * is declared and documented once) with the fields that have a default made optional, and {@link withDefaults},
 * which fills those in with the same defaults the config schema gives them.
 */
import type * as pulumi from "@pulumi/pulumi";
import { DEFAULT_MAX_MEMBERS_PER_ROOM, DEFAULT_MAX_ROOMS_PER_CONNECTION } from "../contract/env";
import { DEFAULT_MESSAGE_LIMITS, DEFAULT_TOKEN_SWEEP_MINUTES } from "../contract/message-limits";
import { DEFAULT_HISTORY_SETTINGS } from "../contract/room-history";
import { type ChatConfig, DEFAULT_FANOUT_CONFIG, type RedisConfig } from "./config";

/** Top-level fields a caller may leave out. */
type DefaultedField =
  | "maxRoomsPerConnection"
  | "maxMembersPerRoom"
  | "tokenSweepMinutes"
  | "dataProtection"
  | "protect"
  | "logLevel"
  | "tracing"
  | "apiGatewayAccountRole"
  | "dashboard"
  | "alarms"
  | "auth"
  | "limits"
  | "fanOut"
  | "history";

/** Redis fields a caller may leave out. */
type DefaultedRedisField = "engine" | "replicas" | "natGateways";

/** {@link RedisConfig} with its defaulted fields optional, and the token any input rather than an output. */
export interface ChatApiRedisArgs
  extends Omit<RedisConfig, DefaultedRedisField | "authToken">,
    Partial<Pick<RedisConfig, DefaultedRedisField>> {
  /** AUTH token (any input, kept secret); generated (and kept secret in state) when absent. */
  readonly authToken?: pulumi.Input<string>;
}

/**
 * Arguments of `ChatApi`; `loadConfig()` produces a value of this shape from stack config. Each field's meaning
 * and default is documented on {@link ChatConfig}.
 * @example
 * ```ts
 * new ChatApi("chat", {
 *   store: "dynamodb",
 *   stage: "prod",
 *   throttle: { rateLimit: 500, burstLimit: 1000 },
 *   logRetentionDays: 14,
 *   memorySize: 256,
 *   connectionTtlSeconds: 7260,
 *   redis: { nodeType: "cache.t4g.micro", engineVersion: "7.1" },
 *   alarms: { email: "oncall@example.com" },
 * });
 * ```
 */
export interface ChatApiArgs
  extends Omit<ChatConfig, DefaultedField | "redis">,
    Partial<Pick<ChatConfig, DefaultedField>> {
  /** Redis settings; read only when `store` is `redis`. */
  readonly redis: ChatApiRedisArgs;
}

/** {@link ChatApiArgs} with every default filled in: what the components below `ChatApi` read. */
export interface ChatApiSettings extends Omit<ChatConfig, "redis"> {
  readonly redis: Required<Omit<ChatApiRedisArgs, "authToken" | "network">> &
    Pick<ChatApiRedisArgs, "authToken" | "network">;
}

/** The defaults of the config schema, for callers that build {@link ChatApiArgs} by hand. */
export function withDefaults(args: ChatApiArgs): ChatApiSettings {
  const replicas = args.redis.replicas ?? 0;
  return {
    ...args,
    maxRoomsPerConnection: args.maxRoomsPerConnection ?? DEFAULT_MAX_ROOMS_PER_CONNECTION,
    maxMembersPerRoom: args.maxMembersPerRoom ?? DEFAULT_MAX_MEMBERS_PER_ROOM,
    tokenSweepMinutes: args.tokenSweepMinutes ?? DEFAULT_TOKEN_SWEEP_MINUTES,
    dataProtection: args.dataProtection ?? true,
    protect: args.protect ?? false,
    logLevel: args.logLevel ?? "INFO",
    tracing: args.tracing ?? false,
    apiGatewayAccountRole: args.apiGatewayAccountRole ?? true,
    dashboard: args.dashboard ?? true,
    alarms: args.alarms ?? {},
    auth: args.auth ?? { mode: "none" },
    limits: args.limits ?? DEFAULT_MESSAGE_LIMITS,
    fanOut: args.fanOut ?? DEFAULT_FANOUT_CONFIG,
    history: args.history ?? DEFAULT_HISTORY_SETTINGS,
    redis: {
      ...args.redis,
      engine: args.redis.engine ?? "redis",
      replicas,
      // A zone outage must not cut the functions off once the data survives one.
      natGateways: args.redis.natGateways ?? (replicas > 0 ? "perAz" : "single"),
    },
  };
}
