/**
 * The Lambda REQUEST authorizer of `$connect` (stack config `auth: jwt`): verifies a JWT against the issuer's
 * JSON Web Key Set and answers API Gateway with an IAM policy for this connect, plus a `context` that API Gateway
 * hands to every later event of the connection as `requestContext.authorizer` (`$connect` stores it with the
 * connection).
 *
 * Outcomes, as API Gateway maps them (docs/local-gateway.md):
 * - a valid token: `Allow execute-api:Invoke` on the event's `methodArn` → the handshake goes on to `$connect`;
 * - no token, or a token that fails any check: `throw new Error("Unauthorized")`, which API Gateway (and only for
 *   exactly that message) turns into 401;
 * - anything else, e.g. the key set cannot be fetched: the error propagates → 500. A broken identity provider is
 *   not the client's fault, and a 401 would hide it.
 *
 * Checks (jose): signature against a key of the set (chosen by `kid`), algorithm in the allow-list (asymmetric
 * only, never `none` or HS*), `iss` exact, `aud`, `exp` required and not past, `nbf` not future (5 s of clock
 * skew tolerated), `sub` required (it becomes the principal and the user id).
 *
 * The key set is fetched on the first token and cached per container (jose refreshes it after 10 min, or sooner
 * when a token names a `kid` it has not seen, at most every 30 s).
 */
import { createRemoteJWKSet, type JWTPayload, type JWTVerifyGetKey, jwtVerify } from "jose";
import { type AuthSettings, readAuthSettings } from "../contract/auth-settings";
import { AUTHORIZER_OUTCOMES } from "../contract/routes";
import { Logger } from "../runtime/logger";

/** The REQUEST authorizer event of a WebSocket `$connect` (only what this authorizer reads is typed). */
export interface AuthorizerEvent {
  readonly type: "REQUEST";
  /** `arn:aws:execute-api:{region}:{account}:{apiId}/{stage}/$connect`. */
  readonly methodArn: string;
  readonly headers?: Readonly<Record<string, string | undefined>> | null;
  readonly queryStringParameters?: Readonly<Record<string, string | undefined>> | null;
  readonly requestContext?: { readonly connectionId?: string; readonly requestId?: string };
}

export interface AuthorizerResult {
  readonly principalId: string;
  readonly policyDocument: {
    readonly Version: "2012-10-17";
    readonly Statement: readonly {
      readonly Action: string;
      readonly Effect: "Allow" | "Deny";
      readonly Resource: string;
    }[];
  };
  /** Flat string / number / boolean values only (API Gateway's rule); they reach handlers stringified. */
  readonly context: Readonly<Record<string, string | number | boolean>>;
}

/** Tokens longer than this are refused without parsing (API Gateway's whole URL is at most 4,096 characters). */
export const MAX_TOKEN_LENGTH = 8_192;
/** Clock skew tolerated on `exp` and `nbf`, seconds. */
export const CLOCK_TOLERANCE_SECONDS = 5;
/** JWKS request timeout: well inside the authorizer's own 10 s budget. */
const JWKS_TIMEOUT_MS = 3_000;
/** Longest `scope` passed on in the context (the whole authorizer result must stay under 8 KB). */
const MAX_SCOPE_LENGTH = 1_024;

/** jose error codes that mean "this token is not acceptable" (401). Every other failure is ours (500). */
const TOKEN_ERRORS = new Set([
  "ERR_JWT_EXPIRED",
  "ERR_JWT_CLAIM_VALIDATION_FAILED",
  "ERR_JWT_INVALID",
  "ERR_JWS_INVALID",
  "ERR_JWS_SIGNATURE_VERIFICATION_FAILED",
  "ERR_JOSE_ALG_NOT_ALLOWED",
  "ERR_JOSE_NOT_SUPPORTED",
  "ERR_JWKS_NO_MATCHING_KEY",
  "ERR_JWKS_MULTIPLE_MATCHING_KEYS",
]);

/** The error API Gateway turns into 401; any other error (message) becomes 500. */
export class Unauthorized extends Error {
  constructor(readonly reason: string) {
    super("Unauthorized");
  }
}

/** The token of a connect request: the query-string parameter first, then the header (without `Bearer `). */
export function tokenOf(
  event: AuthorizerEvent,
  settings: Pick<AuthSettings, "queryParam" | "header">,
): string | undefined {
  const fromQuery = event.queryStringParameters?.[settings.queryParam];
  if (typeof fromQuery === "string" && fromQuery.trim() !== "") return fromQuery.trim();
  if (!settings.header) return undefined;
  const wanted = settings.header.toLowerCase();
  for (const [name, value] of Object.entries(event.headers ?? {})) {
    if (name.toLowerCase() !== wanted || typeof value !== "string") continue;
    const token = value
      .trim()
      .replace(/^Bearer(\s+|$)/i, "")
      .trim();
    return token === "" ? undefined : token;
  }
  return undefined;
}

export interface Verifier {
  readonly settings: AuthSettings;
  /** Resolves with the verified claims; throws {@link Unauthorized} for a bad token, anything else otherwise. */
  verify(token: string): Promise<JWTPayload & { sub: string }>;
}

/** A verifier for `settings`. `keys` defaults to the remote key set at `settings.jwksUrl`, fetched lazily. */
export function createVerifier(settings: AuthSettings, keys?: JWTVerifyGetKey): Verifier {
  const getKey = keys ?? createRemoteJWKSet(new URL(settings.jwksUrl), { timeoutDuration: JWKS_TIMEOUT_MS });
  return {
    settings,
    async verify(token) {
      if (token.length > MAX_TOKEN_LENGTH) throw new Unauthorized(`token longer than ${MAX_TOKEN_LENGTH} characters`);
      try {
        const { payload } = await jwtVerify(token, getKey, {
          issuer: settings.issuer,
          audience: settings.audience,
          algorithms: [...settings.algorithms],
          requiredClaims: ["exp", "sub"],
          clockTolerance: CLOCK_TOLERANCE_SECONDS,
        });
        if (typeof payload.sub !== "string" || payload.sub === "")
          throw new Unauthorized("sub is not a non-empty string");
        return payload as JWTPayload & { sub: string };
      } catch (error) {
        if (error instanceof Unauthorized) throw error;
        const code = (error as { code?: unknown })?.code;
        if (typeof code === "string" && TOKEN_ERRORS.has(code))
          throw new Unauthorized(`${code}: ${(error as Error).message}`);
        throw error;
      }
    },
  };
}

/** The policy and context for a verified token. */
export function allow(methodArn: string, claims: JWTPayload & { sub: string }): AuthorizerResult {
  const context: Record<string, string | number | boolean> = { userId: claims.sub };
  if (typeof claims.scope === "string" && claims.scope.length <= MAX_SCOPE_LENGTH) context.scope = claims.scope;
  if (typeof claims.exp === "number") context.tokenExpiresAt = claims.exp;
  return {
    principalId: claims.sub,
    policyDocument: {
      Version: "2012-10-17",
      Statement: [{ Action: "execute-api:Invoke", Effect: "Allow", Resource: methodArn }],
    },
    context,
  };
}

/**
 * The authorizer's logic with its dependencies explicit (the handler below supplies the container's). Every
 * decision logs exactly one JSON line whose `outcome` is one of {@link AUTHORIZER_OUTCOMES}: a rejection is a
 * Lambda function error like any fault, and only these lines tell the two apart (infra's alarm counts on them).
 */
export async function authorize(event: AuthorizerEvent, verifier: Verifier, log: Logger): Promise<AuthorizerResult> {
  const started = Date.now();
  const fields = {
    route: "$connect",
    connectionId: event?.requestContext?.connectionId,
    requestId: event?.requestContext?.requestId,
  };
  try {
    if (typeof event?.methodArn !== "string" || !event.methodArn.startsWith("arn:")) {
      throw new Error("authorizer event without a methodArn");
    }
    const token = tokenOf(event, verifier.settings);
    if (token === undefined) throw new Unauthorized("no token");
    const claims = await verifier.verify(token);
    const result = allow(event.methodArn, claims);
    log.info("authorized", {
      ...fields,
      outcome: AUTHORIZER_OUTCOMES.allow,
      principalId: claims.sub,
      durationMs: Date.now() - started,
    });
    return result;
  } catch (error) {
    if (error instanceof Unauthorized) {
      // The reason stays in our logs; the client only learns 401. The token itself is never logged.
      log.info("unauthorized", {
        ...fields,
        outcome: AUTHORIZER_OUTCOMES.unauthorized,
        reason: error.reason,
        durationMs: Date.now() - started,
      });
      throw new Error("Unauthorized");
    }
    log.error("authorizer failed", {
      ...fields,
      outcome: AUTHORIZER_OUTCOMES.fault,
      error,
      durationMs: Date.now() - started,
    });
    throw error;
  }
}

let container: { verifier: Verifier; log: Logger } | undefined;

/** Per container: settings from the environment and one key set, fetched once and cached across invocations. */
function containerVerifier(): { verifier: Verifier; log: Logger } {
  container ??= { verifier: createVerifier(readAuthSettings()), log: new Logger() };
  return container;
}

export const handler = async (event: AuthorizerEvent): Promise<AuthorizerResult> => {
  const { verifier, log } = containerVerifier();
  return authorize(event, verifier, log);
};
