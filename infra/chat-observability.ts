/**
 * What watches a `ChatApi`: the alarms (always; they notify the configured topic, if any) and the dashboard
 * (unless turned off), both fed the same metric targets: the API and stage, every function, and the store.
 */
import * as aws from "@pulumi/aws";
import * as pulumi from "@pulumi/pulumi";
import { ROUTES } from "../contract/routes";
import { type ChatAlarms, createAlarms } from "./alarms";
import type { ChatApiSettings } from "./chat-api-args";
import type { StoreResources } from "./chat-store";
import { createDashboard, type MetricTargets, type StoreMetricTargets } from "./dashboard";
import type { ShardQueues } from "./handler-function";
import { DYNAMODB_ACTIONS } from "./iam";

/** A function to watch, with a short label (its route or role name). */
export interface ObservedFunction {
  readonly label: string;
  readonly fn: aws.lambda.Function;
}

export interface ObservedResources {
  readonly api: aws.apigatewayv2.Api;
  readonly stage: aws.apigatewayv2.Stage;
  /** Every function of the stack. */
  readonly functions: readonly ObservedFunction[];
  readonly store: StoreResources;
  /** The fan-out shard queues: their depth on the dashboard, an alarm on the dead letters. */
  readonly shardQueues?: ShardQueues;
}

export interface Observability {
  readonly alarms: ChatAlarms;
  /** Absent when `dashboard` is false. */
  readonly dashboard?: aws.cloudwatch.Dashboard;
}

export function createObservability(
  name: string,
  settings: Pick<ChatApiSettings, "alarms" | "dashboard">,
  observed: ObservedResources,
  parent: pulumi.Resource,
): Observability {
  const { functions, store } = observed;
  const targets = metricTargets(observed, parent);
  const alarms = createAlarms(
    name,
    settings.alarms,
    {
      functionLabels: functions.map(({ label }) => label),
      store: store.kind,
      shardQueues: observed.shardQueues !== undefined,
    },
    targets,
    parent,
  );
  const dashboard = settings.dashboard
    ? createDashboard(
        name,
        targets,
        alarms.alarms.map((alarm) => alarm.arn),
        parent,
      )
    : undefined;
  return { alarms, dashboard };
}

function metricTargets(
  { api, stage, functions, store, shardQueues }: ObservedResources,
  parent: pulumi.Resource,
): pulumi.Output<MetricTargets> {
  return pulumi
    .all([
      aws.getRegionOutput({}, { parent }).region,
      api.id,
      stage.name,
      pulumi.all(functions.map(({ fn }) => fn.name)),
      storeTargets(store),
      shardQueues?.queue.name,
      shardQueues?.deadLetterQueue.name,
    ])
    .apply(([region, apiId, stageName, functionNames, storeMetrics, queueName, deadLetterQueueName]) => ({
      region,
      apiId,
      stage: stageName,
      functions: functions.map(({ label }, i) => ({ label, functionName: functionNames[i]! })),
      store: storeMetrics,
      ...(queueName && deadLetterQueueName ? { shardQueues: { queueName, deadLetterQueueName } } : {}),
    }));
}

function storeTargets(store: StoreResources): pulumi.Output<StoreMetricTargets> {
  if (store.kind === "dynamodb") {
    return store.table.name.apply((tableName) => ({
      kind: "dynamodb" as const,
      tableName,
      operations: dynamoDbOperations(),
    }));
  }
  return pulumi
    .all([store.cluster.replicationGroup.id, store.cluster.replicationGroup.memberClusters])
    .apply(([replicationGroupId, cacheClusterIds]) => ({
      kind: "redis" as const,
      replicationGroupId,
      cacheClusterIds: [...(cacheClusterIds ?? [])].sort(),
    }));
}

/** The DynamoDB operations the route table's functions call, as CloudWatch names them (`Operation` dimension). */
function dynamoDbOperations(): string[] {
  const actions = ROUTES.flatMap((route) => route.storeAccess.flatMap((access) => DYNAMODB_ACTIONS[access] ?? []));
  return [...new Set(actions.map((action) => action.replace(/^dynamodb:/, "")))].sort();
}
