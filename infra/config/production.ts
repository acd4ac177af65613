/**
 * The production-readiness part of the stack configuration: data protection, log level, tracing, the account's
 * API Gateway logging role, dashboard, alarm notifications (`alarms.*`) and the custom domain (`domain.*`).
 * Problems go to the shared reader's list.
 */
import { fullKey, UNPROTECTED_STACK } from "./schema";
import type { ChatConfig, ConfigContext, CustomDomain, FunctionLogLevel } from "./types";
import { type ConfigReader, invalid } from "./values";

const SNS_TOPIC_ARN = /^arn:aws[a-z-]*:sns:[a-z0-9-]+:\d{12}:[A-Za-z0-9_-]{1,256}$/;
const EMAIL = /^[^\s@"]+@[^\s@"]+\.[^\s@"]+$/;
/** A DNS name API Gateway accepts for a custom domain: labels of letters, digits and inner hyphens, no wildcard. */
const DOMAIN_NAME = /^(?=.{1,253}$)(?:[a-z0-9](?:[a-z0-9-]{0,61}[a-z0-9])?\.)+[a-z]{2,63}$/;
const ACM_CERTIFICATE_ARN = /^arn:aws[a-z-]*:acm:([a-z0-9-]+):\d{12}:certificate\/[A-Za-z0-9-]+$/;
const HOSTED_ZONE_ID = /^Z[A-Z0-9]{1,32}$/;

type ProductionSettings = Pick<
  ChatConfig,
  "dataProtection" | "protect" | "logLevel" | "tracing" | "apiGatewayAccountRole" | "dashboard" | "alarms" | "domain"
>;

/** The production-readiness keys: data protection, observability and the custom domain. */
export function parseProduction(read: ConfigReader, stackName: string, context: ConfigContext): ProductionSettings {
  const problems = read.problems;
  const protection = read.string("dataProtection");
  const dataProtection = protection === "auto" ? stackName !== UNPROTECTED_STACK : protection === "true";

  // Any case, as Lambda's own log level setting takes it.
  const logLevel = read.string("logLevel", (level) => level.toUpperCase()) as FunctionLogLevel;

  const topicArn = read.string("alarms.topicArn");
  const email = read.string("alarms.email");
  if (topicArn && !SNS_TOPIC_ARN.test(topicArn)) {
    problems.push(
      invalid(
        "alarms.topicArn",
        topicArn,
        "a standard SNS topic ARN such as arn:aws:sns:us-east-1:123456789012:alerts",
      ),
    );
  }
  if (email && !EMAIL.test(email)) problems.push(invalid("alarms.email", email, "an email address"));
  if (topicArn && email) {
    problems.push(
      `Invalid config ${fullKey("alarms.topicArn")} and ${fullKey("alarms.email")}: set one or neither ` +
        `(an existing topic, or an email address for a topic the stack creates)`,
    );
  }

  return {
    dataProtection,
    protect: read.boolean("protect"),
    logLevel,
    tracing: read.boolean("tracing"),
    apiGatewayAccountRole: read.boolean("apiGatewayAccountRole"),
    dashboard: read.boolean("dashboard"),
    alarms: { ...(topicArn ? { topicArn } : {}), ...(email ? { email } : {}) },
    domain: parseDomain(read, context),
  };
}

function parseDomain(read: ConfigReader, context: ConfigContext): CustomDomain | undefined {
  const problems = read.problems;
  const name = read.string("domain.name") || undefined;
  const certificateArn = read.string("domain.certificateArn") || undefined;
  const zoneId = read.string("domain.zoneId") || undefined;
  if (name === undefined && certificateArn === undefined) {
    if (zoneId !== undefined) {
      problems.push(
        invalid("domain.zoneId", zoneId, "a hosted zone id together with domain.name", "domain.name is empty"),
      );
    }
    return undefined;
  }
  if (name === undefined || certificateArn === undefined) {
    problems.push(
      `Invalid config ${fullKey("domain.name")} and ${fullKey("domain.certificateArn")}: set both or neither ` +
        `(domain.name is ${name === undefined ? "empty" : JSON.stringify(name)}, ` +
        `domain.certificateArn is ${certificateArn === undefined ? "empty" : JSON.stringify(certificateArn)})`,
    );
    return undefined;
  }
  if (!DOMAIN_NAME.test(name)) {
    problems.push(invalid("domain.name", name, "a lower-case DNS name such as chat.example.com, no wildcard"));
  }
  const arn = ACM_CERTIFICATE_ARN.exec(certificateArn);
  if (!arn) {
    problems.push(
      invalid(
        "domain.certificateArn",
        certificateArn,
        "an ACM certificate ARN such as arn:aws:acm:us-east-1:123456789012:certificate/0a1b2c3d-…",
      ),
    );
  } else if (context.region && arn[1] !== context.region) {
    problems.push(
      invalid(
        "domain.certificateArn",
        certificateArn,
        `a certificate in ${context.region}, the stack's region`,
        "WebSocket APIs only have REGIONAL custom domains, which need the certificate in the API's region",
      ),
    );
  }
  if (zoneId !== undefined && !HOSTED_ZONE_ID.test(zoneId)) {
    problems.push(invalid("domain.zoneId", zoneId, "a Route 53 hosted zone id such as Z0123456789ABCDEFGHIJ"));
  }
  return { name, certificateArn, ...(zoneId ? { zoneId } : {}) };
}
