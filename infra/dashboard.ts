/**
 * The stack's CloudWatch dashboard: the API, every function and the connection store on one page. The body is a
 * pure function of resolved names ({@link dashboardBody}), so tests can read exactly what CloudWatch gets.
 */
import * as aws from "@pulumi/aws";
import * as pulumi from "@pulumi/pulumi";

/** The store's metrics come from one DynamoDB table or from the nodes of one Redis replication group. */
export type StoreMetricTargets =
  | {
      readonly kind: "dynamodb";
      readonly tableName: string;
      /** DynamoDB operations the functions call (`PutItem`, `Scan`, …): ThrottledRequests is per operation. */
      readonly operations: readonly string[];
    }
  | {
      readonly kind: "redis";
      readonly replicationGroupId: string;
      /** The group's nodes: ElastiCache publishes engine metrics per node (CacheClusterId). */
      readonly cacheClusterIds: readonly string[];
    };

/** Resolved names the dashboard and the alarms refer to. */
export interface MetricTargets {
  readonly region: string;
  readonly apiId: string;
  readonly stage: string;
  /** Label (route name) and Lambda function name of each function. */
  readonly functions: readonly { readonly label: string; readonly functionName: string }[];
  readonly store: StoreMetricTargets;
  /** The fan-out shard queue and its dead-letter queue (SQS queue names). */
  readonly shardQueues?: { readonly queueName: string; readonly deadLetterQueueName: string };
}

/** A CloudWatch metric line: namespace, metric name, dimension name/value pairs, then rendering options. */
export type MetricLine = [string, string, ...(string | Record<string, unknown>)[]];

export interface MetricWidget {
  readonly type: "metric";
  readonly x: number;
  readonly y: number;
  readonly width: number;
  readonly height: number;
  readonly properties: {
    readonly title: string;
    readonly region: string;
    readonly view: "timeSeries";
    readonly stacked: false;
    readonly period: number;
    readonly metrics: MetricLine[];
    readonly yAxis?: Record<string, unknown>;
  };
}

export interface TextWidget {
  readonly type: "text";
  readonly x: number;
  readonly y: number;
  readonly width: number;
  readonly height: number;
  readonly properties: { readonly markdown: string };
}

export interface AlarmWidget {
  readonly type: "alarm";
  readonly x: number;
  readonly y: number;
  readonly width: number;
  readonly height: number;
  readonly properties: { readonly title: string; readonly alarms: readonly string[] };
}

export interface DashboardBody {
  readonly widgets: (MetricWidget | TextWidget | AlarmWidget)[];
}

/** API Gateway WebSocket metrics on the dashboard (namespace AWS/ApiGateway, dimensions ApiId and Stage). */
export const API_METRICS = {
  traffic: ["ConnectCount", "MessageCount"],
  errors: ["IntegrationError", "ClientError", "ExecutionError"],
  latency: ["IntegrationLatency"],
} as const;

/** Lambda metrics per function (namespace AWS/Lambda, dimension FunctionName), with the statistic shown. */
export const FUNCTION_METRICS = [
  { metric: "Invocations", stat: "Sum" },
  { metric: "Errors", stat: "Sum" },
  { metric: "Throttles", stat: "Sum" },
  { metric: "Duration", stat: "p99" },
] as const;

/** ElastiCache engine metrics per node (namespace AWS/ElastiCache, dimension CacheClusterId). */
export const REDIS_METRICS = [
  { metric: "EngineCPUUtilization", stat: "Maximum", title: "Redis engine CPU %" },
  { metric: "DatabaseMemoryUsagePercentage", stat: "Maximum", title: "Redis memory used %" },
  { metric: "CurrConnections", stat: "Maximum", title: "Redis client connections" },
] as const;

/** One minute: the finest period the API and Lambda publish at without detailed (per-second) metrics. */
const PERIOD_SECONDS = 60;
const FULL_WIDTH = 24;

/** The body of the dashboard; `alarmArns`, when given, are listed with their states at the top. */
export function dashboardBody(targets: MetricTargets, alarmArns: readonly string[] = []): DashboardBody {
  const { region, apiId, stage } = targets;
  const api = (metric: string, stat: string): MetricLine => [
    "AWS/ApiGateway",
    metric,
    "ApiId",
    apiId,
    "Stage",
    stage,
    { stat, label: stat === "Sum" ? metric : `${metric} ${stat}` },
  ];
  const widget = (title: string, metrics: MetricLine[], extra: Partial<MetricWidget["properties"]> = {}) => ({
    title,
    region,
    view: "timeSeries" as const,
    stacked: false as const,
    period: PERIOD_SECONDS,
    metrics,
    ...extra,
  });

  const rows: { title: string; widgets: MetricWidget["properties"][] }[] = [
    {
      title: `API ${apiId}, stage ${stage}`,
      widgets: [
        widget(
          "Connections and messages",
          API_METRICS.traffic.map((m) => api(m, "Sum")),
        ),
        widget(
          "API errors",
          API_METRICS.errors.map((m) => api(m, "Sum")),
        ),
        widget("Integration latency (ms)", [api("IntegrationLatency", "p50"), api("IntegrationLatency", "p99")]),
      ],
    },
    {
      title: "Functions",
      widgets: FUNCTION_METRICS.map(({ metric, stat }) =>
        widget(
          stat === "Sum" ? metric : `${metric} ${stat} (ms)`,
          targets.functions.map(
            ({ label, functionName }): MetricLine => [
              "AWS/Lambda",
              metric,
              "FunctionName",
              functionName,
              { stat, label },
            ],
          ),
        ),
      ),
    },
    storeRow(targets.store, widget),
    ...(targets.shardQueues ? [shardQueueRow(targets.shardQueues, widget)] : []),
  ];

  const widgets: (MetricWidget | TextWidget | AlarmWidget)[] = [];
  let y = 0;
  if (alarmArns.length > 0) {
    widgets.push({
      type: "alarm",
      x: 0,
      y,
      width: FULL_WIDTH,
      height: 3,
      properties: { title: "Alarms", alarms: alarmArns },
    });
    y += 3;
  }
  for (const row of rows) {
    widgets.push({ type: "text", x: 0, y, width: FULL_WIDTH, height: 1, properties: { markdown: `## ${row.title}` } });
    y += 1;
    // At most four widgets a row: a wider row would need wrapping, which no row here has.
    const width = Math.floor(FULL_WIDTH / row.widgets.length);
    row.widgets.forEach((properties, index) => {
      widgets.push({ type: "metric", x: index * width, y, width, height: 6, properties });
    });
    y += 6;
  }
  return { widgets };
}

/** SQS metrics of the shard queues (namespace AWS/SQS, dimension QueueName). */
function shardQueueRow(
  { queueName, deadLetterQueueName }: NonNullable<MetricTargets["shardQueues"]>,
  widget: (title: string, metrics: MetricLine[]) => MetricWidget["properties"],
): { title: string; widgets: MetricWidget["properties"][] } {
  const sqs = (queue: string, metric: string, label: string): MetricLine => [
    "AWS/SQS",
    metric,
    "QueueName",
    queue,
    { stat: "Maximum", label },
  ];
  return {
    title: `Fan-out shards: queue ${queueName}`,
    widgets: [
      widget("Shards waiting / in flight", [
        sqs(queueName, "ApproximateNumberOfMessagesVisible", "waiting"),
        sqs(queueName, "ApproximateNumberOfMessagesNotVisible", "in flight"),
      ]),
      widget("Oldest shard waiting (s)", [sqs(queueName, "ApproximateAgeOfOldestMessage", "age")]),
      widget("Dead-lettered shards (redrive: docs/fan-out.md)", [
        sqs(deadLetterQueueName, "ApproximateNumberOfMessagesVisible", "dead letters"),
      ]),
    ],
  };
}

function storeRow(
  store: StoreMetricTargets,
  widget: (
    title: string,
    metrics: MetricLine[],
    extra?: Partial<MetricWidget["properties"]>,
  ) => MetricWidget["properties"],
): { title: string; widgets: MetricWidget["properties"][] } {
  if (store.kind === "dynamodb") {
    const { tableName, operations } = store;
    return {
      title: `Store: DynamoDB table ${tableName}`,
      widgets: [
        widget("DynamoDB throttled requests", [
          ...operations.map(
            (operation): MetricLine => [
              "AWS/DynamoDB",
              "ThrottledRequests",
              "TableName",
              tableName,
              "Operation",
              operation,
              { stat: "Sum", label: operation },
            ],
          ),
          ["AWS/DynamoDB", "ReadThrottleEvents", "TableName", tableName, { stat: "Sum" }],
          ["AWS/DynamoDB", "WriteThrottleEvents", "TableName", tableName, { stat: "Sum" }],
        ]),
        widget(
          "DynamoDB latency (ms)",
          operations.map(
            (operation): MetricLine => [
              "AWS/DynamoDB",
              "SuccessfulRequestLatency",
              "TableName",
              tableName,
              "Operation",
              operation,
              { stat: "Average", label: operation },
            ],
          ),
        ),
      ],
    };
  }
  const { replicationGroupId, cacheClusterIds } = store;
  return {
    title: `Store: Redis ${replicationGroupId}`,
    widgets: REDIS_METRICS.map(({ metric, stat, title }) =>
      widget(
        title,
        cacheClusterIds.map((id): MetricLine => ["AWS/ElastiCache", metric, "CacheClusterId", id, { stat, label: id }]),
        metric === "CurrConnections" ? {} : { yAxis: { left: { min: 0, max: 100 } } },
      ),
    ),
  };
}

/** Dashboard names allow letters, digits, `-` and `_` only; stack names may hold more (`team.prod`). */
export function dashboardName(name: string, stack: string): string {
  return `${name}-${stack}`.replace(/[^A-Za-z0-9_-]/g, "-").slice(0, 255);
}

export function createDashboard(
  name: string,
  targets: pulumi.Output<MetricTargets>,
  alarmArns: pulumi.Input<string>[],
  parent: pulumi.Resource,
): aws.cloudwatch.Dashboard {
  return new aws.cloudwatch.Dashboard(
    `${name}-dashboard`,
    {
      dashboardName: dashboardName(name, pulumi.getStack()),
      dashboardBody: pulumi
        .all([targets, pulumi.all(alarmArns)])
        .apply(([t, arns]) => JSON.stringify(dashboardBody(t, arns))),
    },
    { parent },
  );
}
