/**
 * Who may connect and how much they may send, for `npm start`: the `$connect` JWT authorizer and the message
 * limits, from CLI flags, else from the stack file (`Pulumi.<stack>.yaml`, the same keys a deployment reads),
 * else the defaults (no authorizer, 20 messages per 10 s, 32 KB of data). The result is what the gateway and
 * the handlers get: the authorizer's identity sources and the AUTH_* / RATE_LIMIT_* / MAX_DATA_BYTES variables.
 *
 * One difference from a deployment: the key set URL may be plain http (a local identity provider); deployed
 * stacks require https.
 */
import { existsSync, readFileSync } from "node:fs";
import { join } from "node:path";
import { load } from "js-yaml";
import {
  type AuthSettings,
  authSettingsEnv,
  DEFAULT_TOKEN_QUERY_PARAM,
  parseAlgorithms,
} from "../contract/auth-settings";
import {
  DEFAULT_MESSAGE_LIMITS,
  MAX_CONNECTIONS_PER_USER_CEILING,
  MAX_DATA_BYTES_CEILING,
  type MessageLimits,
  messageLimitsEnv,
} from "../contract/message-limits";
import { identitySources, type TokenSource } from "../contract/routes";
import { PROJECT_NAME } from "../infra/config/schema";

/** The CLI flags this module reads (names as `parseArgs` gives them). */
export interface AccessFlags {
  readonly auth?: string;
  readonly "auth-issuer"?: string;
  readonly "auth-audience"?: string;
  readonly "auth-jwks-url"?: string;
  readonly "auth-token-source"?: string;
  readonly "auth-query-param"?: string;
  readonly "auth-header"?: string;
  readonly "auth-algorithms"?: string;
  readonly "rate-limit-messages"?: string;
  readonly "rate-limit-window"?: string;
  readonly "max-data-bytes"?: string;
  readonly "rate-limit-user-messages"?: string;
  readonly "rate-limit-broadcasts"?: string;
  readonly "max-connections-per-user"?: string;
}

export interface LocalAccess {
  /** Absent: anyone may connect (`auth: none`). */
  readonly auth?: {
    readonly settings: AuthSettings;
    readonly tokenSource: TokenSource;
    readonly identitySources: string[];
  };
  readonly limits: MessageLimits;
  /** Variables for the handlers and the authorizer. */
  readonly env: Readonly<Record<string, string>>;
  /** One line each for the startup banner. */
  readonly description: { readonly auth: string; readonly limits: string };
}

/** A problem with a flag or stack value; the message names the flag (and the stack key it mirrors). */
export class AccessOptionError extends Error {
  override readonly name = "AccessOptionError";
}

/**
 * The `auth`, `jwt`, `rateLimit` and `maxDataBytes` settings of a stack file, as strings keyed by setting path
 * (`jwt.issuer`, `rateLimit.messages`; lists as JSON), read the way a deployment reads them: `jwt` and
 * `rateLimit` are object keys whose fields are the settings.
 */
export function readStackAccess(projectDir: string, stack: string): Record<string, string> {
  const file = join(projectDir, `Pulumi.${stack}.yaml`);
  if (!existsSync(file)) return {};
  const doc = load(readFileSync(file, "utf8")) as { config?: Record<string, unknown> } | null;
  const config = doc?.config ?? {};
  const out: Record<string, string> = {};
  const text = (value: unknown) => (Array.isArray(value) ? JSON.stringify(value) : String(value));
  for (const key of ["auth", "maxDataBytes"]) {
    const value = config[`${PROJECT_NAME}:${key}`] ?? config[key];
    if (value !== null && value !== undefined) out[key] = text(value);
  }
  for (const group of ["jwt", "rateLimit"]) {
    const fields = config[`${PROJECT_NAME}:${group}`] ?? config[group];
    if (fields === null || typeof fields !== "object" || Array.isArray(fields)) continue;
    for (const [field, value] of Object.entries(fields)) {
      if (value !== null && value !== undefined) out[`${group}.${field}`] = text(value);
    }
  }
  return out;
}

export function resolveLocalAccess(flags: AccessFlags, stack: Readonly<Record<string, string>> = {}): LocalAccess {
  const pick = (flag: keyof AccessFlags, key: string): string | undefined => {
    const value = (flags[flag] ?? stack[key])?.trim();
    return value ? value : undefined;
  };
  const where = (flag: string, key: string) => `--${flag} (or ${PROJECT_NAME}:${key} in the stack file)`;

  const integer = (flag: keyof AccessFlags, key: string, fallback: number, min: number, max: number): number => {
    const raw = pick(flag, key);
    if (raw === undefined) return fallback;
    const value = /^\d+$/.test(raw) ? Number(raw) : Number.NaN;
    if (!Number.isSafeInteger(value) || value < min || value > max) {
      throw new AccessOptionError(`${where(flag, key)} must be an integer from ${min} to ${max}, got "${raw}"`);
    }
    return value;
  };
  const limits: MessageLimits = {
    messages: integer("rate-limit-messages", "rateLimit.messages", DEFAULT_MESSAGE_LIMITS.messages, 0, 1_000_000),
    windowSeconds: integer(
      "rate-limit-window",
      "rateLimit.windowSeconds",
      DEFAULT_MESSAGE_LIMITS.windowSeconds,
      1,
      86_400,
    ),
    maxDataBytes: integer(
      "max-data-bytes",
      "maxDataBytes",
      DEFAULT_MESSAGE_LIMITS.maxDataBytes,
      1,
      MAX_DATA_BYTES_CEILING,
    ),
    userMessages: integer(
      "rate-limit-user-messages",
      "rateLimit.userMessages",
      DEFAULT_MESSAGE_LIMITS.userMessages,
      0,
      1_000_000,
    ),
    broadcasts: integer(
      "rate-limit-broadcasts",
      "rateLimit.broadcasts",
      DEFAULT_MESSAGE_LIMITS.broadcasts,
      0,
      1_000_000,
    ),
    connectionsPerUser: integer(
      "max-connections-per-user",
      "rateLimit.connectionsPerUser",
      DEFAULT_MESSAGE_LIMITS.connectionsPerUser,
      0,
      MAX_CONNECTIONS_PER_USER_CEILING,
    ),
  };
  const limitsText =
    (limits.messages === 0
      ? "no rate limit"
      : `${limits.messages} messages per ${limits.windowSeconds} s per connection`) +
    `, data up to ${limits.maxDataBytes} bytes`;

  const mode = pick("auth", "auth") ?? "none";
  if (mode !== "none" && mode !== "jwt")
    throw new AccessOptionError(`${where("auth", "auth")} must be none or jwt, got "${mode}"`);
  if (mode === "none") {
    return {
      limits,
      env: messageLimitsEnv(limits),
      description: { auth: "none (anyone may connect)", limits: limitsText },
    };
  }

  const required = (flag: keyof AccessFlags, key: string): string => {
    const value = pick(flag, key);
    if (value === undefined) throw new AccessOptionError(`--auth jwt needs ${where(flag, key)}`);
    return value;
  };
  const issuer = required("auth-issuer", "jwt.issuer");
  const audience = required("auth-audience", "jwt.audience");
  const jwksUrl = required("auth-jwks-url", "jwt.jwksUrl");
  let url: URL | undefined;
  try {
    url = new URL(jwksUrl);
  } catch {
    url = undefined;
  }
  if (!url || (url.protocol !== "https:" && url.protocol !== "http:")) {
    throw new AccessOptionError(`${where("auth-jwks-url", "jwt.jwksUrl")} must be an http(s) URL, got "${jwksUrl}"`);
  }
  const name = /^[!#$%&'*+.^_`|~0-9A-Za-z-]{1,128}$/;
  const queryParam = pick("auth-query-param", "jwt.queryParam") ?? DEFAULT_TOKEN_QUERY_PARAM;
  if (!name.test(queryParam))
    throw new AccessOptionError(
      `${where("auth-query-param", "jwt.queryParam")} must be a parameter name, got "${queryParam}"`,
    );
  const header = pick("auth-header", "jwt.header");
  if (header !== undefined && !name.test(header))
    throw new AccessOptionError(`${where("auth-header", "jwt.header")} must be a header name, got "${header}"`);
  const source = pick("auth-token-source", "jwt.tokenSource") ?? "query";
  if (source !== "query" && source !== "header") {
    throw new AccessOptionError(
      `${where("auth-token-source", "jwt.tokenSource")} must be query or header, got "${source}"`,
    );
  }
  if (source === "header" && header === undefined) {
    throw new AccessOptionError(`--auth-token-source header needs ${where("auth-header", "jwt.header")}`);
  }
  let algorithmsRaw = pick("auth-algorithms", "jwt.algorithms") ?? "";
  if (flags["auth-algorithms"] === undefined && algorithmsRaw.startsWith("[")) {
    algorithmsRaw = (JSON.parse(algorithmsRaw) as string[]).join(",");
  }
  let algorithms: ReturnType<typeof parseAlgorithms>;
  try {
    algorithms = parseAlgorithms(algorithmsRaw, where("auth-algorithms", "jwt.algorithms"));
  } catch (error) {
    throw new AccessOptionError((error as Error).message);
  }
  const settings: AuthSettings = { issuer, audience, jwksUrl, algorithms, queryParam, ...(header ? { header } : {}) };
  const tokenSource: TokenSource =
    source === "header" ? { kind: "header", name: header! } : { kind: "query", name: queryParam };
  return {
    auth: { settings, tokenSource, identitySources: identitySources(tokenSource) },
    limits,
    env: { ...messageLimitsEnv(limits), ...authSettingsEnv(settings) },
    description: {
      auth: `jwt from ${issuer} for ${audience}, token in ${tokenSource.kind === "query" ? `?${tokenSource.name}=` : `the ${tokenSource.name} header`} (keys: ${jwksUrl})`,
      limits: limitsText,
    },
  };
}
