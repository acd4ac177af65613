/**
 * The `$connect` Lambda REQUEST authorizer (stack config `auth: jwt`): its own function (bundled from
 * `handlers/<AUTHORIZER.module>.ts`), log group and role (logs only: it fetches a public key set and touches
 * nothing of ours), the API Gateway authorizer with one identity source, the permission for API Gateway to
 * invoke it from that authorizer only, and a metric filter counting its token rejections (which its alarm
 * subtracts from its Lambda errors, alarms.ts). The `$connect` route attaches it (chat-route.ts).
 */
import * as aws from "@pulumi/aws";
import * as pulumi from "@pulumi/pulumi";
import { type AuthSettings, authSettingsEnv } from "../contract/auth-settings";
import { AUTHORIZER, AUTHORIZER_OUTCOMES, identitySources, type TokenSource } from "../contract/routes";
import { handlerArchive, LAMBDA_HANDLER, LAMBDA_RUNTIME } from "./bundle";
import type { FunctionLogLevel } from "./config";
import { LAMBDA_ASSUME_ROLE_POLICY, type PolicyDocument, XRAY_ACTIONS } from "./iam";

/** API Gateway gives a Lambda authorizer 10 s; the function's own timeout matches. */
export const AUTHORIZER_TIMEOUT_SECONDS = 10;

export interface ConnectAuthorizerArgs {
  readonly api: aws.apigatewayv2.Api;
  readonly jwt: AuthSettings;
  readonly tokenSource: TokenSource;
  readonly logRetentionDays: number;
  readonly memorySize: number;
  readonly logLevel?: FunctionLogLevel;
  readonly tracing?: boolean;
}

export interface ConnectAuthorizer {
  readonly authorizer: aws.apigatewayv2.Authorizer;
  readonly fn: aws.lambda.Function;
  readonly role: aws.iam.Role;
  readonly logGroup: aws.cloudwatch.LogGroup;
  /** Counts the authorizer's rejections into {@link rejectionMetric}. */
  readonly rejections: aws.cloudwatch.LogMetricFilter;
  /** Counts the authorizer's own failures into {@link faultMetric}. */
  readonly faults: aws.cloudwatch.LogMetricFilter;
}

/**
 * The metric of the tokens the authorizer rejected (it answered 401), one per `outcome: "unauthorized"` line of
 * its log. Why it exists: a rejection throws `Error("Unauthorized")`, which is how API Gateway is told to answer
 * 401, and Lambda counts every such throw in `AWS/Lambda Errors`. Only the log line tells a bad token from a
 * failure of ours, so the authorizer's alarm watches Errors minus this.
 */
export function rejectionMetric(name: string): { readonly namespace: string; readonly metricName: string } {
  return { namespace: `${name}/${pulumi.getStack()}`, metricName: "AuthorizerRejections" };
}

/** The filter pattern of {@link rejectionMetric}: the authorizer's JSON decision lines that rejected a token. */
export const REJECTION_PATTERN = `{ $.outcome = "${AUTHORIZER_OUTCOMES.unauthorized}" }`;

/**
 * The metric of the authorizer's own failures (it answered 500: the key set unreachable, a bug), one per
 * `outcome: "fault"` line. One source for the count, so unlike Errors minus rejections it cannot be thrown off
 * by an error and its log line falling into different periods.
 */
export function faultMetric(name: string): { readonly namespace: string; readonly metricName: string } {
  return { namespace: `${name}/${pulumi.getStack()}`, metricName: "AuthorizerFaults" };
}

/** The filter pattern of {@link faultMetric}. */
export const FAULT_PATTERN = `{ $.outcome = "${AUTHORIZER_OUTCOMES.fault}" }`;

/**
 * The authorizer's application log level: the configured one, but never above INFO. Lambda drops JSON lines
 * below it, and the rejections the alarm subtracts are INFO lines: at WARN or ERROR they would be dropped and
 * every bad token would page as a failure.
 */
export function authorizerLogLevel(configured: FunctionLogLevel | undefined): FunctionLogLevel {
  return configured === "DEBUG" ? "DEBUG" : "INFO";
}

/** The authorizer's policy: write its own logs (and X-Ray segments when tracing), nothing else. */
export function authorizerPolicy(logGroupArn: string, tracing = false): PolicyDocument {
  return {
    Version: "2012-10-17",
    Statement: [
      {
        Sid: "WriteOwnLogs",
        Effect: "Allow",
        Action: ["logs:CreateLogStream", "logs:PutLogEvents"],
        Resource: [`${logGroupArn}:*`],
      },
      ...(tracing ? [{ Sid: "XRayTracing", Effect: "Allow" as const, Action: XRAY_ACTIONS, Resource: ["*"] }] : []),
    ],
  };
}

export function createConnectAuthorizer(
  name: string,
  args: ConnectAuthorizerArgs,
  parent: pulumi.Resource,
): ConnectAuthorizer {
  const prefix = `${name}-${AUTHORIZER.name}`;
  const logGroup = new aws.cloudwatch.LogGroup(
    `${prefix}-logs`,
    { name: `/aws/lambda/${name}-${pulumi.getStack()}-${AUTHORIZER.name}`, retentionInDays: args.logRetentionDays },
    { parent },
  );
  const role = new aws.iam.Role(
    `${prefix}-role`,
    { assumeRolePolicy: JSON.stringify(LAMBDA_ASSUME_ROLE_POLICY), description: "Chat $connect authorizer" },
    { parent },
  );
  const policy = new aws.iam.RolePolicy(
    `${prefix}-policy`,
    {
      role: role.id,
      policy: logGroup.arn.apply((arn) => JSON.stringify(authorizerPolicy(arn, args.tracing ?? false))),
    },
    { parent },
  );
  const stackLevel = args.logLevel ?? "INFO";
  const fn = new aws.lambda.Function(
    prefix,
    {
      description: "Chat $connect JWT authorizer",
      runtime: LAMBDA_RUNTIME,
      architectures: ["arm64"],
      handler: LAMBDA_HANDLER,
      code: handlerArchive(AUTHORIZER.module),
      role: role.arn,
      memorySize: args.memorySize,
      timeout: AUTHORIZER_TIMEOUT_SECONDS,
      environment: { variables: authSettingsEnv(args.jwt) },
      loggingConfig: {
        logFormat: "JSON",
        logGroup: logGroup.name,
        applicationLogLevel: authorizerLogLevel(stackLevel),
        // The platform's lines (START, END, REPORT) follow the stack's level, as for every function.
        systemLogLevel: stackLevel === "ERROR" ? "WARN" : stackLevel,
      },
      tracingConfig: args.tracing ? { mode: "Active" } : undefined,
    },
    { parent, dependsOn: [logGroup, policy] },
  );
  const authorizer = new aws.apigatewayv2.Authorizer(
    `${name}-connect-authorizer`,
    {
      apiId: args.api.id,
      authorizerType: "REQUEST",
      authorizerUri: fn.invokeArn,
      // API Gateway answers 401 without calling the function when any of these is missing, so there is one.
      identitySources: identitySources(args.tokenSource),
      name: `${name}-connect-jwt`,
    },
    { parent },
  );
  new aws.lambda.Permission(
    `${prefix}-invoke`,
    {
      action: "lambda:InvokeFunction",
      function: fn.name,
      principal: "apigateway.amazonaws.com",
      sourceArn: pulumi.interpolate`${args.api.executionArn}/authorizers/${authorizer.id}`,
    },
    { parent },
  );
  const countLines = (suffix: string, pattern: string, metric: { namespace: string; metricName: string }) =>
    new aws.cloudwatch.LogMetricFilter(
      `${prefix}-${suffix}`,
      {
        logGroupName: logGroup.name,
        pattern,
        metricTransformation: { namespace: metric.namespace, name: metric.metricName, value: "1", unit: "Count" },
      },
      { parent },
    );
  const rejections = countLines("rejections", REJECTION_PATTERN, rejectionMetric(name));
  const faults = countLines("faults", FAULT_PATTERN, faultMetric(name));
  return { authorizer, fn, role, logGroup, rejections, faults };
}
