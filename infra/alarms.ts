/**
 * CloudWatch alarms on what users notice first: functions failing, API Gateway failing to reach them, and the
 * store saturating. They notify an SNS topic: an existing one (`alarms.topicArn`), or one created here with an
 * email subscription (`alarms.email`). With neither, the alarms still exist (their state shows in the console
 * and on the dashboard's alarm list) but notify nobody.
 */
import * as aws from "@pulumi/aws";
import * as pulumi from "@pulumi/pulumi";
import type { AlarmNotifications } from "./config";
import type { MetricTargets } from "./dashboard";

/** The alarm period: five minutes, a balance between paging fast and paging on noise. */
export const ALARM_PERIOD_SECONDS = 300;
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
}

export function createAlarms(
  name: string,
  notifications: AlarmNotifications,
  shape: AlarmShape,
  targets: pulumi.Output<MetricTargets>,
  parent: pulumi.Resource,
): ChatAlarms {
  const opts = { parent };
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
  // OK actions too, so whoever was paged also learns that it recovered.
  const actions = topicArn ? { alarmActions: [topicArn], okActions: [topicArn] } : { alarmActions: [], okActions: [] };

  // Alarms on one metric also set `period`; metric-math alarms must not (their queries carry it).
  const common = {
    ...actions,
    evaluationPeriods: 1,
    // No data means no traffic, not a failure.
    treatMissingData: "notBreaching",
  };

  const alarms: aws.cloudwatch.MetricAlarm[] = shape.functionLabels.map((label, index) => {
    const functionName = targets.apply((t) => {
      const fn = t.functions[index];
      if (!fn || fn.label !== label) throw new Error(`alarm targets list no function ${label} at ${index}`);
      return fn.functionName;
    });
    return new aws.cloudwatch.MetricAlarm(
      `${name}-${label}-errors-alarm`,
      {
        ...common,
        alarmDescription: pulumi.interpolate`Function ${functionName} (${label}) threw or timed out`,
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
  });

  alarms.push(
    new aws.cloudwatch.MetricAlarm(
      `${name}-integration-errors-alarm`,
      {
        ...common,
        alarmDescription: "API Gateway got an error (or nothing) from a route's function",
        period: ALARM_PERIOD_SECONDS,
        namespace: "AWS/ApiGateway",
        metricName: "IntegrationError",
        dimensions: { ApiId: targets.apiId, Stage: targets.stage },
        statistic: "Sum",
        comparisonOperator: "GreaterThanOrEqualToThreshold",
        threshold: 1,
      },
      opts,
    ),
  );

  if (shape.store === "dynamodb") {
    alarms.push(
      new aws.cloudwatch.MetricAlarm(
        `${name}-store-throttles-alarm`,
        {
          ...common,
          alarmDescription: "DynamoDB throttled requests of the connection store",
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
      ),
    );
  } else {
    const redisAlarm = (suffix: string, metric: string, description: string, evaluationPeriods: number) =>
      new aws.cloudwatch.MetricAlarm(
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
    alarms.push(
      redisAlarm(
        "cpu",
        "EngineCPUUtilization",
        `Redis engine CPU at ${REDIS_SATURATION_PERCENT}% or more`,
        REDIS_CPU_PERIODS,
      ),
      redisAlarm(
        "memory",
        "DatabaseMemoryUsagePercentage",
        `Redis memory ${REDIS_SATURATION_PERCENT}% used or more`,
        1,
      ),
    );
  }

  return { topicArn, topic, alarms };
}
