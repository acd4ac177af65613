/**
 * The Redis connection store: an ElastiCache replication group with TLS, AUTH and encryption at rest, in the
 * private subnets of a {@link RedisNetwork}. One node by default; with replicas, automatic failover across
 * availability zones.
 */
import * as aws from "@pulumi/aws";
import * as pulumi from "@pulumi/pulumi";
import * as random from "@pulumi/random";
import { REDIS_PORT, type RedisNetwork } from "./redis-network";

export interface RedisClusterArgs {
  /** `redis` (Redis OSS) or `valkey`: both take the same AUTH token and TLS settings. */
  readonly engine: "redis" | "valkey";
  readonly nodeType: string;
  readonly engineVersion: string;
  /** Generated when absent. */
  readonly authToken?: pulumi.Input<string>;
  readonly network: RedisNetwork;
  /** Read replicas (0-5); above 0 turns on automatic failover and Multi-AZ. Default 0. */
  readonly replicas?: number;
  /** Pulumi `protect` on the replication group. */
  readonly protect?: boolean;
}

export interface RedisCluster {
  readonly replicationGroup: aws.elasticache.ReplicationGroup;
  /** Primary endpoint host name. */
  readonly host: pulumi.Output<string>;
  readonly port: number;
  /** Always a secret. */
  readonly authToken: pulumi.Output<string>;
}

/** Alphanumeric only, so a generated token can never contain a character ElastiCache refuses. */
const GENERATED_TOKEN_LENGTH = 48;

export function createRedisCluster(name: string, args: RedisClusterArgs, parent: pulumi.Resource): RedisCluster {
  const opts = { parent };
  const replicas = args.replicas ?? 0;
  const authToken = pulumi.secret(
    args.authToken ??
      new random.RandomPassword(`${name}-redis-auth`, { length: GENERATED_TOKEN_LENGTH, special: false }, opts).result,
  );

  const subnetGroup = new aws.elasticache.SubnetGroup(
    `${name}-redis-subnets`,
    { subnetIds: args.network.privateSubnetIds, description: "Private subnets of the chat Redis store" },
    opts,
  );

  const replicationGroup = new aws.elasticache.ReplicationGroup(
    `${name}-redis`,
    {
      description: "Chat connection store",
      engine: args.engine,
      engineVersion: args.engineVersion,
      nodeType: args.nodeType,
      numCacheClusters: 1 + replicas,
      // Failover needs a replica to promote; Multi-AZ places it in another zone (the subnet group spans two).
      automaticFailoverEnabled: replicas > 0,
      multiAzEnabled: replicas > 0,
      port: REDIS_PORT,
      subnetGroupName: subnetGroup.name,
      securityGroupIds: [args.network.redisSecurityGroup.id],
      // AUTH requires in-transit encryption; the functions connect with TLS (REDIS_TLS=true).
      transitEncryptionEnabled: true,
      atRestEncryptionEnabled: true,
      authToken,
      // Connection records are rebuilt as clients reconnect; snapshots would only cost money.
      snapshotRetentionLimit: 0,
    },
    { parent, protect: args.protect ?? false },
  );

  return { replicationGroup, host: replicationGroup.primaryEndpointAddress, port: REDIS_PORT, authToken };
}
