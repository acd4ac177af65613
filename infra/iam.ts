/**
 * IAM policy documents, built from the route table: each function gets only what its route declares, on its
 * own resources. Pure functions over plain ARNs so tests can read the exact documents.
 */
import type { FunctionDefinition, StoreAccess } from "../contract/routes";
import { ROOM_INDEX } from "../stores/dynamodb-table";
import type { DeployedStore } from "./config";

export interface PolicyStatement {
  readonly Sid: string;
  readonly Effect: "Allow";
  readonly Action: readonly string[];
  readonly Resource: readonly string[];
}

export interface PolicyDocument {
  readonly Version: "2012-10-17";
  readonly Statement: readonly PolicyStatement[];
}

export const LAMBDA_ASSUME_ROLE_POLICY = {
  Version: "2012-10-17",
  Statement: [{ Effect: "Allow", Principal: { Service: "lambda.amazonaws.com" }, Action: "sts:AssumeRole" }],
} as const;

/**
 * The DynamoDB actions behind each store operation. `delete` includes BatchWriteItem because the store removes
 * stale connections' memberships in batches; `meter` (the rate limit's counter) is a conditional UpdateItem;
 * `membership` is the conditional UpdateItem of a connection's `rooms` set plus Put/Delete of membership items and
 * the consistent re-read of a join; `listRoom` is a Query, granted on the room index only
 * ({@link DYNAMODB_INDEX_ACCESS}); `userSlots` is the consistent GetItem, conditional PutItem and UpdateItem of a
 * user's slots item (stores/dynamodb-user-slots.ts).
 */
export const DYNAMODB_ACTIONS: Readonly<Record<StoreAccess, readonly string[]>> = {
  write: ["dynamodb:PutItem"],
  delete: ["dynamodb:DeleteItem", "dynamodb:BatchWriteItem"],
  read: ["dynamodb:Scan", "dynamodb:GetItem"],
  lookup: ["dynamodb:GetItem"],
  meter: ["dynamodb:UpdateItem"],
  membership: ["dynamodb:UpdateItem", "dynamodb:PutItem", "dynamodb:DeleteItem", "dynamodb:GetItem"],
  listRoom: ["dynamodb:Query"],
  // Room history (stores/dynamodb-history.ts), all by key: a consistent GetItem of the counter, then BatchGetItem of
  // the page's entries; an append is the counter's UpdateItem ADD and one BatchWriteItem (the entry, and the entry
  // that fell out of the count bound); a claim is a conditional PutItem, re-read with GetItem when it loses, settled
  // with a conditional UpdateItem or DeleteItem; the heartbeat is one conditional UpdateItem.
  history: ["dynamodb:GetItem", "dynamodb:BatchGetItem"],
  append: ["dynamodb:UpdateItem", "dynamodb:BatchWriteItem"],
  sendRef: ["dynamodb:PutItem", "dynamodb:GetItem", "dynamodb:UpdateItem", "dynamodb:DeleteItem"],
  touch: ["dynamodb:UpdateItem"],
  userSlots: ["dynamodb:GetItem", "dynamodb:PutItem", "dynamodb:UpdateItem"],
};

/** Store accesses whose actions apply to the room index (`{tableArn}/index/{ROOM_INDEX}`), not to the table. */
export const DYNAMODB_INDEX_ACCESS: readonly StoreAccess[] = ["listRoom"];

/** The ARN of the room-members GSI of a table. */
export function roomIndexArn(tableArn: string): string {
  return `${tableArn}/index/${ROOM_INDEX}`;
}

/**
 * What Lambda needs to attach a function to a VPC. AWS's managed AWSLambdaVPCAccessExecutionRole has these plus
 * `logs:*` writes on every log group, so the ENI actions are granted inline instead. They cannot be scoped below
 * `*` (Lambda manages the ENIs), which is why only functions that must reach Redis get them.
 */
export const VPC_NETWORK_INTERFACE_ACTIONS: readonly string[] = [
  "ec2:CreateNetworkInterface",
  "ec2:DescribeNetworkInterfaces",
  "ec2:DescribeSubnets",
  "ec2:DeleteNetworkInterface",
  "ec2:AssignPrivateIpAddresses",
  "ec2:UnassignPrivateIpAddresses",
];

/** Resolved ARNs a function's policy refers to. */
export interface FunctionPolicyTargets {
  readonly store: DeployedStore;
  /** The DynamoDB table (store `dynamodb`). */
  readonly tableArn?: string;
  /** `arn:aws:execute-api:{region}:{account}:{apiId}`. */
  readonly apiExecutionArn: string;
  readonly stage: string;
  /** The function's own log group (without the `:*` suffix). */
  readonly logGroupArn: string;
  /** Whether the function runs in a VPC (store `redis`, routes that use the store). */
  readonly inVpc?: boolean;
  /** The Secrets Manager secret holding the Redis AUTH token (store `redis`, routes that use the store). */
  readonly redisAuthSecretArn?: string;
  /** Whether X-Ray active tracing is on. */
  readonly tracing?: boolean;
  /** The fan-out shard queue (routes that hand shards to the worker, `invokesFanOutWorker`, and the worker). */
  readonly shardQueueArn?: string;
  /** The shard queue's dead-letter queue (the worker: ids that failed on every try). */
  readonly shardDlqArn?: string;
  /** Whether the function is the fan-out worker, which consumes the shard queue (event source mapping). */
  readonly consumesShardQueue?: boolean;
}

/**
 * Read on DynamoDB also sizes the listing: the store picks its parallel Scan segments from the table's item count
 * (stores/dynamodb.ts). DescribeTable reads metadata only, and only of this table.
 */
export const DYNAMODB_LIST_PLANNING_ACTIONS: readonly string[] = ["dynamodb:DescribeTable"];

/** What a function that hands shards to the worker needs on the shard queue. */
export const SHARD_QUEUE_SEND_ACTIONS: readonly string[] = ["sqs:SendMessage"];

/**
 * What Lambda's SQS event source mapping needs of the worker's role to poll the queue for it (the Lambda
 * Developer Guide's "Execution role permissions" for SQS; the managed AWSLambdaSQSQueueExecutionRole has the
 * same four on every queue).
 */
export const SHARD_QUEUE_CONSUME_ACTIONS: readonly string[] = [
  "sqs:ReceiveMessage",
  "sqs:DeleteMessage",
  "sqs:GetQueueAttributes",
  "sqs:ChangeMessageVisibility",
];

/** What Lambda's active tracing needs to send segments. X-Ray has no resource-level permissions for them. */
export const XRAY_ACTIONS: readonly string[] = ["xray:PutTraceSegments", "xray:PutTelemetryRecords"];

/** `execute-api:ManageConnections` resource: POST to `@connections` on this API and stage, nothing else. */
export function manageConnectionsArn(apiExecutionArn: string, stage: string): string {
  return `${apiExecutionArn}/${stage}/POST/@connections/*`;
}

/** `execute-api:ManageConnections` resource for closing connections: DELETE `@connections` on this API and stage. */
export function deleteConnectionsArn(apiExecutionArn: string, stage: string): string {
  return `${apiExecutionArn}/${stage}/DELETE/@connections/*`;
}

export function functionPolicy(route: FunctionDefinition, targets: FunctionPolicyTargets): PolicyDocument {
  const statements: PolicyStatement[] = [
    {
      Sid: "WriteOwnLogs",
      Effect: "Allow",
      Action: ["logs:CreateLogStream", "logs:PutLogEvents"],
      Resource: [`${targets.logGroupArn}:*`],
    },
  ];

  // Redis access is granted by the network (security group) and the AUTH token, not by IAM.
  if (targets.store === "dynamodb" && route.storeAccess.length > 0) {
    if (!targets.tableArn)
      throw new Error(`function ${route.routeKey ?? route.name} needs the table ARN for its store access`);
    const tableAccess = route.storeAccess.filter((access) => !DYNAMODB_INDEX_ACCESS.includes(access));
    const indexAccess = route.storeAccess.filter((access) => DYNAMODB_INDEX_ACCESS.includes(access));
    const actions = [
      ...new Set([
        ...tableAccess.flatMap((access) => DYNAMODB_ACTIONS[access]),
        ...(route.storeAccess.includes("read") ? DYNAMODB_LIST_PLANNING_ACTIONS : []),
      ]),
    ];
    if (actions.length > 0)
      statements.push({ Sid: "ConnectionStore", Effect: "Allow", Action: actions, Resource: [targets.tableArn] });
    if (indexAccess.length > 0) {
      // Listing a room is a Query on its GSI; the table itself is never queried.
      const indexActions = [...new Set(indexAccess.flatMap((access) => DYNAMODB_ACTIONS[access]))];
      statements.push({
        Sid: "RoomIndex",
        Effect: "Allow",
        Action: indexActions,
        Resource: [roomIndexArn(targets.tableArn)],
      });
    }
  }

  if (route.manageConnections) {
    statements.push({
      Sid: "PostToConnections",
      Effect: "Allow",
      Action: ["execute-api:ManageConnections"],
      Resource: [
        manageConnectionsArn(targets.apiExecutionArn, targets.stage),
        // The rate limit closes abusive connections (DELETE @connections).
        ...(route.disconnectConnections ? [deleteConnectionsArn(targets.apiExecutionArn, targets.stage)] : []),
      ],
    });
  }

  if (route.invokesFanOutWorker) {
    if (!targets.shardQueueArn) throw new Error(`route ${route.routeKey ?? route.name} needs the shard queue's ARN`);
    // Exactly the shard queue: send, nothing else (no receive, no purge), on one queue.
    statements.push({
      Sid: "QueueFanOutShards",
      Effect: "Allow",
      Action: SHARD_QUEUE_SEND_ACTIONS,
      Resource: [targets.shardQueueArn],
    });
  }

  if (targets.consumesShardQueue) {
    if (!targets.shardQueueArn || !targets.shardDlqArn)
      throw new Error(`function ${route.name} needs the shard queue's and its dead-letter queue's ARNs`);
    statements.push({
      Sid: "ConsumeFanOutShards",
      Effect: "Allow",
      Action: SHARD_QUEUE_CONSUME_ACTIONS,
      Resource: [targets.shardQueueArn],
    });
    // Failed ids go back to the queue as a smaller shard, or, after their last try, to the dead-letter queue.
    statements.push({
      Sid: "RequeueFanOutShards",
      Effect: "Allow",
      Action: SHARD_QUEUE_SEND_ACTIONS,
      Resource: [targets.shardQueueArn, targets.shardDlqArn],
    });
  }

  if (targets.redisAuthSecretArn) {
    // The exact secret ARN (with its random suffix), no wildcard. It uses the aws/secretsmanager key, whose key
    // policy already lets callers that may read the secret decrypt it, so no kms:Decrypt grant is needed.
    statements.push({
      Sid: "ReadRedisAuthToken",
      Effect: "Allow",
      Action: ["secretsmanager:GetSecretValue"],
      Resource: [targets.redisAuthSecretArn],
    });
  }

  if (targets.tracing) {
    statements.push({ Sid: "XRayTracing", Effect: "Allow", Action: XRAY_ACTIONS, Resource: ["*"] });
  }

  if (targets.inVpc) {
    statements.push({
      Sid: "VpcNetworkInterfaces",
      Effect: "Allow",
      Action: VPC_NETWORK_INTERFACE_ACTIONS,
      Resource: ["*"],
    });
  }

  return { Version: "2012-10-17", Statement: statements };
}
