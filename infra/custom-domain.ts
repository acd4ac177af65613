/**
 * A custom domain in front of the WebSocket API: a REGIONAL API Gateway domain name (the only kind WebSocket APIs
 * have), an API mapping of the stage at the domain's root, and optionally a Route 53 alias record.
 *
 * Only clients use the domain. The functions keep posting to the execute-api `@connections` endpoint
 * (`CALLBACK_URL`): the management API behind a custom domain answers 403 / "No method found".
 */
import * as aws from "@pulumi/aws";
import * as pulumi from "@pulumi/pulumi";
import type { CustomDomain } from "./config";

export interface ChatDomain {
  readonly domainName: aws.apigatewayv2.DomainName;
  readonly mapping: aws.apigatewayv2.ApiMapping;
  /** Absent without `zoneId`. */
  readonly record?: aws.route53.Record;
  /** `wss://{name}`, resolved once the mapping exists (before that the domain serves nothing). */
  readonly url: pulumi.Output<string>;
}

export function createCustomDomain(
  name: string,
  domain: CustomDomain,
  api: aws.apigatewayv2.Api,
  stage: aws.apigatewayv2.Stage,
  parent: pulumi.Resource,
): ChatDomain {
  const opts = { parent };
  const domainName = new aws.apigatewayv2.DomainName(
    `${name}-domain`,
    {
      domainName: domain.name,
      domainNameConfiguration: {
        certificateArn: domain.certificateArn,
        endpointType: "REGIONAL",
        securityPolicy: "TLS_1_2",
      },
    },
    opts,
  );
  // No mapping key: the stage is served at the root, so clients connect to wss://{name} without a path.
  const mapping = new aws.apigatewayv2.ApiMapping(
    `${name}-domain-mapping`,
    { apiId: api.id, domainName: domainName.id, stage: stage.name },
    opts,
  );
  const record = domain.zoneId
    ? new aws.route53.Record(
        `${name}-domain-record`,
        {
          zoneId: domain.zoneId,
          name: domain.name,
          type: "A",
          aliases: [
            {
              name: domainName.domainNameConfiguration.targetDomainName,
              zoneId: domainName.domainNameConfiguration.hostedZoneId,
              // A regional API endpoint has no health of its own for Route 53 to evaluate.
              evaluateTargetHealth: false,
            },
          ],
        },
        opts,
      )
    : undefined;
  const url = pulumi.all([domainName.domainName, mapping.id]).apply(([host]) => `wss://${host}`);
  return { domainName, mapping, record, url };
}
