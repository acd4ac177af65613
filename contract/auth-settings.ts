/**
 * The authorizer's part of the runtime environment contract (env.ts `AUTH_*`): which tokens `$connect` accepts.
 * Infra sets these on the authorizer function only; the local gateway sets them when it runs with `--auth jwt`.
 */
import { ENV, type Env, EnvError } from "./env-vars";

/**
 * Asymmetric JWS algorithms only. `none` and the HMAC family (HS256/384/512) are never accepted: with a public
 * key set, HS* would let anyone who has the public key (everyone) mint tokens.
 */
export const SUPPORTED_ALGORITHMS = [
  "RS256",
  "RS384",
  "RS512",
  "PS256",
  "PS384",
  "PS512",
  "ES256",
  "ES384",
  "ES512",
  "EdDSA",
  "Ed25519",
] as const;

export type JwsAlgorithm = (typeof SUPPORTED_ALGORITHMS)[number];

/** What is accepted when nothing is configured: the RSA (PKCS#1 and PSS) and ECDSA families. */
export const DEFAULT_ALGORITHMS: readonly JwsAlgorithm[] = [
  "RS256",
  "RS384",
  "RS512",
  "PS256",
  "PS384",
  "PS512",
  "ES256",
  "ES384",
  "ES512",
];

export const DEFAULT_TOKEN_QUERY_PARAM = "token";

export interface AuthSettings {
  /** Exact `iss` every token must carry. */
  readonly issuer: string;
  /** `aud` every token must contain. */
  readonly audience: string;
  /** The issuer's JSON Web Key Set (https in deployed stacks; http is accepted for local key servers). */
  readonly jwksUrl: string;
  readonly algorithms: readonly JwsAlgorithm[];
  /** Query-string parameter carrying the token; read first. */
  readonly queryParam: string;
  /** Header carrying the token (an optional `Bearer ` prefix is removed); read when the query has none. */
  readonly header?: string;
}

/** Names a header or query parameter may have (RFC 7230 token characters). */
const NAME = /^[!#$%&'*+.^_`|~0-9A-Za-z-]{1,128}$/;

/** Parses a comma-separated (or array) algorithm list; throws naming `what` on anything unsupported. */
export function parseAlgorithms(raw: string | readonly string[], what: string): JwsAlgorithm[] {
  const list = (typeof raw === "string" ? raw.split(",") : [...raw]).map((a) => a.trim()).filter((a) => a !== "");
  const bad = list.filter((a) => !(SUPPORTED_ALGORITHMS as readonly string[]).includes(a));
  if (bad.length > 0) {
    throw new EnvError(
      `${what} has unsupported algorithm(s) ${bad.join(", ")} (supported: ${SUPPORTED_ALGORITHMS.join(", ")}; none and HS* are never accepted)`,
    );
  }
  return list.length > 0 ? ([...new Set(list)] as JwsAlgorithm[]) : [...DEFAULT_ALGORITHMS];
}

export function readAuthSettings(env: Env = process.env): AuthSettings {
  const get = (key: string) => {
    const value = env[key]?.trim();
    return value ? value : undefined;
  };
  const required = (key: string) => {
    const value = get(key);
    if (value === undefined) throw new EnvError(`${key} must be set for the authorizer`);
    return value;
  };
  const jwksUrl = required(ENV.AUTH_JWKS_URL);
  let url: URL;
  try {
    url = new URL(jwksUrl);
  } catch {
    throw new EnvError(`${ENV.AUTH_JWKS_URL} must be an http(s) URL, got "${jwksUrl}"`);
  }
  if (url.protocol !== "https:" && url.protocol !== "http:") {
    throw new EnvError(`${ENV.AUTH_JWKS_URL} must be an http(s) URL, got "${jwksUrl}"`);
  }
  const queryParam = get(ENV.AUTH_QUERY_PARAM) ?? DEFAULT_TOKEN_QUERY_PARAM;
  const header = get(ENV.AUTH_HEADER);
  for (const [key, value] of [
    [ENV.AUTH_QUERY_PARAM, queryParam],
    [ENV.AUTH_HEADER, header],
  ] as const) {
    if (value !== undefined && !NAME.test(value))
      throw new EnvError(`${key} must be a header/parameter name, got "${value}"`);
  }
  return {
    issuer: required(ENV.AUTH_ISSUER),
    audience: required(ENV.AUTH_AUDIENCE),
    jwksUrl,
    algorithms: parseAlgorithms(get(ENV.AUTH_ALGORITHMS) ?? "", ENV.AUTH_ALGORITHMS),
    queryParam,
    ...(header ? { header } : {}),
  };
}

/** The environment variables for `settings` (what infra and the local CLI set on the authorizer). */
export function authSettingsEnv(settings: AuthSettings): Record<string, string> {
  return {
    [ENV.AUTH_ISSUER]: settings.issuer,
    [ENV.AUTH_AUDIENCE]: settings.audience,
    [ENV.AUTH_JWKS_URL]: settings.jwksUrl,
    [ENV.AUTH_ALGORITHMS]: settings.algorithms.join(","),
    [ENV.AUTH_QUERY_PARAM]: settings.queryParam,
    ...(settings.header ? { [ENV.AUTH_HEADER]: settings.header } : {}),
  };
}
