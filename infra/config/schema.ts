/**
 * The stack configuration schema: every key this program reads, its type, default, bounds and description,
 * declared once. `Pulumi.yaml`'s `config:` block and docs/configuration.md are generated from it
 * (`npm run docs:config`), and a test fails when either differs.
 *
 * Why structured config: the Pulumi CLI merges `Pulumi.yaml`'s declarations into the stack config with PATH
 * semantics before the program runs (pulumi/pulumi pkg/workspace/config.go, `mergeConfig`). A declared key
 * `throttle.rateLimit` becomes field `rateLimit` of an object `throttle`, and a key `auth` declared next to
 * `auth.issuer` is overwritten by an object and then fails the CLI's type check. So every group of settings is
 * ONE object key (`redis`, `jwt`, `throttle` …), read whole by the program, set with
 * `pulumi config set --path redis.nodeType cache.t4g.small` or written in the stack file as a YAML map; no key
 * name is a path prefix of another.
 */
import { DEFAULT_ALGORITHMS, DEFAULT_TOKEN_QUERY_PARAM } from "../../contract/auth-settings";
import {
  DEFAULT_CONNECTION_TTL_SECONDS,
  DEFAULT_FANOUT,
  DEFAULT_MAX_MEMBERS_PER_ROOM,
  DEFAULT_MAX_ROOMS_PER_CONNECTION,
  MAX_MEMBERS_PER_ROOM_CEILING,
  MAX_ROOMS_PER_CONNECTION_CEILING,
} from "../../contract/env";
import {
  DEFAULT_MESSAGE_LIMITS,
  DEFAULT_TOKEN_SWEEP_MINUTES,
  MAX_CONNECTIONS_PER_USER_CEILING,
  MAX_DATA_BYTES_CEILING,
} from "../../contract/message-limits";
import {
  DEFAULT_HISTORY_SETTINGS,
  MAX_HISTORY_AGE_SECONDS,
  MAX_HISTORY_ENTRIES,
  MAX_SEND_REF_WINDOW_SECONDS,
} from "../../contract/room-history";

/** The project name, which is also the namespace of every key below (`websocket-chat:store`). */
export const PROJECT_NAME = "websocket-chat";

/** Stores a deployed stack can use; `memory` lives in one process and only makes sense for local runs. */
export const DEPLOYED_STORES = ["dynamodb", "redis"] as const;

/** Every retention CloudWatch Logs accepts (PutRetentionPolicy); anything else fails at deploy time. */
export const LOG_RETENTION_DAYS = [
  1, 3, 5, 7, 14, 30, 60, 90, 120, 150, 180, 365, 400, 545, 731, 1096, 1827, 2192, 2557, 2922, 3288, 3653,
] as const;

/** Lambda's memory range in MB. */
export const MEMORY_SIZE_MB = { min: 128, max: 10240 } as const;

/**
 * Levels `logLevel` accepts: Lambda's application log levels that the functions' logger also has (TRACE and
 * FATAL would only alias DEBUG and ERROR).
 */
export const LOG_LEVELS = ["DEBUG", "INFO", "WARN", "ERROR"] as const;

/** ElastiCache allows up to 5 replicas per shard (6 nodes). */
export const MAX_REDIS_REPLICAS = 5;

/** ElastiCache engines the Redis store runs on: both speak the Redis protocol this store uses. */
export const REDIS_ENGINES = ["redis", "valkey"] as const;

/**
 * API Gateway closes every connection after 2 h; a stored record must outlive its connection, with a margin for
 * a `$disconnect` that arrives late or never.
 */
export const MIN_CONNECTION_TTL_SECONDS = 2 * 60 * 60 + 60;

/**
 * `dataProtection: auto` protects data on every stack but `dev`: a per-stack default cannot live in
 * `Pulumi.yaml`, whose default is the same for every stack.
 */
export const UNPROTECTED_STACK = "dev";

/** A scalar setting: a top-level key, or a field of an object key. */
export type FieldSpec =
  | {
      readonly type: "string";
      readonly default: string;
      readonly description: string;
      /** The closed set of values, when there is one (the Pulumi schema has no enum, so it is checked here). */
      readonly allowed?: readonly string[];
      /**
       * Set it with `pulumi config set --secret`. Not declared `secret: true` in `Pulumi.yaml`: the CLI would then
       * refuse every stack that leaves it unset (its default is not encrypted).
       */
      readonly secret?: boolean;
    }
  | {
      readonly type: "integer";
      readonly default: number;
      readonly description: string;
      readonly min: number;
      readonly max: number;
      /** The closed set of values, when there is one. */
      readonly allowed?: readonly number[];
      /** Why the bounds are what they are, said with a rejected value. */
      readonly why?: string;
    }
  | { readonly type: "boolean"; readonly default: boolean; readonly description: string }
  | {
      readonly type: "array";
      readonly items: "string";
      readonly default: readonly string[];
      readonly description: string;
    };

/** An object key: a group of fields set together (`pulumi config set --path redis.nodeType …`). */
export interface GroupSpec {
  readonly type: "object";
  readonly description: string;
  readonly fields: Readonly<Record<string, FieldSpec>>;
}

export type KeySpec = FieldSpec | GroupSpec;

export const CONFIG_SCHEMA = {
  store: {
    type: "string",
    default: "dynamodb",
    allowed: DEPLOYED_STORES,
    description:
      "Connection store: dynamodb (a pay-per-request table) or redis (ElastiCache in a VPC with NAT). " +
      "memory is refused: it is for local runs only.",
  },
  stage: {
    type: "string",
    default: "",
    description:
      "API Gateway stage name, the last path segment of the URLs: 1-128 of A-Z a-z 0-9 _ -. Empty means the stack name.",
  },
  throttle: {
    type: "object",
    description: "Stage-wide throttling of every route (defaultRouteSettings).",
    fields: {
      rateLimit: {
        type: "integer",
        default: 500,
        min: 1,
        max: 1_000_000,
        description:
          "Steady-state messages per second the stage accepts. Must be > 0: API Gateway treats an unset or zero " +
          "limit as 0 and rejects every message with 429.",
      },
      burstLimit: {
        type: "integer",
        default: 1000,
        min: 1,
        max: 1_000_000,
        description: "Burst of messages the stage accepts. Must be > 0.",
      },
    },
  },
  logRetentionDays: {
    type: "integer",
    default: 14,
    min: 1,
    max: 3653,
    allowed: LOG_RETENTION_DAYS,
    description: "Retention of the API access log and every function log, in days (a value CloudWatch Logs accepts).",
  },
  memorySize: {
    type: "integer",
    default: 256,
    ...MEMORY_SIZE_MB,
    description: "Memory of each Lambda function in MB; CPU scales with it.",
  },
  maxRoomsPerConnection: {
    type: "integer",
    default: DEFAULT_MAX_ROOMS_PER_CONNECTION,
    min: 1,
    max: MAX_ROOMS_PER_CONNECTION_CEILING,
    description: "Rooms one connection may be in at once; one more join gets a TooManyRooms error frame.",
  },
  maxMembersPerRoom: {
    type: "integer",
    default: DEFAULT_MAX_MEMBERS_PER_ROOM,
    min: 0,
    max: MAX_MEMBERS_PER_ROOM_CEILING,
    description:
      "Members one room may have at once (0: no bound); a join beyond it gets a RoomFull error frame. Exact on " +
      "Redis; on DynamoDB each join counts the room first (a read proportional to its size), and joins racing at " +
      "the bound may pass it together.",
  },
  history: {
    type: "object",
    description:
      "Per-room message history (what a resuming client is sent, and the history action pages through) and the " +
      "window of acknowledged, idempotent sends.",
    fields: {
      maxEntries: {
        type: "integer",
        default: DEFAULT_HISTORY_SETTINGS.maxEntries,
        min: 1,
        max: MAX_HISTORY_ENTRIES,
        why: "every kept message may be up to 128 KB of the store's memory or storage",
        description:
          "Messages kept per room, the newest; older ones are gone for a client that resumes from before them.",
      },
      maxAgeSeconds: {
        type: "integer",
        default: DEFAULT_HISTORY_SETTINGS.maxAgeSeconds,
        min: 1,
        max: MAX_HISTORY_AGE_SECONDS,
        description: "Seconds a room's message stays in its history (default a day, at most a week).",
      },
      sendRefWindowSeconds: {
        type: "integer",
        default: DEFAULT_HISTORY_SETTINGS.sendRefWindowSeconds,
        min: 1,
        max: MAX_SEND_REF_WINDOW_SECONDS,
        description:
          "Seconds a client's send reference is remembered: the same reference sent again within it (after a " +
          "reconnect, say) is acknowledged again, not delivered twice.",
      },
    },
  },
  tokenSweepMinutes: {
    type: "integer",
    default: DEFAULT_TOKEN_SWEEP_MINUTES,
    min: 0,
    max: 1_440,
    description:
      "With auth jwt: minutes between runs of the token sweeper, which closes idle connections whose token has " +
      "expired (a connection that sends is closed at its next message). 0 deploys no sweeper.",
  },
  connectionTtlSeconds: {
    type: "integer",
    default: DEFAULT_CONNECTION_TTL_SECONDS,
    min: MIN_CONNECTION_TTL_SECONDS,
    max: 7 * 24 * 60 * 60,
    why: "API Gateway keeps a connection open for up to 2 h, and its record must not expire first",
    description:
      "Seconds a stored connection lives when $disconnect never arrives. At least API Gateway's 2 h connection " +
      "limit plus a minute, so a record never expires before its connection.",
  },
  redis: {
    type: "object",
    description:
      "The ElastiCache replication group (store redis only). With neither vpcId nor subnetIds, the stack " +
      "creates a VPC with two private subnets and NAT.",
    fields: {
      engine: {
        type: "string",
        default: "redis",
        allowed: REDIS_ENGINES,
        description: "ElastiCache engine: redis (Redis OSS) or valkey.",
      },
      engineVersion: {
        type: "string",
        default: "",
        description:
          "Engine version as major.minor: Redis 6.2 or later (the store lists members with ZRANGE … BYLEX, new in " +
          "6.2), e.g. 7.1, or 6.x; Valkey 7.2 or later, e.g. 8.0. Empty: 7.1 for redis, 8.0 for valkey.",
      },
      nodeType: { type: "string", default: "cache.t4g.micro", description: "ElastiCache node type." },
      replicas: {
        type: "integer",
        default: 0,
        min: 0,
        max: MAX_REDIS_REPLICAS,
        description:
          "Read replicas of the primary. Above 0 the group runs 1 + replicas nodes with automatic failover and " +
          "Multi-AZ, so its subnets must span two availability zones.",
      },
      natGateways: {
        type: "string",
        default: "auto",
        allowed: ["auto", "single", "perAz"],
        description:
          "NAT gateways of the VPC the stack creates: single (one, in the first zone; that zone's outage cuts " +
          "every function off from @connections), perAz (one per zone with its own route table, about " +
          "USD 33 a month more per extra gateway in us-east-1, plus data processing), or auto (perAz when " +
          "replicas > 0, else single).",
      },
      vpcId: {
        type: "string",
        default: "",
        description: "Existing VPC for Redis and the functions that use it; set together with subnetIds.",
      },
      subnetIds: {
        type: "array",
        items: "string",
        default: [],
        description:
          "Private subnets of vpcId (a YAML list). They need a NAT route: the functions post to the public " +
          "@connections endpoint.",
      },
    },
  },
  redisAuthToken: {
    type: "string",
    default: "",
    secret: true,
    description:
      "Redis AUTH token (store redis only); set it with `pulumi config set --secret redisAuthToken …`. Empty " +
      "generates one. 16-128 characters of letters, digits and ! & # $ ^ < > - (ElastiCache's rule). A key of its " +
      "own, so that only the token is encrypted in the stack file.",
  },
  dataProtection: {
    type: "string",
    default: "auto",
    allowed: ["auto", "true", "false"],
    description:
      "DynamoDB point-in-time recovery and deletion protection, and a 30-day recovery window on the Redis AUTH " +
      `secret: true, false, or auto (true unless the stack is named ${UNPROTECTED_STACK}).`,
  },
  protect: {
    type: "boolean",
    default: false,
    description:
      "Pulumi protect on the resources that hold data (DynamoDB table, Redis replication group, Redis AUTH " +
      "secret): destroying or replacing them fails until this is turned off and applied.",
  },
  logLevel: {
    type: "string",
    default: "INFO",
    allowed: LOG_LEVELS,
    description:
      "Lowest level the functions log. Sets Lambda's JSON log format application log level (and the platform " +
      "level, at most WARN).",
  },
  tracing: {
    type: "boolean",
    default: false,
    description: "X-Ray active tracing on every function (billed per trace recorded).",
  },
  apiGatewayAccountRole: {
    type: "boolean",
    default: true,
    description:
      "Manage the account's API Gateway CloudWatch Logs role, which stage access logs need: when the account " +
      "and region have none, create it and set it in the account settings, both retained when the stack is " +
      "deleted (one per account and region, shared by every API). false: never touch the account settings " +
      "(for accounts that manage them elsewhere).",
  },
  dashboard: {
    type: "boolean",
    default: true,
    description: "A CloudWatch dashboard for the stack: API, functions and store metrics.",
  },
  alarms: {
    type: "object",
    description: "Where the alarms notify; with neither field set the alarms exist but notify nobody.",
    fields: {
      topicArn: { type: "string", default: "", description: "Existing standard SNS topic. Set this or email." },
      email: {
        type: "string",
        default: "",
        description:
          "Email address: creates an SNS topic with an email subscription, confirmed from the email AWS sends. " +
          "Set this or topicArn.",
      },
    },
  },
  domain: {
    type: "object",
    description: "Custom domain for the WebSocket URL; without name the execute-api URL is used.",
    fields: {
      name: {
        type: "string",
        default: "",
        description: "e.g. chat.example.com; set together with certificateArn.",
      },
      certificateArn: {
        type: "string",
        default: "",
        description: "ACM certificate for name, in the stack's region (a REGIONAL endpoint).",
      },
      zoneId: {
        type: "string",
        default: "",
        description: "Route 53 hosted zone to create the alias record in. Empty: create the DNS record yourself.",
      },
    },
  },
  auth: {
    type: "string",
    default: "",
    allowed: ["", "none", "jwt"],
    description:
      "Who may connect: none (anyone) or jwt (a Lambda REQUEST authorizer on $connect verifies a JWT as the " +
      `jwt key says). Empty means none on the ${UNPROTECTED_STACK} stack and is refused on every other stack, ` +
      "which must choose.",
  },
  jwt: {
    type: "object",
    description: "The $connect authorizer's token checks (auth jwt).",
    fields: {
      issuer: {
        type: "string",
        default: "",
        description: "Exact iss claim every token must carry, e.g. https://example.auth0.com/.",
      },
      audience: { type: "string", default: "", description: "aud claim every token must contain, e.g. chat-api." },
      jwksUrl: {
        type: "string",
        default: "",
        description:
          "https URL of the issuer's JSON Web Key Set, e.g. https://example.auth0.com/.well-known/jwks.json; " +
          "fetched by the authorizer and cached per container.",
      },
      tokenSource: {
        type: "string",
        default: "query",
        allowed: ["query", "header"],
        description:
          "The identity source API Gateway requires before it calls the authorizer (a missing one is 401): " +
          "query (browsers cannot set WebSocket headers) uses queryParam; header uses header.",
      },
      queryParam: {
        type: "string",
        default: DEFAULT_TOKEN_QUERY_PARAM,
        description: "Query-string parameter carrying the token: wss://host/stage?token=JWT. Read first.",
      },
      header: {
        type: "string",
        default: "",
        description:
          "Header carrying the token (a Bearer prefix is optional), read when the query has none; required when " +
          "tokenSource is header.",
      },
      algorithms: {
        type: "array",
        items: "string",
        default: [],
        description:
          `JWS algorithms accepted (a YAML list). Empty means ${DEFAULT_ALGORITHMS.join(", ")}; ` +
          "none and HS* are refused.",
      },
    },
  },
  rateLimit: {
    type: "object",
    description:
      "Rate limits of the message routes (per connection, per user, room-less broadcasts) and the per-user connection cap.",
    fields: {
      messages: {
        type: "integer",
        default: DEFAULT_MESSAGE_LIMITS.messages,
        min: 0,
        max: 1_000_000,
        description:
          "Messages one connection may send per windowSeconds; the excess gets a RateLimited error frame, and a " +
          "connection over 3 times the limit in one window is disconnected. 0 turns the limit off.",
      },
      windowSeconds: {
        type: "integer",
        default: DEFAULT_MESSAGE_LIMITS.windowSeconds,
        min: 1,
        max: 86_400,
        description: "Length of the fixed rate-limit window in seconds.",
      },
      userMessages: {
        type: "integer",
        default: DEFAULT_MESSAGE_LIMITS.userMessages,
        min: 0,
        max: 1_000_000,
        description:
          "Messages one user (the authorizer's user id) may send per windowSeconds over all its connections, on " +
          "top of the per-connection limit; the excess gets a RateLimited error frame with limit user. Applies " +
          "with auth jwt only. 0 turns it off.",
      },
      broadcasts: {
        type: "integer",
        default: DEFAULT_MESSAGE_LIMITS.broadcasts,
        min: 0,
        max: 1_000_000,
        description:
          "Room-less broadcasts (a sendmessage without room, one post per connection of the API) per " +
          "windowSeconds, per user (per connection without auth); the excess gets a RateLimited error frame " +
          "with limit broadcast. 0 turns it off.",
      },
      connectionsPerUser: {
        type: "integer",
        default: DEFAULT_MESSAGE_LIMITS.connectionsPerUser,
        min: 0,
        max: MAX_CONNECTIONS_PER_USER_CEILING,
        description:
          "Live connections one user may hold; $connect refuses one more with HTTP 429. Applies with auth jwt " +
          "only. 0 turns the cap off.",
      },
    },
  },
  maxDataBytes: {
    type: "integer",
    default: DEFAULT_MESSAGE_LIMITS.maxDataBytes,
    min: 1,
    max: MAX_DATA_BYTES_CEILING,
    why: "API Gateway refuses messages and posts of 128 KB (131072 bytes) or more",
    description:
      "Largest data a sendmessage may broadcast, in bytes as posted (below API Gateway's 128 KB); larger gets a " +
      "PayloadTooLarge error frame.",
  },
  fanout: {
    type: "object",
    description: "Broadcast fan-out: how the functions that post to @connections spend their time.",
    fields: {
      concurrency: {
        type: "integer",
        default: DEFAULT_FANOUT.concurrency,
        min: 1,
        max: 2_000,
        description:
          "Posts one fan-out invocation (sendmessage or a fan-out worker) keeps in flight at most, and its " +
          "keep-alive sockets to @connections; within it an AIMD window backs off on 429.",
      },
      postTimeoutMs: {
        type: "integer",
        default: DEFAULT_FANOUT.postTimeoutMs,
        // Below API Gateway's 29 s: a post that may take longer can never finish inside `sendmessage`.
        min: 100,
        max: 20_000,
        description: "Per-attempt timeout of one post in ms: a post can hang past the SDK's own timeouts.",
      },
      memorySize: {
        type: "integer",
        default: 1769,
        ...MEMORY_SIZE_MB,
        description:
          "Memory of sendmessage and the fan-out worker in MB. Their CPU scales with it and bounds posts per " +
          "second (about 4,000 per vCPU); 1769 is one vCPU.",
      },
      inlineMax: {
        type: "integer",
        default: DEFAULT_FANOUT.inlineMax,
        min: 0,
        max: 10_000_000,
        description:
          "Connection ids sendmessage posts itself at most; a larger broadcast hands the rest, in shards, to " +
          "asynchronous fan-out worker invocations, as sendmessage must answer within API Gateway's 29 s.",
      },
      shardSize: {
        type: "integer",
        default: DEFAULT_FANOUT.shardSize,
        min: 1,
        max: 20_000,
        description:
          "Connection ids per fan-out worker invocation, split further to fit Lambda's 256 KB asynchronous payload.",
      },
    },
  },
} as const satisfies Readonly<Record<string, KeySpec>>;

export type ConfigSchema = typeof CONFIG_SCHEMA;
/** A top-level key of {@link CONFIG_SCHEMA}. */
export type ConfigKey = keyof ConfigSchema;
/** A key, or `group.field` for a field of an object key: how error messages and `--path` name a setting. */
export type SettingPath = {
  [K in ConfigKey]: ConfigSchema[K] extends GroupSpec ? `${K}.${keyof ConfigSchema[K]["fields"] & string}` : K;
}[ConfigKey];

/** The full config key, as the CLI and error messages spell it: `websocket-chat:store`, `websocket-chat:redis.replicas`. */
export function fullKey(key: string): string {
  return `${PROJECT_NAME}:${key}`;
}

/** The spec of a top-level key or of a `group.field`. */
export function specOf(path: SettingPath): FieldSpec {
  const [key, field] = path.split(".") as [ConfigKey, string | undefined];
  const spec: KeySpec = CONFIG_SCHEMA[key];
  if (spec.type !== "object") return spec;
  const fieldSpec = field === undefined ? undefined : spec.fields[field];
  if (!fieldSpec) throw new Error(`no config schema entry for ${path}`);
  return fieldSpec;
}
