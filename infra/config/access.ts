/**
 * The "who may connect and how much may they send" part of the stack configuration: the `$connect` authorizer
 * (`auth`, and the object key `jwt`), the per-connection rate limit (`rateLimit`) and the largest `data` a
 * `sendmessage` may carry (`maxDataBytes`). Problems go to the shared reader's list.
 */

import {
  type AuthSettings,
  DEFAULT_ALGORITHMS,
  type JwsAlgorithm,
  SUPPORTED_ALGORITHMS,
} from "../../contract/auth-settings";
import type { MessageLimits } from "../../contract/message-limits";
import type { TokenSource } from "../../contract/routes";
import { fullKey, UNPROTECTED_STACK } from "./schema";
import { type ConfigReader, invalid } from "./values";

export const AUTH_MODES = ["none", "jwt"] as const;

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

export function parseAccess(read: ConfigReader, stackName: string): AccessConfig {
  return {
    auth: parseAuth(read, stackName),
    limits: {
      messages: read.integer("rateLimit.messages"),
      windowSeconds: read.integer("rateLimit.windowSeconds"),
      maxDataBytes: read.integer("maxDataBytes"),
      userMessages: read.integer("rateLimit.userMessages"),
      broadcasts: read.integer("rateLimit.broadcasts"),
      connectionsPerUser: read.integer("rateLimit.connectionsPerUser"),
    },
  };
}

const NAME = /^[!#$%&'*+.^_`|~0-9A-Za-z-]{1,128}$/;

function parseAuth(read: ConfigReader, stackName: string): AuthConfig {
  const problems = read.problems;
  const authValue = read.value("auth");
  if (typeof authValue === "string" && authValue.trim().startsWith("{")) {
    // `pulumi config set --path auth.issuer …` replaces the string key `auth` with a map (the CLI's path rule).
    problems.push(
      invalid(
        "auth",
        authValue,
        AUTH_MODES.join(", "),
        "the token settings are fields of the object key jwt: `pulumi config set --path jwt.issuer <value>`",
      ),
    );
    return { mode: "none" };
  }
  const before = problems.length;
  const modeSet = read.string("auth") as "" | (typeof AUTH_MODES)[number];
  if (problems.length > before) return { mode: "none" };
  let mode: (typeof AUTH_MODES)[number];
  if (modeSet === "") {
    if (stackName !== UNPROTECTED_STACK) {
      problems.push(
        invalid(
          "auth",
          "",
          AUTH_MODES.join(", "),
          `unset on stack ${JSON.stringify(stackName)}: only the ${UNPROTECTED_STACK} stack defaults to none; choose ` +
            "explicitly: jwt to require a token on $connect, none to let anyone connect",
        ),
      );
      return { mode: "none" };
    }
    mode = "none";
  } else {
    mode = modeSet;
  }

  const issuer = read.string("jwt.issuer");
  const audience = read.string("jwt.audience");
  const jwksUrl = read.string("jwt.jwksUrl");
  const header = read.string("jwt.header");
  if (mode === "none") {
    // A half-configured authorizer left switched off is a likely mistake with a silent, open result.
    const stray = (["jwt.issuer", "jwt.audience", "jwt.jwksUrl", "jwt.header"] as const).filter(
      (k) => read.value(k) !== undefined,
    );
    if (stray.length > 0) {
      problems.push(
        `Invalid config ${fullKey("auth")}: "${modeSet}" (none) while ${stray.map(fullKey).join(", ")} ` +
          `${stray.length === 1 ? "is" : "are"} set; set auth to jwt to use them, or clear them`,
      );
    }
    return { mode: "none" };
  }

  for (const [key, value, example] of [
    ["jwt.issuer", issuer, "https://example.auth0.com/"],
    ["jwt.audience", audience, "chat-api"],
    ["jwt.jwksUrl", jwksUrl, "https://example.auth0.com/.well-known/jwks.json"],
  ] as const) {
    if (value === "") problems.push(invalid(key, "", `a value such as ${example}`, "required when auth is jwt"));
  }
  if (jwksUrl !== "") {
    let url: URL | undefined;
    try {
      url = new URL(jwksUrl);
    } catch {
      url = undefined;
    }
    if (url?.protocol !== "https:" || url.username !== "" || url.password !== "") {
      problems.push(
        invalid(
          "jwt.jwksUrl",
          jwksUrl,
          "an https:// URL without credentials",
          "keys fetched over plain http could be swapped",
        ),
      );
    }
  }

  const tokenSourceSet = read.string("jwt.tokenSource");
  const queryParam = read.string("jwt.queryParam");
  if (!NAME.test(queryParam)) problems.push(invalid("jwt.queryParam", queryParam, "a query-string parameter name"));
  if (header !== "" && !NAME.test(header))
    problems.push(invalid("jwt.header", header, "a header name such as Authorization"));
  if (tokenSourceSet === "header" && header === "") {
    problems.push(
      invalid("jwt.header", "", "a header name such as Authorization", "required when jwt.tokenSource is header"),
    );
  }

  const algorithms = parseAlgorithmList(read);

  const tokenSource: TokenSource =
    tokenSourceSet === "header" && header !== ""
      ? { kind: "header", name: header }
      : { kind: "query", name: queryParam };
  return {
    mode: "jwt",
    jwt: {
      issuer,
      audience,
      jwksUrl,
      algorithms,
      queryParam,
      ...(header !== "" ? { header } : {}),
    },
    tokenSource,
  };
}

function parseAlgorithmList(read: ConfigReader): JwsAlgorithm[] {
  const list = read.list("jwt.algorithms");
  if (list.length === 0) return [...DEFAULT_ALGORITHMS];
  const bad = list.filter((a) => !(SUPPORTED_ALGORITHMS as readonly string[]).includes(a));
  if (bad.length > 0) {
    const why = bad.some((a) => a.toLowerCase() === "none" || /^HS\d+$/i.test(a))
      ? "none and HMAC (HS*) algorithms are never accepted: with a public key set anyone could mint tokens"
      : undefined;
    read.problems.push(invalid("jwt.algorithms", bad, SUPPORTED_ALGORITHMS.join(", "), why));
    return [...DEFAULT_ALGORITHMS];
  }
  return [...new Set(list as JwsAlgorithm[])];
}
