/**
 * CloudWatch alarms on what users notice first: functions failing, API Gateway failing to reach them, and the
 * store saturating. They notify an SNS topic: an existing one (`alarms.topicArn`), or one created here with an
 * email subscription (`alarms.email`). With neither, the alarms still exist (their state shows in the console
 * and on the dashboard's alarm list) but notify nobody.
 *
 * Each alarm counts failures of ours only, never a client's mistake, so that it can page on one:
 * - `IntegrationError` counts every 4XX/5XX a route's function returns. The handlers answer client mistakes
 *   in-band (an error frame) with 200 and keep non-2xx for faults (chat/reply.ts); the handler
 *   tests hold them to it.
 * - The `$connect` authorizer rejects a bad token by throwing `Error("Unauthorized")`, which is a Lambda error:
 *   its alarm subtracts the rejections it logged (a metric filter, authorizer.ts) from its `Errors`.
 */
import * as aws from "@pulumi/aws";
import * as pulumi from "@pulumi/pulumi";
import { AUTHORIZER } from "../contract/routes";
import { FAULT_PATTERN, faultMetric, REJECTION_PATTERN, rejectionMetric } from "./authorizer";
import type { AlarmNotifications } from "./config";
import type { MetricTargets } from "./dashboard";

/** The alarm period: five minutes, a balance between paging fast and paging on noise. */
export const ALARM_PERIOD_SECONDS = 300;
const ALARM_PERIOD_MINUTES = ALARM_PERIOD_SECONDS / 60;
/** The metric-math expression of the authorizer's alarm: its Lambda errors that were not token rejections. */
export const AUTHORIZER_FAILURES_EXPRESSION = "FILL(errors, 0) - FILL(rejected, 0)";
/** Periods in a row the authorizer's Errors minus rejections must stay positive before it pages. */
export const PERSISTENT_PERIODS = 3;
/** Redis CPU or memory above this (percent, any node) is saturation. */
export const REDIS_SATURATION_PERCENT = 90;
/** Consecutive periods Redis CPU must stay saturated: a short spike during a large broadcast is normal. */
const REDIS_CPU_PERIODS = 3;

export interface ChatAlarms {
  /** The topic the alarms notify; absent when none was configured. */
  readonly topicArn?: pulumi.Output<string>;
  /** Created only for `alarms.email`. */
  readonly topic?: aws.sns.Topic;
  readonly alarms: aws.cloudwatch.MetricAlarm[];
}

/** What {@link createAlarms} needs to know before the targets resolve: how many functions, which store. */
export interface AlarmShape {
  readonly functionLabels: readonly string[];
  readonly store: "dynamodb" | "redis";
  /** Whether the stack has the fan-out shard queue (its dead letters alarm). */
  readonly shardQueues?: boolean;
}

export function createAlarms(
  name: string,
  notifications: AlarmNotifications,
  shape: AlarmShape,
  targets: pulumi.Output<MetricTargets>,
  parent: pulumi.Resource,
): ChatAlarms {
  const opts = { parent };
  const { topic, topicArn } = createNotificationTarget(name, notifications, opts);
  const common = commonAlarmArgs(topicArn);
  const alarms = [
    ...shape.functionLabels.map((label, index) => functionAlarm(name, label, index, targets, common, opts)),
    ...(shape.functionLabels.includes(AUTHORIZER.name) ? [authorizerFaultsAlarm(name, common, opts)] : []),
    integrationErrorsAlarm(name, targets, common, opts),
    ...(shape.store === "dynamodb"
      ? [storeThrottlesAlarm(name, targets, common, opts)]
      : redisSaturationAlarms(name, targets, common, opts)),
    ...(shape.shardQueues ? [shardDeadLettersAlarm(name, targets, common, opts)] : []),
  ];
  return { topicArn, topic, alarms };
}

/** The topic alarms notify: one created for `alarms.email` (and subscribed), the configured one, or none. */
function createNotificationTarget(
  name: string,
  notifications: AlarmNotifications,
  opts: pulumi.CustomResourceOptions,
): Pick<ChatAlarms, "topic" | "topicArn"> {
  const topic = notifications.email ? new aws.sns.Topic(`${name}-alarms`, {}, opts) : undefined;
  if (topic && notifications.email) {
    // Stays "pending confirmation" until the recipient follows the link in AWS's email.
    new aws.sns.TopicSubscription(
      `${name}-alarms-email`,
      { topic: topic.arn, protocol: "email", endpoint: notifications.email },
      opts,
    );
  }
  const topicArn = topic ? topic.arn : notifications.topicArn ? pulumi.output(notifications.topicArn) : undefined;
  return { topic, topicArn };
}

/** Alarms on one metric also set `period`; metric-math alarms must not (their queries carry it). */
function commonAlarmArgs(topicArn: pulumi.Output<string> | undefined): CommonAlarmArgs {
  // OK actions too, so whoever was paged also learns that it recovered.
  const actions = topicArn ? { alarmActions: [topicArn], okActions: [topicArn] } : { alarmActions: [], okActions: [] };
  return {
    ...actions,
    evaluationPeriods: 1,
    // No data means no traffic, not a failure.
    treatMissingData: "notBreaching",
  };
}

/** The errors alarm of the function at `index` of the targets (the authorizer's has its own rules). */
function functionAlarm(
  name: string,
  label: string,
  index: number,
  targets: pulumi.Output<MetricTargets>,
  common: CommonAlarmArgs,
  opts: pulumi.CustomResourceOptions,
): aws.cloudwatch.MetricAlarm {
  const functionName = targets.apply((t) => {
    const fn = t.functions[index];
    if (!fn || fn.label !== label) throw new Error(`alarm targets list no function ${label} at ${index}`);
    return fn.functionName;
  });
  if (label === AUTHORIZER.name) return authorizerAlarm(name, label, functionName, common, opts);
  return new aws.cloudwatch.MetricAlarm(
    `${name}-${label}-errors-alarm`,
    {
      ...common,
      alarmDescription: functionName.apply(
        (fn) =>
          `Function ${fn} (${label}) threw or timed out: AWS/Lambda Errors (Sum) >= 1 in ${ALARM_PERIOD_MINUTES} min.`,
      ),
      period: ALARM_PERIOD_SECONDS,
      namespace: "AWS/Lambda",
      metricName: "Errors",
      dimensions: { FunctionName: functionName },
      statistic: "Sum",
      comparisonOperator: "GreaterThanOrEqualToThreshold",
      threshold: 1,
    },
    opts,
  );
}

/**
 * Shards (or the ids of shards) that failed on every try wait in the dead-letter queue: nothing is lost, but
 * somebody did not get a message until an operator redrives it (docs/fan-out.md). One is enough to page.
 * `Maximum` of the visible count: the DLQ's depth, not a rate.
 */
function shardDeadLettersAlarm(
  name: string,
  targets: pulumi.Output<MetricTargets>,
  common: CommonAlarmArgs,
  opts: pulumi.CustomResourceOptions,
): aws.cloudwatch.MetricAlarm {
  const queueName = targets.apply((t) => {
    if (!t.shardQueues) throw new Error("alarm targets have no shard queues");
    return t.shardQueues.deadLetterQueueName;
  });
  return new aws.cloudwatch.MetricAlarm(
    `${name}-shard-dead-letters-alarm`,
    {
      ...common,
      alarmDescription: queueName.apply(
        (queue) =>
          `Fan-out shards failed on every try and wait in ${queue}: AWS/SQS ApproximateNumberOfMessagesVisible ` +
          `(Maximum) >= 1 in ${ALARM_PERIOD_MINUTES} min. Fix the cause, then redrive (docs/fan-out.md).`,
      ),
      period: ALARM_PERIOD_SECONDS,
      namespace: "AWS/SQS",
      metricName: "ApproximateNumberOfMessagesVisible",
      dimensions: { QueueName: queueName },
      statistic: "Maximum",
      comparisonOperator: "GreaterThanOrEqualToThreshold",
      threshold: 1,
    },
    opts,
  );
}

function integrationErrorsAlarm(
  name: string,
  targets: pulumi.Output<MetricTargets>,
  common: CommonAlarmArgs,
  opts: pulumi.CustomResourceOptions,
): aws.cloudwatch.MetricAlarm {
  return new aws.cloudwatch.MetricAlarm(
    `${name}-integration-errors-alarm`,
    {
      ...common,
      alarmDescription:
        `A route's function failed or answered 4XX/5XX: AWS/ApiGateway IntegrationError (Sum, this API and ` +
        `stage) >= 1 in ${ALARM_PERIOD_MINUTES} min. The functions answer client mistakes in-band with 200, ` +
        "so it counts faults of ours (a throw, a timeout, a 5xx).",
      period: ALARM_PERIOD_SECONDS,
      namespace: "AWS/ApiGateway",
      metricName: "IntegrationError",
      dimensions: { ApiId: targets.apiId, Stage: targets.stage },
      statistic: "Sum",
      comparisonOperator: "GreaterThanOrEqualToThreshold",
      threshold: 1,
    },
    opts,
  );
}

function storeThrottlesAlarm(
  name: string,
  targets: pulumi.Output<MetricTargets>,
  common: CommonAlarmArgs,
  opts: pulumi.CustomResourceOptions,
): aws.cloudwatch.MetricAlarm {
  return new aws.cloudwatch.MetricAlarm(
    `${name}-store-throttles-alarm`,
    {
      ...common,
      alarmDescription:
        "DynamoDB throttled requests of the connection store: the sum of AWS/DynamoDB ThrottledRequests over " +
        `the operations the functions call >= 1 in ${ALARM_PERIOD_MINUTES} min.`,
      comparisonOperator: "GreaterThanOrEqualToThreshold",
      threshold: 1,
      // ThrottledRequests is published per operation; the alarm watches their sum.
      metricQueries: targets.apply((t) => {
        if (t.store.kind !== "dynamodb") throw new Error("alarm targets are not a DynamoDB store");
        const { tableName, operations } = t.store;
        return [
          ...operations.map((operation, i) => ({
            id: `m${i}`,
            returnData: false,
            metric: {
              namespace: "AWS/DynamoDB",
              metricName: "ThrottledRequests",
              dimensions: { TableName: tableName, Operation: operation },
              period: ALARM_PERIOD_SECONDS,
              stat: "Sum",
            },
          })),
          { id: "throttled", expression: "SUM(METRICS())", label: "ThrottledRequests", returnData: true },
        ];
      }),
    },
    opts,
  );
}

/** Redis engine CPU (sustained) and memory, each at {@link REDIS_SATURATION_PERCENT} on the busiest node. */
function redisSaturationAlarms(
  name: string,
  targets: pulumi.Output<MetricTargets>,
  common: CommonAlarmArgs,
  opts: pulumi.CustomResourceOptions,
): aws.cloudwatch.MetricAlarm[] {
  const saturation: SaturationContext = { name, targets, common, opts };
  return [
    redisAlarm(
      saturation,
      "cpu",
      "EngineCPUUtilization",
      `Redis engine CPU at ${REDIS_SATURATION_PERCENT}% or more: the busiest node's AWS/ElastiCache ` +
        `EngineCPUUtilization (Maximum) >= ${REDIS_SATURATION_PERCENT} for ` +
        `${REDIS_CPU_PERIODS * ALARM_PERIOD_MINUTES} min.`,
      REDIS_CPU_PERIODS,
    ),
    redisAlarm(
      saturation,
      "memory",
      "DatabaseMemoryUsagePercentage",
      `Redis memory ${REDIS_SATURATION_PERCENT}% used or more: the busiest node's AWS/ElastiCache ` +
        `DatabaseMemoryUsagePercentage (Maximum) >= ${REDIS_SATURATION_PERCENT} in ${ALARM_PERIOD_MINUTES} min.`,
      1,
    ),
  ];
}

/** What both Redis saturation alarms share. */
interface SaturationContext {
  readonly name: string;
  readonly targets: pulumi.Output<MetricTargets>;
  readonly common: CommonAlarmArgs;
  readonly opts: pulumi.CustomResourceOptions;
}

/** One Redis engine metric at saturation on the busiest node, for `evaluationPeriods` periods. */
function redisAlarm(
  { name, targets, common, opts }: SaturationContext,
  suffix: string,
  metric: string,
  description: string,
  evaluationPeriods: number,
): aws.cloudwatch.MetricAlarm {
  return new aws.cloudwatch.MetricAlarm(
    `${name}-store-${suffix}-alarm`,
    {
      ...common,
      evaluationPeriods,
      alarmDescription: description,
      comparisonOperator: "GreaterThanOrEqualToThreshold",
      threshold: REDIS_SATURATION_PERCENT,
      // Engine metrics are per node and the primary can move on failover, so the alarm watches the highest.
      metricQueries: targets.apply((t) => {
        if (t.store.kind !== "redis") throw new Error("alarm targets are not a Redis store");
        return [
          ...t.store.cacheClusterIds.map((id, i) => ({
            id: `m${i}`,
            returnData: false,
            metric: {
              namespace: "AWS/ElastiCache",
              metricName: metric,
              dimensions: { CacheClusterId: id },
              period: ALARM_PERIOD_SECONDS,
              stat: "Maximum",
            },
          })),
          { id: "highest", expression: "MAX(METRICS())", label: metric, returnData: true },
        ];
      }),
    },
    opts,
  );
}

/** What every alarm shares: actions, one evaluation period, missing data not breaching. */
type CommonAlarmArgs = Pick<
  aws.cloudwatch.MetricAlarmArgs,
  "alarmActions" | "okActions" | "evaluationPeriods" | "treatMissingData"
>;

/**
 * The `$connect` authorizer's alarm: its failures, not its refusals. Lambda counts a rejected token as a function
 * error (the authorizer throws `Error("Unauthorized")` for API Gateway to answer 401), so a plain `Errors` alarm
 * would page on every bad or expired token. This one watches `Errors` minus the rejections the authorizer logged
 * (authorizer.ts's metric filter): what is left are crashes, timeouts and key-set outages, which throw anything
 * but `Unauthorized` (API Gateway answers 500) and log no rejection. FILL(…, 0): a period with errors and no
 * rejection (the filter publishes nothing then) must still count, and so must the reverse.
 */
function authorizerAlarm(
  name: string,
  label: string,
  functionName: pulumi.Output<string>,
  common: CommonAlarmArgs,
  opts: pulumi.CustomResourceOptions,
): aws.cloudwatch.MetricAlarm {
  const rejected = rejectionMetric(name);
  return new aws.cloudwatch.MetricAlarm(
    `${name}-${label}-errors-alarm`,
    {
      ...common,
      // Three periods in a row: a rejection whose error and log line fall into two periods makes one +1, which
      // must not page; crashes at start-up and timeouts (which log no line) persist. The faults alarm pages at once
      // on the failures that do log.
      evaluationPeriods: PERSISTENT_PERIODS,
      datapointsToAlarm: PERSISTENT_PERIODS,
      alarmDescription: functionName.apply(
        (fn) =>
          `The $connect authorizer ${fn} failed (a crash, a timeout, the key set unreachable: API Gateway answered ` +
          `500): AWS/Lambda Errors minus the token rejections it logged (${rejected.namespace} ` +
          `${rejected.metricName}, its log lines ${REJECTION_PATTERN}; each rejection is a Lambda error too) >= 1 ` +
          `in each of ${PERSISTENT_PERIODS} periods of ${ALARM_PERIOD_MINUTES} min in a row. Rejected tokens (401) do not count.`,
      ),
      comparisonOperator: "GreaterThanOrEqualToThreshold",
      threshold: 1,
      metricQueries: [
        {
          id: "errors",
          returnData: false,
          metric: {
            namespace: "AWS/Lambda",
            metricName: "Errors",
            dimensions: { FunctionName: functionName },
            period: ALARM_PERIOD_SECONDS,
            stat: "Sum",
          },
        },
        {
          id: "rejected",
          returnData: false,
          metric: {
            namespace: rejected.namespace,
            metricName: rejected.metricName,
            period: ALARM_PERIOD_SECONDS,
            stat: "Sum",
          },
        },
        { id: "failures", expression: AUTHORIZER_FAILURES_EXPRESSION, label: "Errors - Rejected", returnData: true },
      ],
    },
    opts,
  );
}

/** The authorizer's own failures, from its decision lines: pages on the first one (API Gateway answered 500). */
function authorizerFaultsAlarm(
  name: string,
  common: CommonAlarmArgs,
  opts: pulumi.CustomResourceOptions,
): aws.cloudwatch.MetricAlarm {
  const faults = faultMetric(name);
  return new aws.cloudwatch.MetricAlarm(
    `${name}-${AUTHORIZER.name}-faults-alarm`,
    {
      ...common,
      alarmDescription:
        `The $connect authorizer failed (the key set unreachable, a bug: API Gateway answered 500): ` +
        `${faults.namespace} ${faults.metricName} (Sum, its log lines ${FAULT_PATTERN}) >= 1 in ` +
        `${ALARM_PERIOD_MINUTES} min.`,
      period: ALARM_PERIOD_SECONDS,
      namespace: faults.namespace,
      metricName: faults.metricName,
      statistic: "Sum",
      comparisonOperator: "GreaterThanOrEqualToThreshold",
      threshold: 1,
    },
    opts,
  );
}
