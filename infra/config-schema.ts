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
