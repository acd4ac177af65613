/**
 * The connection store a `ChatApi` deploys: a DynamoDB table in the layout of stores/dynamodb-table.ts, or
 * ElastiCache Redis with its network and the Secrets Manager copy of its AUTH token.
 */
import * as aws from "@pulumi/aws";
import type * as pulumi from "@pulumi/pulumi";
import {
  HASH_KEY,
  MEMBER_ATTRIBUTE,
  ROOM_ATTRIBUTE,
  ROOM_INDEX,
  ROOM_INDEX_PROJECTED,
  TTL_ATTRIBUTE,
} from "../stores/dynamodb-table";
import type { ChatApiSettings } from "./chat-api-args";
import { createRedisCluster, type RedisCluster } from "./redis-cluster";
import { createRedisNetwork, type RedisNetwork } from "./redis-network";
import { createRedisAuthSecret, type RedisAuthSecret } from "./redis-secret";

/** What the functions, their policies and the alarms need to know of the store. */
export type StoreResources =
  | { readonly kind: "dynamodb"; readonly table: aws.dynamodb.Table }
  | {
      readonly kind: "redis";
      readonly network: RedisNetwork;
      readonly cluster: RedisCluster;
      readonly authSecret: RedisAuthSecret;
    };

type StoreSettings = Pick<ChatApiSettings, "store" | "redis" | "protect" | "dataProtection">;

/** The configured store, its resources named after `name` and parented to `parent`. */
export function createChatStore(name: string, settings: StoreSettings, parent: pulumi.Resource): StoreResources {
  return settings.store === "dynamodb"
    ? { kind: "dynamodb", table: createTable(name, settings, parent) }
    : createRedisStore(name, settings, parent);
}

function createTable(name: string, settings: StoreSettings, parent: pulumi.Resource): aws.dynamodb.Table {
  return new aws.dynamodb.Table(
    `${name}-connections`,
    {
      billingMode: "PAY_PER_REQUEST",
      hashKey: HASH_KEY,
      // The layout of stores/dynamodb-table.ts: connection and membership items, and the room index.
      attributes: [
        { name: HASH_KEY, type: "S" },
        { name: ROOM_ATTRIBUTE, type: "S" },
        { name: MEMBER_ATTRIBUTE, type: "S" },
      ],
      globalSecondaryIndexes: [
        {
          name: ROOM_INDEX,
          keySchemas: [
            { attributeName: ROOM_ATTRIBUTE, keyType: "HASH" },
            { attributeName: MEMBER_ATTRIBUTE, keyType: "RANGE" },
          ],
          projectionType: "INCLUDE",
          nonKeyAttributes: [...ROOM_INDEX_PROJECTED],
        },
      ],
      serverSideEncryption: { enabled: true },
      // Connections whose $disconnect never ran expire on their own (pitfall: $disconnect is best effort).
      ttl: { attributeName: TTL_ATTRIBUTE, enabled: true },
      pointInTimeRecovery: { enabled: settings.dataProtection },
      deletionProtectionEnabled: settings.dataProtection,
    },
    { parent, protect: settings.protect },
  );
}

function createRedisStore(name: string, settings: StoreSettings, parent: pulumi.Resource): StoreResources {
  const { redis } = settings;
  const network = createRedisNetwork(name, redis.network, redis.natGateways, parent);
  const cluster = createRedisCluster(
    name,
    {
      engine: redis.engine,
      nodeType: redis.nodeType,
      engineVersion: redis.engineVersion,
      authToken: redis.authToken,
      network,
      replicas: redis.replicas,
      protect: settings.protect,
    },
    parent,
  );
  const authSecret = createRedisAuthSecret(
    name,
    { authToken: cluster.authToken, recoverable: settings.dataProtection, protect: settings.protect },
    parent,
  );
  return { kind: "redis", network, cluster, authSecret };
}
