/**
 * IAM policy documents, built from the route table: each function gets only what its route declares, on its
 * own resources. Pure functions over plain ARNs so tests can read the exact documents.
 */
import type { RouteDefinition, StoreAccess } from "../functions/routes";
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
 * stale connections in batches.
 */
export const DYNAMODB_ACTIONS: Readonly<Record<StoreAccess, readonly string[]>> = {
  write: ["dynamodb:PutItem"],
  delete: ["dynamodb:DeleteItem", "dynamodb:BatchWriteItem"],
  read: ["dynamodb:Scan", "dynamodb:GetItem"],
};

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
}

/** `execute-api:ManageConnections` resource: POST to `@connections` on this API and stage, nothing else. */
export function manageConnectionsArn(apiExecutionArn: string, stage: string): string {
  return `${apiExecutionArn}/${stage}/POST/@connections/*`;
}

export function functionPolicy(route: RouteDefinition, targets: FunctionPolicyTargets): PolicyDocument {
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
    if (!targets.tableArn) throw new Error(`route ${route.routeKey} needs the table ARN for its store access`);
    const actions = [...new Set(route.storeAccess.flatMap((access) => DYNAMODB_ACTIONS[access]))];
    statements.push({ Sid: "ConnectionStore", Effect: "Allow", Action: actions, Resource: [targets.tableArn] });
  }

  if (route.manageConnections) {
    statements.push({
      Sid: "PostToConnections",
      Effect: "Allow",
      Action: ["execute-api:ManageConnections"],
      Resource: [manageConnectionsArn(targets.apiExecutionArn, targets.stage)],
    });
  }

  if (targets.inVpc) {
    statements.push({ Sid: "VpcNetworkInterfaces", Effect: "Allow", Action: VPC_NETWORK_INTERFACE_ACTIONS, Resource: ["*"] });
  }

  return { Version: "2012-10-17", Statement: statements };
}
