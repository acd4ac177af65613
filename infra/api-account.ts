/**
 * The API Gateway account setting that lets API Gateway write CloudWatch Logs (the stage's access log needs it:
 * "CloudWatch Logs role ARN must be set in account settings"), so that the first `pulumi up` in a fresh account
 * or region works with the default config. It is one setting per account and region, shared by every API there:
 * the current setting is read first and the role is created only when none is set, as SST does
 * (`platform/src/components/aws/helpers/apigateway-account.ts`); what is created is retained when the stack is
 * deleted, since deleting one stack must not break access logging for every other API.
 */
import * as aws from "@pulumi/aws";
import * as pulumi from "@pulumi/pulumi";

/** AWS's managed policy for exactly this role: create log groups and streams, put events. */
export const API_GATEWAY_LOGS_POLICY = "AmazonAPIGatewayPushToCloudWatchLogs";

export const API_GATEWAY_ASSUME_ROLE_POLICY = {
  Version: "2012-10-17",
  Statement: [{ Effect: "Allow", Principal: { Service: "apigateway.amazonaws.com" }, Action: "sts:AssumeRole" }],
} as const;

/** The id under which the provider reads the account settings (there is one per account and region). */
export const API_GATEWAY_ACCOUNT_ID = "APIGatewayAccount";

export interface ApiGatewayAccount {
  /**
   * What a stage with access logs must wait for: the account setting as read when one is already set, else the
   * setting this stack creates.
   */
  readonly ready: pulumi.Output<pulumi.Resource[]>;
}

export function ensureApiGatewayAccount(name: string, parent: pulumi.Resource): ApiGatewayAccount {
  const current = aws.apigateway.Account.get(`${name}-apigateway-account-current`, API_GATEWAY_ACCOUNT_ID, undefined, {
    parent,
  });
  const roleName = accountRoleName(name);
  // Created inside apply because whether to create depends on the account as read; reads resolve at preview,
  // so the plan shows what will be created. A setting that names the role this stack created is still this
  // stack's: it keeps declaring it, or the next `pulumi up` would plan to forget all three (SST's helper has
  // that churn on every second deploy).
  const ready = current.cloudwatchRoleArn.apply((arn): pulumi.Resource[] =>
    arn && !arn.endsWith(`:role/${roleName}`) ? [current] : [createApiGatewayAccount(name, roleName, parent)],
  );
  return { ready };
}

/**
 * The role's physical name: fixed, so that the setting can be recognised as this stack's, and with the stack in
 * it, so that two stacks of this project in one account and region never both claim the setting.
 */
export function accountRoleName(name: string): string {
  return `${name}-${pulumi.getStack()}-apigw-logs`.slice(0, 64);
}

function createApiGatewayAccount(name: string, roleName: string, parent: pulumi.Resource): aws.apigateway.Account {
  // retainOnDelete on all three: `pulumi destroy` forgets them instead of deleting them. The provider resets the
  // account setting when an Account resource is deleted, which would break every other API's access logs.
  const opts: pulumi.CustomResourceOptions = { parent, retainOnDelete: true };
  const partition = aws.getPartitionOutput({}, { parent }).partition;

  const role = new aws.iam.Role(
    `${name}-apigateway-logs-role`,
    {
      name: roleName,
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
  return account;
}
