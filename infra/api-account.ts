/**
 * The API Gateway account setting that lets API Gateway write CloudWatch Logs (the stage's access log needs it:
 * "CloudWatch Logs role ARN must be set in account settings"). It is one setting per account and region, shared
 * by every API there, so it is created only when stack config says the account has none, and it is retained
 * when the stack is deleted: deleting one stack must not break access logging for every other API.
 */
import * as aws from "@pulumi/aws";
import * as pulumi from "@pulumi/pulumi";

/** AWS's managed policy for exactly this role: create log groups and streams, put events. */
export const API_GATEWAY_LOGS_POLICY = "AmazonAPIGatewayPushToCloudWatchLogs";

export const API_GATEWAY_ASSUME_ROLE_POLICY = {
  Version: "2012-10-17",
  Statement: [{ Effect: "Allow", Principal: { Service: "apigateway.amazonaws.com" }, Action: "sts:AssumeRole" }],
} as const;

export interface ApiGatewayAccount {
  readonly role: aws.iam.Role;
  /** The account setting; stages with access logs must be created after it. */
  readonly account: aws.apigateway.Account;
}

export function createApiGatewayAccount(name: string, parent: pulumi.Resource): ApiGatewayAccount {
  // retainOnDelete on all three: `pulumi destroy` forgets them instead of deleting them. The provider resets the
  // account setting when an Account resource is deleted, which would break every other API's access logs.
  const opts: pulumi.CustomResourceOptions = { parent, retainOnDelete: true };
  const partition = aws.getPartitionOutput({}, { parent }).partition;

  const role = new aws.iam.Role(
    `${name}-apigateway-logs-role`,
    {
      assumeRolePolicy: JSON.stringify(API_GATEWAY_ASSUME_ROLE_POLICY),
      description: "API Gateway CloudWatch Logs role of this account and region (account settings)",
    },
    opts,
  );
  const attachment = new aws.iam.RolePolicyAttachment(
    `${name}-apigateway-logs-policy`,
    {
      role: role.name,
      policyArn: pulumi.interpolate`arn:${partition}:iam::aws:policy/service-role/${API_GATEWAY_LOGS_POLICY}`,
    },
    opts,
  );
  const account = new aws.apigateway.Account(
    `${name}-apigateway-account`,
    { cloudwatchRoleArn: role.arn },
    // API Gateway checks the role's permissions when the setting is saved.
    { ...opts, dependsOn: [attachment] },
  );
  return { role, account };
}
