/**
 * The Redis part of the stack configuration (the object key `redis` and `redisAuthToken`): node type, engine and
 * its version, the AUTH token, replicas, and an existing network or the NAT gateways of one the stack creates.
 * Problems go to the shared reader's list.
 */
import * as pulumi from "@pulumi/pulumi";
import { fullKey } from "./schema";
import type { ConfigContext, ExistingNetwork, NatGateways, RedisConfig, RedisEngine } from "./types";
import { type ConfigReader, invalid } from "./values";

const NODE_TYPE = /^cache\.[a-z0-9]+\.[a-z0-9]+$/;
/** major.minor, or 6.x: ElastiCache wants both parts from Redis 7 on, and takes `6.x` for the latest 6. */
const ENGINE_VERSION = /^(\d+)\.(\d+|x)$/;
/** What `redis.engineVersion` means when left empty. */
export const DEFAULT_ENGINE_VERSION: Readonly<Record<RedisEngine, string>> = { redis: "7.1", valkey: "8.0" };
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

export function parseRedis(read: ConfigReader, context: ConfigContext = {}): RedisConfig {
  const problems = read.problems;
  const engine = read.string("redis.engine") as RedisEngine;
  const nodeType = read.string("redis.nodeType");
  if (!NODE_TYPE.test(nodeType))
    problems.push(invalid("redis.nodeType", nodeType, "an ElastiCache node type such as cache.t4g.micro"));

  const engineVersion = read.string("redis.engineVersion") || (DEFAULT_ENGINE_VERSION[engine] ?? "7.1");
  const version = ENGINE_VERSION.exec(engineVersion);
  const minimum = MIN_ENGINE_VERSION[engine] ?? MIN_ENGINE_VERSION.redis;
  const major = Number(version?.[1]);
  const minor = version?.[2] === "x" ? Number.POSITIVE_INFINITY : Number(version?.[2]);
  const wildcardAfter6 = version?.[2] === "x" && major >= 7;
  if (!version || wildcardAfter6 || major < minimum[0] || (major === minimum[0] && minor < minimum[1])) {
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
  // Read as set, without trimming: the token deployed must be the token the user chose.
  const tokenValue = read.value("redisAuthToken");
  const token = typeof tokenValue === "string" ? tokenValue : "";
  if (token !== "") {
    if (context.isSecret && !context.isSecret("redisAuthToken")) {
      problems.push(
        invalid(
          "redisAuthToken",
          token,
          "a value set with `pulumi config set --secret redisAuthToken …`",
          "it was set without --secret, so it stands in plain text in the stack file",
        ),
      );
    } else if (!AUTH_TOKEN.test(token)) {
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
  const natGateways = natChoice === "auto" ? (replicas > 0 ? "perAz" : "single") : (natChoice as NatGateways);
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
