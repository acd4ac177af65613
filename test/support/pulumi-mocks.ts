/**
 * Pulumi mocks that record every resource the program registers, with resolved inputs, and answer with the
 * synthetic attributes (ARNs, endpoints) the program reads back.
 */
import * as pulumi from "@pulumi/pulumi";

export const REGION = "us-east-1";
export const ACCOUNT = "123456789012";
export const ZONES = ["us-east-1a", "us-east-1b", "us-east-1c"];

/** Marker the Pulumi RPC layer uses for a secret value inside resolved inputs. */
const SIG_KEY = "4dabf18193072939515e22adb298388d";
const SECRET_SIG = "1b47061264138c4ac30d75fd1eb44270";

export interface RecordedResource {
  readonly type: string;
  readonly name: string;
  /** Inputs as sent to the engine; secrets still wrapped (see {@link plain} / {@link containsSecret}). */
  readonly inputs: Record<string, unknown>;
  readonly id: string;
  readonly state: Record<string, unknown>;
  /** A read of an existing resource (`Resource.get`), not one the program creates. */
  readonly read?: boolean;
}

export interface RecordedCall {
  readonly token: string;
  readonly inputs: Record<string, unknown>;
}

function isSecretWrapper(value: unknown): value is { value: unknown } {
  return typeof value === "object" && value !== null && (value as Record<string, unknown>)[SIG_KEY] === SECRET_SIG;
}

/** The value with every secret wrapper removed. */
export function plain<T = any>(value: unknown): T {
  if (isSecretWrapper(value)) return plain(value.value);
  if (Array.isArray(value)) return value.map((v) => plain(v)) as T;
  if (value !== null && typeof value === "object") {
    return Object.fromEntries(Object.entries(value).map(([k, v]) => [k, plain(v)])) as T;
  }
  return value as T;
}

/** Whether any part of the value was sent as a secret. */
export function containsSecret(value: unknown): boolean {
  if (isSecretWrapper(value)) return true;
  if (Array.isArray(value)) return value.some(containsSecret);
  if (value !== null && typeof value === "object") return Object.values(value).some(containsSecret);
  return false;
}

function attributesFor(type: string, name: string, id: string, inputs: Record<string, any>): Record<string, unknown> {
  const arn = (service: string, resource: string) => `arn:aws:${service}:${REGION}:${ACCOUNT}:${resource}`;
  switch (type) {
    case "aws:apigatewayv2/api:Api":
      return {
        apiEndpoint: `wss://${id}.execute-api.${REGION}.amazonaws.com`,
        executionArn: arn("execute-api", id),
        arn: `arn:aws:apigateway:${REGION}::/apis/${id}`,
      };
    case "aws:lambda/function:Function": {
      const functionArn = arn("lambda", `function:${name}`);
      return {
        name,
        arn: functionArn,
        invokeArn: `arn:aws:apigateway:${REGION}:lambda:path/2015-03-31/functions/${functionArn}/invocations`,
      };
    }
    case "aws:dynamodb/table:Table":
      return { name, arn: arn("dynamodb", `table/${name}`) };
    case "aws:cloudwatch/logGroup:LogGroup":
      return { arn: arn("logs", `log-group:${inputs.name ?? name}`) };
    case "aws:iam/role:Role":
      return { name, arn: `arn:aws:iam::${ACCOUNT}:role/${name}` };
    case "aws:elasticache/subnetGroup:SubnetGroup":
      return { name };
    case "aws:elasticache/replicationGroup:ReplicationGroup":
      return {
        primaryEndpointAddress: `master.${name}.abc123.use1.cache.amazonaws.com`,
        arn: arn("elasticache", `replicationgroup:${name}`),
        // ElastiCache names a group's nodes {groupId}-001, -002, …
        memberClusters: Array.from({ length: Number(inputs.numCacheClusters ?? 1) }, (_, i) => `${id}-00${i + 1}`),
      };
    case "aws:secretsmanager/secret:Secret":
      // Secrets Manager appends six random characters to the name in the ARN.
      return { arn: arn("secretsmanager", `secret:${name}-AbCdEf`) };
    case "aws:sqs/queue:Queue":
      return { name, arn: arn("sqs", name), url: `https://sqs.${REGION}.amazonaws.com/${ACCOUNT}/${name}` };
    case "aws:sns/topic:Topic":
      return { arn: arn("sns", name) };
    case "aws:cloudwatch/metricAlarm:MetricAlarm":
      return { arn: arn("cloudwatch", `alarm:${name}`) };
    case "aws:apigatewayv2/domainName:DomainName":
      return {
        domainNameConfiguration: {
          ...inputs.domainNameConfiguration,
          targetDomainName: `d-${name}.execute-api.${REGION}.amazonaws.com`,
          hostedZoneId: "Z1UJRXOUMOOFQ8",
        },
      };
    case "random:index/randomPassword:RandomPassword":
      return { result: "G".repeat(Number(inputs.length ?? 16)) };
    default:
      return { arn: arn("mock", `${type}/${name}`) };
  }
}

/** Records resources and calls; {@link reset} before each program run. */
export class RecordingMocks implements pulumi.runtime.Mocks {
  resources: RecordedResource[] = [];
  calls: RecordedCall[] = [];
  /**
   * The CloudWatch Logs role ARN the account's API Gateway settings already have, as a read of
   * `aws:apigateway/account:Account` answers; empty: a fresh account or region that has none.
   */
  accountCloudwatchRoleArn = "";

  reset(): void {
    this.resources = [];
    this.calls = [];
  }

  newResource(args: pulumi.runtime.MockResourceArgs): { id: string | undefined; state: Record<string, any> } {
    if (args.type === "aws:apigateway/account:Account" && args.id) {
      // A read (`Account.get`): the account's current settings, not a new resource.
      const state = { cloudwatchRoleArn: this.accountCloudwatchRoleArn };
      this.resources.push({ type: args.type, name: args.name, inputs: {}, id: args.id, state, read: true });
      return { id: args.id, state };
    }
    const id = `${args.name}-id`;
    const inputs = args.inputs as Record<string, unknown>;
    const state = { ...inputs, ...attributesFor(args.type, args.name, id, plain(inputs)) };
    this.resources.push({ type: args.type, name: args.name, inputs, id, state });
    return { id, state };
  }

  call(args: pulumi.runtime.MockCallArgs): Record<string, any> {
    this.calls.push({ token: args.token, inputs: args.inputs });
    switch (args.token) {
      case "aws:index/getAvailabilityZones:getAvailabilityZones":
        return { names: ZONES, zoneIds: ZONES.map((_, i) => `use1-az${i + 1}`), id: REGION };
      case "aws:index/getRegion:getRegion":
        return { name: REGION, region: REGION, id: REGION };
      case "aws:index/getPartition:getPartition":
        return { partition: "aws", dnsSuffix: "amazonaws.com", id: "aws" };
      case "aws:index/getCallerIdentity:getCallerIdentity":
        return { accountId: ACCOUNT, arn: `arn:aws:iam::${ACCOUNT}:user/test`, userId: "test", id: ACCOUNT };
      default:
        return args.inputs;
    }
  }

  ofType(type: string): RecordedResource[] {
    return this.resources.filter((r) => r.type === type);
  }

  named(name: string): RecordedResource {
    const found = this.resources.find((r) => r.name === name);
    if (!found) throw new Error(`no resource named ${name}; have ${this.resources.map((r) => r.name).join(", ")}`);
    return found;
  }
}

/** Resolves an output in a mocked run (undefined stays undefined). */
export function resolve<T>(output: pulumi.Input<T>): Promise<T> {
  return new Promise((done) => pulumi.output(output).apply((value) => done(value as T)));
}
