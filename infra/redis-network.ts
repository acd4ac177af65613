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
import type { ExistingNetwork, NatGateways } from "./config";

export const REDIS_PORT = 6379;
const HTTPS_PORT = 443;

const VPC_CIDR = "10.0.0.0/16";
const PRIVATE_SUBNET_CIDRS = ["10.0.0.0/20", "10.0.16.0/20"] as const;
/** One public subnet per NAT gateway: the first serves a single-NAT VPC, both serve one NAT per zone. */
const PUBLIC_SUBNET_CIDRS = ["10.0.128.0/24", "10.0.129.0/24"] as const;
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

  const groups = createSecurityGroups(name, base.vpcId, opts);
  allowFunctionTraffic(name, groups, opts);
  return { ...base, ...groups };
}

type SecurityGroups = Pick<RedisNetwork, "functionsSecurityGroup" | "redisSecurityGroup">;

/** The functions' group and Redis's, each empty until {@link allowFunctionTraffic} adds its rules. */
function createSecurityGroups(
  name: string,
  vpcId: pulumi.Input<string>,
  opts: pulumi.CustomResourceOptions,
): SecurityGroups {
  const functionsSecurityGroup = new aws.ec2.SecurityGroup(
    `${name}-functions-sg`,
    {
      vpcId,
      description: "Chat functions that use the Redis store",
      tags: { Name: `${name}-functions` },
    },
    opts,
  );
  const redisSecurityGroup = new aws.ec2.SecurityGroup(
    `${name}-redis-sg`,
    {
      vpcId,
      description: "Redis store: reachable from the chat functions only",
      tags: { Name: `${name}-redis` },
    },
    opts,
  );

  return { functionsSecurityGroup, redisSecurityGroup };
}

/** Redis accepts the functions only; the functions reach Redis, and HTTPS anywhere through NAT. */
function allowFunctionTraffic(
  name: string,
  { functionsSecurityGroup, redisSecurityGroup }: SecurityGroups,
  opts: pulumi.CustomResourceOptions,
): void {
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
}

type CreatedVpc = Pick<RedisNetwork, "vpcId" | "privateSubnetIds" | "egressReady">;

/** A zone's way out: its public subnet (routed to the internet gateway), NAT gateway and private route table. */
interface ZoneEgress {
  readonly natGateway: aws.ec2.NatGateway;
  readonly publicAssociation: aws.ec2.RouteTableAssociation;
  readonly privateRoutes: aws.ec2.RouteTable;
}

/** What every step of {@link createVpc} builds on. */
interface VpcContext {
  readonly name: string;
  readonly vpc: aws.ec2.Vpc;
  /** The name of the `index`th available zone of the region. */
  readonly zone: (index: number) => pulumi.Output<string>;
  readonly opts: pulumi.CustomResourceOptions;
}

function createVpc(name: string, natGateways: NatGateways, parent: pulumi.Resource): CreatedVpc {
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
  const context: VpcContext = { name, vpc, zone: availabilityZones(parent), opts };

  const privateSubnets = createPrivateSubnets(context);
  const { internetGateway, publicRoutes } = createInternetRoute(context);
  const egressCidrs = natGateways === "perAz" ? PUBLIC_SUBNET_CIDRS : PUBLIC_SUBNET_CIDRS.slice(0, 1);
  const egress = egressCidrs.map((cidrBlock, index) =>
    createZoneEgress(context, index, cidrBlock, internetGateway, publicRoutes),
  );
  const privateAssociations = routePrivateSubnets(context, privateSubnets, egress);

  return {
    vpcId: vpc.id,
    privateSubnetIds: pulumi.all(privateSubnets.map((subnet) => subnet.id)),
    egressReady: [
      ...egress.flatMap((zoneEgress) => [zoneEgress.natGateway, zoneEgress.publicAssociation]),
      ...privateAssociations,
    ],
  };
}

function availabilityZones(parent: pulumi.Resource): (index: number) => pulumi.Output<string> {
  const zones = aws.getAvailabilityZonesOutput({ state: "available" }, { parent });
  return (index) =>
    zones.names.apply((names) => {
      const zoneName = names[index];
      if (!zoneName) throw new Error(`the region has ${names.length} availability zones; Redis needs 2`);
      return zoneName;
    });
}

/** One private subnet per zone, for ElastiCache and the VPC functions. */
function createPrivateSubnets({ name, vpc, zone, opts }: VpcContext): aws.ec2.Subnet[] {
  return PRIVATE_SUBNET_CIDRS.map(
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
}

/** The internet gateway and the public route table that sends everything to it. */
function createInternetRoute({ name, vpc, opts }: VpcContext): {
  readonly internetGateway: aws.ec2.InternetGateway;
  readonly publicRoutes: aws.ec2.RouteTable;
} {
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
  return { internetGateway, publicRoutes };
}

/** Zone 1's resources keep the names a single-NAT VPC has, so switching to perAz only adds zone 2's. */
const zoneSuffix = (index: number) => (index === 0 ? "" : `-${index + 1}`);

function createZoneEgress(
  { name, vpc, zone, opts }: VpcContext,
  index: number,
  cidrBlock: string,
  internetGateway: aws.ec2.InternetGateway,
  publicRoutes: aws.ec2.RouteTable,
): ZoneEgress {
  const suffix = zoneSuffix(index);
  const publicSubnet = new aws.ec2.Subnet(
    `${name}-public${suffix}`,
    {
      vpcId: vpc.id,
      cidrBlock,
      availabilityZone: zone(index),
      mapPublicIpOnLaunch: false,
      tags: { Name: `${name}-public${suffix}` },
    },
    opts,
  );
  const publicAssociation = new aws.ec2.RouteTableAssociation(
    `${name}-public-rta${suffix}`,
    { subnetId: publicSubnet.id, routeTableId: publicRoutes.id },
    opts,
  );
  const natAddress = new aws.ec2.Eip(
    `${name}-nat-ip${suffix}`,
    { domain: "vpc", tags: { Name: `${name}-nat${suffix}` } },
    opts,
  );
  const natGateway = new aws.ec2.NatGateway(
    `${name}-nat${suffix}`,
    { allocationId: natAddress.id, subnetId: publicSubnet.id, tags: { Name: `${name}${suffix}` } },
    // A NAT gateway created before its VPC has an internet gateway never gets a working route out.
    { ...opts, dependsOn: [internetGateway] },
  );
  const privateRoutes = new aws.ec2.RouteTable(
    `${name}-private-rt${suffix}`,
    {
      vpcId: vpc.id,
      routes: [{ cidrBlock: ANYWHERE, natGatewayId: natGateway.id }],
      tags: { Name: `${name}-private${suffix}` },
    },
    opts,
  );
  return { natGateway, publicAssociation, privateRoutes };
}

/** Each private subnet routes through the NAT gateway of its own zone when there is one per zone. */
function routePrivateSubnets(
  { name, opts }: VpcContext,
  privateSubnets: readonly aws.ec2.Subnet[],
  egress: readonly ZoneEgress[],
): aws.ec2.RouteTableAssociation[] {
  return privateSubnets.map(
    (subnet, index) =>
      new aws.ec2.RouteTableAssociation(
        `${name}-private-rta-${index + 1}`,
        { subnetId: subnet.id, routeTableId: (egress[index] ?? egress[0]!).privateRoutes.id },
        opts,
      ),
  );
}
