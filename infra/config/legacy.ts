/**
 * Keys of the earlier, flat configuration (`redis.nodeType`, `auth.issuer` …). A stack file written with them
 * gets one error per key naming its new spelling, instead of the key being silently ignored: the CLI keeps a
 * stack file's dotted key as ONE flat key (it never reaches the object key `redis`), so without this check the
 * setting would simply not apply.
 */
import { fullKey, type SettingPath } from "./schema";

/** Old flat key → the setting that replaced it. */
export const LEGACY_KEYS: Readonly<Record<string, SettingPath>> = {
  "throttle.rateLimit": "throttle.rateLimit",
  "throttle.burstLimit": "throttle.burstLimit",
  "redis.nodeType": "redis.nodeType",
  "redis.engineVersion": "redis.engineVersion",
  "redis.authToken": "redisAuthToken",
  "redis.vpcId": "redis.vpcId",
  "redis.subnetIds": "redis.subnetIds",
  "redis.replicas": "redis.replicas",
  "alarms.topicArn": "alarms.topicArn",
  "alarms.email": "alarms.email",
  "domain.name": "domain.name",
  "domain.certificateArn": "domain.certificateArn",
  "domain.zoneId": "domain.zoneId",
  "auth.issuer": "jwt.issuer",
  "auth.audience": "jwt.audience",
  "auth.jwksUrl": "jwt.jwksUrl",
  "auth.tokenSource": "jwt.tokenSource",
  "auth.queryParam": "jwt.queryParam",
  "auth.header": "jwt.header",
  "auth.algorithms": "jwt.algorithms",
  "rateLimit.messages": "rateLimit.messages",
  "rateLimit.windowSeconds": "rateLimit.windowSeconds",
  "fanout.concurrency": "fanout.concurrency",
  "fanout.postTimeoutMs": "fanout.postTimeoutMs",
  "fanout.memorySize": "fanout.memorySize",
  "fanout.inlineMax": "fanout.inlineMax",
  "fanout.shardSize": "fanout.shardSize",
};

/** The error for an old key, with the command and the stack-file form of the new one. */
export function legacyKeyProblem(oldKey: string, replacement: SettingPath): string {
  const [group, field] = replacement.split(".");
  const head = `Config ${fullKey(oldKey)} is no longer read`;
  if (field === undefined) {
    return `${head}: it is now the key ${fullKey(group!)}: \`pulumi config set --secret ${group} <value>\``;
  }
  return (
    `${head}: it is now field ${field} of the object key ${fullKey(group!)}: ` +
    `\`pulumi config set --path ${replacement} <value>\`, or in the stack file ` +
    `\`${fullKey(group!)}: { ${field}: <value> }\``
  );
}
