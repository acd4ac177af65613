/**
 * The network a Redis store needs: private subnets for ElastiCache and the functions that talk to it, a NAT
 * route out (the functions also post to the public `@connections` endpoint), and the two security groups that
 * let only those functions reach Redis.
 *
 * There is deliberately no execute-api interface endpoint: with private DNS it captures the `@connections`
 * host and calls fail with 403 ForbiddenException, because it only serves private APIs.
 */
import * as aws from "@pulumi/aws";
import * as pulumi from "@pulumi/pulumi";
import type { ExistingNetwork } from "./config";

export const REDIS_PORT = 6379;
const HTTPS_PORT = 443;

const VPC_CIDR = "10.0.0.0/16";
const PRIVATE_SUBNET_CIDRS = ["10.0.0.0/20", "10.0.16.0/20"] as const;
const PUBLIC_SUBNET_CIDR = "10.0.128.0/24";
const ANYWHERE = "0.0.0.0/0";

export interface RedisNetwork {
  readonly vpcId: pulumi.Output<string>;
  /** Where ElastiCache and the VPC functions run. */
  readonly privateSubnetIds: pulumi.Output<string[]>;
  /** Attached to every function that uses the store; the only source Redis accepts. */
  readonly functionsSecurityGroup: aws.ec2.SecurityGroup;
  readonly redisSecurityGroup: aws.ec2.SecurityGroup;
  /** What must exist before a VPC function can reach the internet (empty for an existing network). */
  readonly egressReady: readonly pulumi.Resource[];
}

/**
 * Uses `existing` when given (its subnets must already route to a NAT), otherwise creates a small VPC: two
 * private subnets in two availability zones, one public subnet with the internet gateway and a NAT gateway.
 */
export function createRedisNetwork(
  name: string,
  existing: ExistingNetwork | undefined,
  parent: pulumi.Resource,
): RedisNetwork {
  const opts = { parent };
  const base = existing
    ? {
        vpcId: pulumi.output(existing.vpcId),
        privateSubnetIds: pulumi.output([...existing.subnetIds]),
        egressReady: [] as pulumi.Resource[],
      }
    : createVpc(name, parent);

  const functionsSecurityGroup = new aws.ec2.SecurityGroup(
    `${name}-functions-sg`,
    {
      vpcId: base.vpcId,
      description: "Chat functions that use the Redis store",
      tags: { Name: `${name}-functions` },
    },
    opts,
  );
  const redisSecurityGroup = new aws.ec2.SecurityGroup(
    `${name}-redis-sg`,
    {
      vpcId: base.vpcId,
      description: "Redis store: reachable from the chat functions only",
      tags: { Name: `${name}-redis` },
    },
    opts,
  );

  new aws.vpc.SecurityGroupIngressRule(
    `${name}-redis-from-functions`,
    {
      securityGroupId: redisSecurityGroup.id,
      referencedSecurityGroupId: functionsSecurityGroup.id,
      ipProtocol: "tcp",
      fromPort: REDIS_PORT,
      toPort: REDIS_PORT,
      description: "Redis from the chat functions",
    },
    opts,
  );
  new aws.vpc.SecurityGroupEgressRule(
    `${name}-functions-to-redis`,
    {
      securityGroupId: functionsSecurityGroup.id,
      referencedSecurityGroupId: redisSecurityGroup.id,
      ipProtocol: "tcp",
      fromPort: REDIS_PORT,
      toPort: REDIS_PORT,
      description: "Redis store",
    },
    opts,
  );
  // The management API (@connections) and AWS APIs are public HTTPS endpoints, reached through NAT.
  new aws.vpc.SecurityGroupEgressRule(
    `${name}-functions-to-https`,
    {
      securityGroupId: functionsSecurityGroup.id,
      cidrIpv4: ANYWHERE,
      ipProtocol: "tcp",
      fromPort: HTTPS_PORT,
      toPort: HTTPS_PORT,
      description: "@connections and AWS APIs through NAT",
    },
    opts,
  );

  return { ...base, functionsSecurityGroup, redisSecurityGroup };
}

function createVpc(
  name: string,
  parent: pulumi.Resource,
): Pick<RedisNetwork, "vpcId" | "privateSubnetIds" | "egressReady"> {
  const opts = { parent };
  const vpc = new aws.ec2.Vpc(
    `${name}-vpc`,
    {
      cidrBlock: VPC_CIDR,
      // ElastiCache hands out a DNS name; the functions must be able to resolve it.
      enableDnsSupport: true,
      enableDnsHostnames: true,
      tags: { Name: name },
    },
    opts,
  );

  const zones = aws.getAvailabilityZonesOutput({ state: "available" }, { parent });
  const zone = (index: number) =>
    zones.names.apply((names) => {
      const zoneName = names[index];
      if (!zoneName) throw new Error(`the region has ${names.length} availability zones; Redis needs 2`);
      return zoneName;
    });

  const privateSubnets = PRIVATE_SUBNET_CIDRS.map(
    (cidrBlock, index) =>
      new aws.ec2.Subnet(
        `${name}-private-${index + 1}`,
        {
          vpcId: vpc.id,
          cidrBlock,
          availabilityZone: zone(index),
          mapPublicIpOnLaunch: false,
          tags: { Name: `${name}-private-${index + 1}` },
        },
        opts,
      ),
  );
  const publicSubnet = new aws.ec2.Subnet(
    `${name}-public`,
    {
      vpcId: vpc.id,
      cidrBlock: PUBLIC_SUBNET_CIDR,
      availabilityZone: zone(0),
      mapPublicIpOnLaunch: false,
      tags: { Name: `${name}-public` },
    },
    opts,
  );

  const internetGateway = new aws.ec2.InternetGateway(`${name}-igw`, { vpcId: vpc.id, tags: { Name: name } }, opts);
  const natAddress = new aws.ec2.Eip(`${name}-nat-ip`, { domain: "vpc", tags: { Name: `${name}-nat` } }, opts);
  const natGateway = new aws.ec2.NatGateway(
    `${name}-nat`,
    { allocationId: natAddress.id, subnetId: publicSubnet.id, tags: { Name: name } },
    // A NAT gateway created before its VPC has an internet gateway never gets a working route out.
    { parent, dependsOn: [internetGateway] },
  );

  const publicRoutes = new aws.ec2.RouteTable(
    `${name}-public-rt`,
    {
      vpcId: vpc.id,
      routes: [{ cidrBlock: ANYWHERE, gatewayId: internetGateway.id }],
      tags: { Name: `${name}-public` },
    },
    opts,
  );
  const publicAssociation = new aws.ec2.RouteTableAssociation(
    `${name}-public-rta`,
    { subnetId: publicSubnet.id, routeTableId: publicRoutes.id },
    opts,
  );

  const privateRoutes = new aws.ec2.RouteTable(
    `${name}-private-rt`,
    {
      vpcId: vpc.id,
      routes: [{ cidrBlock: ANYWHERE, natGatewayId: natGateway.id }],
      tags: { Name: `${name}-private` },
    },
    opts,
  );
  const privateAssociations = privateSubnets.map(
    (subnet, index) =>
      new aws.ec2.RouteTableAssociation(
        `${name}-private-rta-${index + 1}`,
        { subnetId: subnet.id, routeTableId: privateRoutes.id },
        opts,
      ),
  );

  return {
    vpcId: vpc.id,
    privateSubnetIds: pulumi.all(privateSubnets.map((subnet) => subnet.id)),
    egressReady: [natGateway, publicAssociation, ...privateAssociations],
  };
}
