/**
 * The Redis connection store: a single-node ElastiCache replication group with TLS and AUTH, in the private
 * subnets of a {@link RedisNetwork}.
 */
import * as aws from "@pulumi/aws";
import * as pulumi from "@pulumi/pulumi";
import * as random from "@pulumi/random";
import { REDIS_PORT, type RedisNetwork } from "./redis-network";

export interface RedisClusterArgs {
  readonly nodeType: string;
  readonly engineVersion: string;
  /** Generated when absent. */
  readonly authToken?: pulumi.Input<string>;
  readonly network: RedisNetwork;
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
      engine: "redis",
      engineVersion: args.engineVersion,
      nodeType: args.nodeType,
      numCacheClusters: 1,
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
    opts,
  );

  return { replicationGroup, host: replicationGroup.primaryEndpointAddress, port: REDIS_PORT, authToken };
}
