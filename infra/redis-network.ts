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
/** One public subnet per NAT gateway: the first serves a single-NAT VPC, both serve one NAT per zone. */
const PUBLIC_SUBNET_CIDRS = ["10.0.128.0/24", "10.0.129.0/24"] as const;
const ANYWHERE = "0.0.0.0/0";

/** NAT gateways of a VPC the stack creates. */
export type NatGateways = "single" | "perAz";

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
 * private subnets in two availability zones and the internet gateway, with one NAT gateway (`single`: its
 * zone's outage cuts both subnets off) or one per zone (`perAz`: each private subnet leaves through its own
 * zone, at the price of a second gateway).
 */
export function createRedisNetwork(
  name: string,
  existing: ExistingNetwork | undefined,
  natGateways: NatGateways,
  parent: pulumi.Resource,
): RedisNetwork {
  const opts = { parent };
  const base = existing
    ? {
        vpcId: pulumi.output(existing.vpcId),
        privateSubnetIds: pulumi.output([...existing.subnetIds]),
        egressReady: [] as pulumi.Resource[],
      }
    : createVpc(name, natGateways, parent);

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
  natGateways: NatGateways,
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
  const internetGateway = new aws.ec2.InternetGateway(`${name}-igw`, { vpcId: vpc.id, tags: { Name: name } }, opts);
  const publicRoutes = new aws.ec2.RouteTable(
    `${name}-public-rt`,
    {
      vpcId: vpc.id,
      routes: [{ cidrBlock: ANYWHERE, gatewayId: internetGateway.id }],
      tags: { Name: `${name}-public` },
    },
    opts,
  );

  // Zone 1's resources keep the names a single-NAT VPC has, so switching to perAz only adds zone 2's.
  const suffix = (index: number) => (index === 0 ? "" : `-${index + 1}`);
  const egress = (natGateways === "perAz" ? PUBLIC_SUBNET_CIDRS : PUBLIC_SUBNET_CIDRS.slice(0, 1)).map(
    (cidrBlock, index) => {
      const publicSubnet = new aws.ec2.Subnet(
        `${name}-public${suffix(index)}`,
        {
          vpcId: vpc.id,
          cidrBlock,
          availabilityZone: zone(index),
          mapPublicIpOnLaunch: false,
          tags: { Name: `${name}-public${suffix(index)}` },
        },
        opts,
      );
      const publicAssociation = new aws.ec2.RouteTableAssociation(
        `${name}-public-rta${suffix(index)}`,
        { subnetId: publicSubnet.id, routeTableId: publicRoutes.id },
        opts,
      );
      const natAddress = new aws.ec2.Eip(
        `${name}-nat-ip${suffix(index)}`,
        { domain: "vpc", tags: { Name: `${name}-nat${suffix(index)}` } },
        opts,
      );
      const natGateway = new aws.ec2.NatGateway(
        `${name}-nat${suffix(index)}`,
        { allocationId: natAddress.id, subnetId: publicSubnet.id, tags: { Name: `${name}${suffix(index)}` } },
        // A NAT gateway created before its VPC has an internet gateway never gets a working route out.
        { parent, dependsOn: [internetGateway] },
      );
      const privateRoutes = new aws.ec2.RouteTable(
        `${name}-private-rt${suffix(index)}`,
        {
          vpcId: vpc.id,
          routes: [{ cidrBlock: ANYWHERE, natGatewayId: natGateway.id }],
          tags: { Name: `${name}-private${suffix(index)}` },
        },
        opts,
      );
      return { natGateway, publicAssociation, privateRoutes };
    },
  );

  // Each private subnet routes through the NAT gateway of its own zone when there is one per zone.
  const privateAssociations = privateSubnets.map(
    (subnet, index) =>
      new aws.ec2.RouteTableAssociation(
        `${name}-private-rta-${index + 1}`,
        { subnetId: subnet.id, routeTableId: (egress[index] ?? egress[0]!).privateRoutes.id },
        opts,
      ),
  );

  return {
    vpcId: vpc.id,
    privateSubnetIds: pulumi.all(privateSubnets.map((subnet) => subnet.id)),
    egressReady: [
      ...egress.flatMap((zoneEgress) => [zoneEgress.natGateway, zoneEgress.publicAssociation]),
      ...privateAssociations,
    ],
  };
}
