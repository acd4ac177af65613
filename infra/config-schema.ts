/**
 * The stack configuration schema: every key this program reads, declared once. `Pulumi.yaml`'s `config:` block
 * mirrors it (the CLI validates types and fills defaults from there) and a test fails when the two disagree, so
 * edit both together.
 */

/** The project name, which is also the namespace of every key below (`websocket-chat:store`). */
export const PROJECT_NAME = "websocket-chat";

/** The types a Pulumi project config schema knows (objects are not one, hence the flat dotted key names). */
export type ConfigValueType = "string" | "integer" | "boolean" | "array";

export interface ConfigKeySpec {
  /** Key without the project namespace, as written in `Pulumi.yaml`. */
  readonly key: string;
  readonly type: ConfigValueType;
  /** Element type of an `array` key. */
  readonly items?: "string";
  /**
   * Value the CLI fills in when the stack sets none. Optional settings default to `""` / `[]` rather than being
   * left out, because Pulumi treats a declared key without a default as required.
   */
  readonly default: string | number | boolean | readonly string[];
  /** Shown by `pulumi config` tooling; also states the allowed values, since the schema has no enum. */
  readonly description: string;
  /** Enumerated values, when the key has a closed set. */
  readonly allowed?: readonly (string | number)[];
  /**
   * Set it with `pulumi config set --secret`. Not declared `secret: true` in `Pulumi.yaml`: the CLI writes a
   * key's default in plain text and then rejects that same value for not being encrypted.
   */
  readonly secret?: boolean;
}

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

export const CONFIG_SCHEMA = [
  {
    key: "store",
    type: "string",
    default: "dynamodb",
    allowed: DEPLOYED_STORES,
    description:
      "Connection store: dynamodb (a pay-per-request table) or redis (ElastiCache in a VPC with NAT). " +
      "memory is refused: it is for local runs only.",
  },
  {
    key: "stage",
    type: "string",
    default: "",
    description:
      "API Gateway stage name, the last path segment of the URLs: 1-128 of A-Z a-z 0-9 _ -. Empty means the stack name.",
  },
  {
    key: "throttle.rateLimit",
    type: "integer",
    default: 500,
    description:
      "Steady-state messages per second the stage accepts (defaultRouteSettings.throttlingRateLimit). Must be > 0: " +
      "API Gateway treats an unset or zero limit as 0 and rejects every message with 429.",
  },
  {
    key: "throttle.burstLimit",
    type: "integer",
    default: 1000,
    description: "Burst of messages the stage accepts (defaultRouteSettings.throttlingBurstLimit). Must be > 0.",
  },
  {
    key: "logRetentionDays",
    type: "integer",
    default: 14,
    allowed: LOG_RETENTION_DAYS,
    description: `Retention of the API access log and every function log, in days; one of ${LOG_RETENTION_DAYS.join(", ")}.`,
  },
  {
    key: "memorySize",
    type: "integer",
    default: 256,
    description: `Memory of each Lambda function in MB (${MEMORY_SIZE_MB.min}-${MEMORY_SIZE_MB.max}); CPU scales with it.`,
  },
  {
    key: "maxRoomsPerConnection",
    type: "integer",
    default: 10,
    description: "Rooms one connection may be in at once (1-100); one more join gets a TooManyRooms error frame.",
  },
  {
    key: "connectionTtlSeconds",
    type: "integer",
    default: 7500,
    description:
      "Seconds a stored connection lives when $disconnect never arrives. The default, 2 h + 5 min, outlives " +
      "API Gateway's 2 h connection limit.",
  },
  {
    key: "redis.nodeType",
    type: "string",
    default: "cache.t4g.micro",
    description: "ElastiCache node type (store redis only).",
  },
  {
    key: "redis.engineVersion",
    type: "string",
    default: "7.1",
    description: "ElastiCache Redis engine version, e.g. 7.1 (store redis only).",
  },
  {
    key: "redis.authToken",
    type: "string",
    default: "",
    secret: true,
    description:
      "Redis AUTH token; set it with `pulumi config set --secret`. Empty generates one. 16-128 printable ASCII " +
      'characters without spaces, @, " or / (store redis only).',
  },
  {
    key: "redis.vpcId",
    type: "string",
    default: "",
    description:
      "Existing VPC for Redis and the functions that use it; set together with redis.subnetIds. Empty creates a " +
      "VPC with two private subnets and a NAT gateway (store redis only).",
  },
  {
    key: "redis.subnetIds",
    type: "array",
    items: "string",
    default: [],
    description:
      "Private subnets of redis.vpcId (a YAML list in the stack file). They need a NAT route: the functions post " +
      "to the public @connections endpoint (store redis only).",
  },
  // Production readiness (issue 5): data protection, secrets, observability, custom domain.
  {
    key: "redis.replicas",
    type: "integer",
    default: 0,
    description:
      `Read replicas of the Redis primary, 0-${MAX_REDIS_REPLICAS} (store redis only). Above 0 the group runs 1 + ` +
      "replicas nodes with automatic failover and Multi-AZ, so its subnets must span two availability zones.",
  },
  {
    key: "dataProtection",
    type: "string",
    default: "",
    description:
      "true or false: DynamoDB point-in-time recovery and deletion protection, and a 30-day recovery window on " +
      "the Redis AUTH secret. Empty means true unless the stack is named dev.",
  },
  {
    key: "protect",
    type: "boolean",
    default: false,
    description:
      "Pulumi protect on the resources that hold data (DynamoDB table, Redis replication group, Redis AUTH " +
      "secret): destroying or replacing them fails until this is turned off and applied.",
  },
  {
    key: "logLevel",
    type: "string",
    default: "INFO",
    allowed: LOG_LEVELS,
    description:
      `Lowest level the functions log: one of ${LOG_LEVELS.join(", ")}. Sets Lambda's JSON log format application ` +
      "log level (and the platform level, at most WARN).",
  },
  {
    key: "tracing",
    type: "boolean",
    default: false,
    description: "X-Ray active tracing on every function (billed per trace recorded).",
  },
  {
    key: "apiGatewayAccountRole",
    type: "boolean",
    default: false,
    description:
      "true when the account has no API Gateway CloudWatch Logs role in this region yet: creates it and sets it " +
      "in the account settings, both retained when the stack is deleted (one per account and region).",
  },
  {
    key: "dashboard",
    type: "boolean",
    default: true,
    description: "A CloudWatch dashboard for the stack: API, functions and store metrics.",
  },
  {
    key: "alarms.topicArn",
    type: "string",
    default: "",
    description:
      "Existing standard SNS topic the alarms notify. Set this or alarms.email; with neither the alarms exist " +
      "but notify nobody.",
  },
  {
    key: "alarms.email",
    type: "string",
    default: "",
    description:
      "Email address to notify: creates an SNS topic with an email subscription, confirmed from the email AWS " +
      "sends. Set this or alarms.topicArn.",
  },
  {
    key: "domain.name",
    type: "string",
    default: "",
    description:
      "Custom domain for the WebSocket URL, e.g. chat.example.com; set together with domain.certificateArn. " +
      "Empty uses the execute-api URL.",
  },
  {
    key: "domain.certificateArn",
    type: "string",
    default: "",
    description: "ACM certificate for domain.name, in the stack's region (a REGIONAL endpoint).",
  },
  {
    key: "domain.zoneId",
    type: "string",
    default: "",
    description: "Route 53 hosted zone to create domain.name's alias record in. Empty: create the DNS record yourself.",
  },
  // Who may connect and how much they may send (issue 5): infra/config-access.ts.
  {
    key: "auth",
    type: "string",
    default: "",
    description:
      "Who may connect: none (anyone) or jwt (a Lambda REQUEST authorizer on $connect verifies a JWT " +
      "against auth.issuer, auth.audience and auth.jwksUrl). Empty means none on the dev stack and is " +
      "refused on every other stack, which must choose.",
  },
  {
    key: "auth.issuer",
    type: "string",
    default: "",
    description: "Exact iss claim every token must carry, e.g. https://example.auth0.com/ (auth jwt).",
  },
  {
    key: "auth.audience",
    type: "string",
    default: "",
    description: "aud claim every token must contain, e.g. chat-api (auth jwt).",
  },
  {
    key: "auth.jwksUrl",
    type: "string",
    default: "",
    description:
      "https URL of the issuer's JSON Web Key Set, e.g. https://example.auth0.com/.well-known/jwks.json; " +
      "fetched by the authorizer and cached per container (auth jwt).",
  },
  {
    key: "auth.tokenSource",
    type: "string",
    default: "query",
    description:
      "query or header: the identity source API Gateway requires before it calls the authorizer (a missing " +
      "one is 401). query (browsers cannot set WebSocket headers) uses auth.queryParam; header uses " +
      "auth.header (auth jwt).",
  },
  {
    key: "auth.queryParam",
    type: "string",
    default: "token",
    description:
      "Query-string parameter carrying the token: wss://host/stage?token=JWT. The authorizer reads it first " +
      "(auth jwt).",
  },
  {
    key: "auth.header",
    type: "string",
    default: "",
    description:
      "Header carrying the token (a Bearer prefix is optional), read by the authorizer when the query has " +
      "none; required when auth.tokenSource is header (auth jwt).",
  },
  {
    key: "auth.algorithms",
    type: "array",
    items: "string",
    default: [],
    description:
      "JWS algorithms accepted (a YAML list) from RS256/384/512, PS256/384/512, ES256/384/512, EdDSA, " +
      "Ed25519. Empty means the RS, PS and ES families; none and HS* are refused (auth jwt).",
  },
  {
    key: "rateLimit.messages",
    type: "integer",
    default: 20,
    description:
      "Messages one connection may send per rateLimit.windowSeconds; the excess gets a RateLimited error " +
      "frame, and a connection over 3 times the limit in one window is disconnected. 0 turns the limit off.",
  },
  {
    key: "rateLimit.windowSeconds",
    type: "integer",
    default: 10,
    description: "Length of the fixed rate-limit window in seconds (1-86400).",
  },
  {
    key: "maxDataBytes",
    type: "integer",
    default: 32768,
    description:
      "Largest data a sendmessage may broadcast, in bytes as posted (1-131071, below API Gateway's 128 KB); " +
      "larger gets a PayloadTooLarge error frame.",
  },
  // Broadcast fan-out (issue 4): infra/config-fanout.ts.
  {
    key: "fanout.concurrency",
    type: "integer",
    default: 256,
    description:
      "Posts one fan-out invocation (sendmessage or a fan-out worker) keeps in flight at most (1-2000), and " +
      "its keep-alive sockets to @connections; within it an AIMD window backs off on 429.",
  },
  {
    key: "fanout.postTimeoutMs",
    type: "integer",
    default: 3000,
    description:
      "Per-attempt timeout of one post to @connections in ms (100-20000): a post can hang past the SDK's " +
      "own timeouts.",
  },
  {
    key: "fanout.memorySize",
    type: "integer",
    default: 1769,
    description:
      "Memory of sendmessage and the fan-out worker in MB (128-10240). Their CPU scales with it and bounds " +
      "posts per second (about 4,000 per vCPU); 1769 is one vCPU.",
  },
  {
    key: "fanout.inlineMax",
    type: "integer",
    default: 40000,
    description:
      "Connection ids sendmessage posts itself at most (0-10000000); a larger broadcast hands the rest, in " +
      "shards, to asynchronous fan-out worker invocations, as sendmessage must answer within API Gateway's " +
      "29 s.",
  },
  {
    key: "fanout.shardSize",
    type: "integer",
    default: 5000,
    description:
      "Connection ids per fan-out worker invocation (1-20000), split further to fit Lambda's 256 KB " +
      "asynchronous payload.",
  },
] as const satisfies readonly ConfigKeySpec[];

/** A key of {@link CONFIG_SCHEMA}. */
export type ConfigKey = (typeof CONFIG_SCHEMA)[number]["key"];

/** The full config key, as the CLI and error messages spell it: `websocket-chat:store`. */
export function fullKey(key: ConfigKey | string): string {
  return `${PROJECT_NAME}:${key}`;
}

export function specOf(key: ConfigKey): ConfigKeySpec {
  const spec = CONFIG_SCHEMA.find((s) => s.key === key);
  if (!spec) throw new Error(`no config schema entry for ${key}`);
  return spec;
}
