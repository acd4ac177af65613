/**
 * The "who may connect and how much may they send" part of the stack configuration (issue 5): the `$connect`
 * authorizer (`auth`, `auth.*`), the per-connection rate limit (`rateLimit.*`) and the largest `data` a
 * `sendmessage` may carry (`maxDataBytes`). Parsed here, collected into config.ts's problem list.
 */
import type { TokenSource } from "../functions/routes";
import {
  DEFAULT_TOKEN_QUERY_PARAM,
  SUPPORTED_ALGORITHMS,
  DEFAULT_ALGORITHMS,
  type AuthSettings,
  type JwsAlgorithm,
} from "../functions/runtime/auth-settings";
import {
  DEFAULT_MESSAGE_LIMITS,
  MAX_DATA_BYTES_CEILING,
  type MessageLimits,
} from "../functions/runtime/message-limits";
import { fullKey, specOf, type ConfigKey } from "./config-schema";

export const AUTH_MODES = ["none", "jwt"] as const;
export const TOKEN_SOURCES = ["query", "header"] as const;
/** The stack where an unset `auth` means `none`; every other stack must choose. */
export const AUTH_OPTIONAL_STACK = "dev";

/** `auth: none`: anyone may connect. `auth: jwt`: a Lambda REQUEST authorizer verifies a JWT on `$connect`. */
export type AuthConfig =
  | { readonly mode: "none" }
  | {
      readonly mode: "jwt";
      /** What the authorizer function checks (its AUTH_* environment). */
      readonly jwt: AuthSettings;
      /** The API Gateway identity source: where a token must be for the authorizer to be called at all. */
      readonly tokenSource: TokenSource;
    };

export interface AccessConfig {
  readonly auth: AuthConfig;
  readonly limits: MessageLimits;
}

type Raw = Readonly<Record<string, string | undefined>>;

const NAME = /^[!#$%&'*+.^_`|~0-9A-Za-z-]{1,128}$/;

function invalid(key: ConfigKey, shown: string, allowed: string, why?: string): string {
  return `Invalid config ${fullKey(key)}: ${shown} (allowed: ${allowed})${why ? `; ${why}` : ""}`;
}

export function parseAccess(raw: Raw, stackName: string, problems: string[]): AccessConfig {
  return { auth: parseAuth(raw, stackName, problems), limits: parseLimits(raw, problems) };
}

function parseLimits(raw: Raw, problems: string[]): MessageLimits {
  const integer = (
    key: ConfigKey,
    min: number,
    max: number,
    fallback: number,
    allowed: string,
    why?: string,
  ): number => {
    const value = raw[key]?.trim();
    if (value === undefined || value === "") return fallback;
    const parsed = /^[+-]?\d+$/.test(value) ? Number(value) : Number.NaN;
    if (!Number.isSafeInteger(parsed) || parsed < min || parsed > max) {
      problems.push(invalid(key, JSON.stringify(raw[key]), allowed, why));
      return fallback;
    }
    return parsed;
  };
  return {
    messages: integer(
      "rateLimit.messages",
      0,
      1_000_000,
      DEFAULT_MESSAGE_LIMITS.messages,
      "an integer from 0 (no limit) to 1000000",
    ),
    windowSeconds: integer(
      "rateLimit.windowSeconds",
      1,
      86_400,
      DEFAULT_MESSAGE_LIMITS.windowSeconds,
      "an integer from 1 to 86400",
    ),
    maxDataBytes: integer(
      "maxDataBytes",
      1,
      MAX_DATA_BYTES_CEILING,
      DEFAULT_MESSAGE_LIMITS.maxDataBytes,
      `an integer from 1 to ${MAX_DATA_BYTES_CEILING}`,
      "API Gateway refuses messages and posts of 128 KB (131072 bytes) or more",
    ),
  };
}

function parseAuth(raw: Raw, stackName: string, problems: string[]): AuthConfig {
  const set = (key: ConfigKey): string | undefined => {
    const value = raw[key]?.trim();
    return value ? value : undefined;
  };
  const modeRaw = set("auth");
  let mode: (typeof AUTH_MODES)[number];
  if (modeRaw === undefined) {
    if (stackName !== AUTH_OPTIONAL_STACK) {
      problems.push(
        invalid(
          "auth",
          `"" (unset, stack ${JSON.stringify(stackName)})`,
          AUTH_MODES.join(", "),
          `only the ${AUTH_OPTIONAL_STACK} stack defaults to none; choose explicitly: jwt to require a token on $connect, ` +
            "none to let anyone connect",
        ),
      );
      return { mode: "none" };
    }
    mode = "none";
  } else if ((AUTH_MODES as readonly string[]).includes(modeRaw)) {
    mode = modeRaw as (typeof AUTH_MODES)[number];
  } else {
    problems.push(invalid("auth", JSON.stringify(raw.auth), AUTH_MODES.join(", ")));
    return { mode: "none" };
  }

  const issuer = set("auth.issuer");
  const audience = set("auth.audience");
  const jwksUrl = set("auth.jwksUrl");
  if (mode === "none") {
    // A half-configured authorizer left switched off is a likely mistake with a silent, open result.
    const stray = (["auth.issuer", "auth.audience", "auth.jwksUrl", "auth.header"] as const).filter(
      (k) => set(k) !== undefined,
    );
    if (stray.length > 0) {
      problems.push(
        `Invalid config ${fullKey("auth")}: "${modeRaw ?? ""}" (none) while ${stray.map(fullKey).join(", ")} ` +
          `${stray.length === 1 ? "is" : "are"} set; set auth to jwt to use them, or clear them`,
      );
    }
    return { mode: "none" };
  }

  for (const [key, value, example] of [
    ["auth.issuer", issuer, "https://example.auth0.com/"],
    ["auth.audience", audience, "chat-api"],
    ["auth.jwksUrl", jwksUrl, "https://example.auth0.com/.well-known/jwks.json"],
  ] as const) {
    if (value === undefined)
      problems.push(invalid(key, '""', `a value such as ${example}`, "required when auth is jwt"));
  }
  if (jwksUrl !== undefined) {
    let url: URL | undefined;
    try {
      url = new URL(jwksUrl);
    } catch {
      url = undefined;
    }
    if (url?.protocol !== "https:" || url.username !== "" || url.password !== "") {
      problems.push(
        invalid(
          "auth.jwksUrl",
          JSON.stringify(jwksUrl),
          "an https:// URL without credentials",
          "keys fetched over plain http could be swapped",
        ),
      );
    }
  }

  const tokenSourceRaw = set("auth.tokenSource") ?? String(specOf("auth.tokenSource").default);
  if (!(TOKEN_SOURCES as readonly string[]).includes(tokenSourceRaw)) {
    problems.push(invalid("auth.tokenSource", JSON.stringify(raw["auth.tokenSource"]), TOKEN_SOURCES.join(", ")));
  }
  const queryParam = set("auth.queryParam") ?? DEFAULT_TOKEN_QUERY_PARAM;
  if (!NAME.test(queryParam))
    problems.push(invalid("auth.queryParam", JSON.stringify(queryParam), "a query-string parameter name"));
  const header = set("auth.header");
  if (header !== undefined && !NAME.test(header))
    problems.push(invalid("auth.header", JSON.stringify(header), "a header name such as Authorization"));
  if (tokenSourceRaw === "header" && header === undefined) {
    problems.push(
      invalid("auth.header", '""', "a header name such as Authorization", "required when auth.tokenSource is header"),
    );
  }

  const algorithms = parseAlgorithmList(raw["auth.algorithms"], problems);

  const tokenSource: TokenSource =
    tokenSourceRaw === "header" && header !== undefined
      ? { kind: "header", name: header }
      : { kind: "query", name: queryParam };
  return {
    mode: "jwt",
    jwt: {
      issuer: issuer ?? "",
      audience: audience ?? "",
      jwksUrl: jwksUrl ?? "",
      algorithms,
      queryParam,
      ...(header !== undefined ? { header } : {}),
    },
    tokenSource,
  };
}

function parseAlgorithmList(rawValue: string | undefined, problems: string[]): JwsAlgorithm[] {
  if (rawValue === undefined || rawValue.trim() === "") return [...DEFAULT_ALGORITHMS];
  let list: unknown;
  try {
    list = JSON.parse(rawValue);
  } catch {
    list = undefined;
  }
  if (!Array.isArray(list) || !list.every((a) => typeof a === "string")) {
    problems.push(invalid("auth.algorithms", JSON.stringify(rawValue), "a list of JWS algorithms (a YAML list)"));
    return [...DEFAULT_ALGORITHMS];
  }
  if (list.length === 0) return [...DEFAULT_ALGORITHMS];
  const bad = (list as string[]).filter((a) => !(SUPPORTED_ALGORITHMS as readonly string[]).includes(a));
  if (bad.length > 0) {
    const why = bad.some((a) => a.toLowerCase() === "none" || /^HS\d+$/i.test(a))
      ? "none and HMAC (HS*) algorithms are never accepted: with a public key set anyone could mint tokens"
      : undefined;
    problems.push(invalid("auth.algorithms", JSON.stringify(bad), SUPPORTED_ALGORITHMS.join(", "), why));
    return [...DEFAULT_ALGORITHMS];
  }
  return [...new Set(list as JwsAlgorithm[])];
}
