/**
 * The `$connect` Lambda REQUEST authorizer as API Gateway runs it (docs/local-gateway.md),
 * for the local gateway:
 *
 * 1. Every identity source must be present and non-empty, else 401 without calling the authorizer.
 * 2. The authorizer gets the REQUEST event: `type`, `methodArn`
 *    (`arn:aws:execute-api:{region}:{account}:{apiId}/{stage}/$connect`), the upgrade request's headers (with
 *    `Connection`, `Upgrade` and `content-length`, which the integration event lacks), query string (`{}` when
 *    empty), `stageVariables: {}` and the CONNECT request context.
 * 3. Its outcome: an error whose message is exactly `Unauthorized` → 401; any other error, a timeout or a result
 *    of the wrong shape → 500; a policy that denies, or allows a resource that does not match `methodArn` (IAM
 *    `*` / `?` wildcards) → 403; an allow → the connection carries `{principalId, integrationLatency,
 *    ...context}`, values stringified, as `requestContext.authorizer` on CONNECT, MESSAGE and DISCONNECT.
 */

import type { IncomingMessage } from "node:http";
import { join } from "node:path";
import { AUTHORIZER } from "../contract/routes";
import type { WebSocketRequestContext } from "../runtime/event";
import { type ConnectInput, type ConnectionContext, clfTime, newRequestId } from "./events";

/** A Lambda-style authorizer function; what it resolves with is checked here. */
export type AuthorizerHandler = (event: Record<string, unknown>) => unknown;

export interface LocalAuthorizerOptions {
  /** API Gateway identity sources: `route.request.querystring.<name>` and/or `route.request.header.<name>`. */
  readonly identitySources: readonly string[];
  /**
   * The authorizer to run; default the exported `handler` of `handlers/<AUTHORIZER.module>.ts`, which reads
   * its settings (AUTH_*) from `process.env` (pass them in the gateway's `env`).
   */
  readonly handler?: AuthorizerHandler;
  /** Give up on the authorizer after this long (→ 500), ms. API Gateway's Lambda authorizer limit: 10 s. */
  readonly timeoutMs?: number;
}

export const DEFAULT_AUTHORIZER_TIMEOUT_MS = 10_000;
/** The account id in local `methodArn`s. */
export const LOCAL_ACCOUNT_ID = "000000000000";
/** API Gateway refuses authorizer results larger than this (bytes of JSON). */
export const MAX_AUTHORIZER_RESULT_BYTES = 8 * 1024;

export type IdentitySource = { readonly kind: "querystring" | "header"; readonly name: string };

/** Parses identity-source expressions; throws for kinds the local gateway cannot evaluate. */
export function parseIdentitySources(sources: readonly string[]): IdentitySource[] {
  if (sources.length === 0) throw new RangeError("an authorizer needs at least one identity source");
  return sources.map((source) => {
    const match = /^route\.request\.(querystring|header)\.([!#$%&'*+.^_`|~0-9A-Za-z-]+)$/.exec(source);
    if (!match) {
      throw new RangeError(
        `identity source ${JSON.stringify(source)} is not route.request.querystring.<name> or route.request.header.<name>`,
      );
    }
    return { kind: match[1] as IdentitySource["kind"], name: match[2]! };
  });
}

/** Whether every identity source has a non-empty value (headers case-insensitively). */
export function identitySourcesPresent(sources: readonly IdentitySource[], input: ConnectInput): boolean {
  return sources.every((source) => {
    if (source.kind === "querystring") return (input.queryStringParameters?.[source.name] ?? "").trim() !== "";
    const wanted = source.name.toLowerCase();
    return Object.entries(input.headers).some(([name, value]) => name.toLowerCase() === wanted && value.trim() !== "");
  });
}

/** The headers of the authorizer event: the integration event's plus `Connection`, `Upgrade` and `content-length`. */
export function authorizerInput(req: IncomingMessage, connectInput: ConnectInput): ConnectInput {
  const headers: Record<string, string> = { ...connectInput.headers };
  const multiValueHeaders: Record<string, string[]> = { ...(connectInput.multiValueHeaders ?? {}) };
  const add = (name: string, value: string) => {
    headers[name] = value;
    multiValueHeaders[name] = [value];
  };
  for (let i = 0; i + 1 < req.rawHeaders.length; i += 2) {
    const name = req.rawHeaders[i]!;
    const lower = name.toLowerCase();
    if (lower === "connection" || lower === "upgrade") add(name, req.rawHeaders[i + 1]!);
  }
  add("content-length", "0");
  return { ...connectInput, headers, multiValueHeaders };
}

export function methodArnOf(region: string, apiId: string, stage: string): string {
  return `arn:aws:execute-api:${region}:${LOCAL_ACCOUNT_ID}:${apiId}/${stage}/$connect`;
}

/** The REQUEST authorizer event (shape of [D9]/[F4]). */
export function authorizerEvent(
  ctx: ConnectionContext,
  input: ConnectInput,
  methodArn: string,
  now = Date.now(),
): Record<string, unknown> {
  const requestId = newRequestId();
  const requestContext: WebSocketRequestContext = {
    routeKey: "$connect",
    eventType: "CONNECT",
    extendedRequestId: requestId,
    requestTime: clfTime(now),
    messageDirection: "IN",
    stage: ctx.stage,
    connectedAt: ctx.connectedAt,
    requestTimeEpoch: now,
    identity: { sourceIp: ctx.sourceIp, ...(ctx.userAgent !== undefined ? { userAgent: ctx.userAgent } : {}) },
    requestId,
    domainName: ctx.domainName,
    connectionId: ctx.connectionId,
    apiId: ctx.apiId,
  };
  return {
    type: "REQUEST",
    methodArn,
    headers: input.headers,
    multiValueHeaders: input.multiValueHeaders ?? {},
    queryStringParameters: input.queryStringParameters ?? {},
    multiValueQueryStringParameters: input.multiValueQueryStringParameters ?? {},
    stageVariables: {},
    requestContext,
  };
}

/** What the authorizer's run means for the handshake. */
export type AuthorizerDecision =
  | { readonly allow: true; readonly authorizer: Record<string, string | number>; readonly note: string }
  | { readonly allow: false; readonly status: 401 | 403 | 500; readonly note: string };

/** IAM-style match: `*` any run of characters, `?` exactly one; everything else literal and case-sensitive. */
export function arnMatches(pattern: string, arn: string): boolean {
  const regex = pattern
    .replace(/[.+^${}()|[\]\\]/g, "\\$&")
    .replace(/\*/g, ".*")
    .replace(/\?/g, ".");
  return new RegExp(`^${regex}$`, "s").test(arn);
}

const asList = (value: unknown): unknown[] => (Array.isArray(value) ? value : [value]);

function actionCoversInvoke(action: unknown): boolean {
  return asList(action).some((a) => typeof a === "string" && arnMatches(a.toLowerCase(), "execute-api:invoke"));
}

/**
 * Evaluates a policy document against `methodArn` as IAM does for this one request: an explicit Deny that
 * matches wins, then an Allow that matches, else an implicit deny. `undefined` when the document is malformed.
 */
export function evaluatePolicy(policy: unknown, methodArn: string): "allow" | "deny" | undefined {
  if (typeof policy !== "object" || policy === null) return undefined;
  const statements = (policy as { Statement?: unknown }).Statement;
  if (statements === undefined || statements === null) return undefined;
  let allowed = false;
  for (const statement of asList(statements)) {
    if (typeof statement !== "object" || statement === null) return undefined;
    const { Effect: effect, Action: action, Resource: resource } = statement as Record<string, unknown>;
    if ((effect !== "Allow" && effect !== "Deny") || action === undefined || resource === undefined) return undefined;
    const matches =
      actionCoversInvoke(action) && asList(resource).some((r) => typeof r === "string" && arnMatches(r, methodArn));
    if (!matches) continue;
    if (effect === "Deny") return "deny";
    allowed = true;
  }
  return allowed ? "allow" : "deny";
}

/** Maps the authorizer's outcome to the handshake's, validating the result's shape. */
export function decide(
  outcome: { kind: "result"; value: unknown } | { kind: "error"; error: unknown } | { kind: "timeout" },
  methodArn: string,
  latencyMs: number,
): AuthorizerDecision {
  if (outcome.kind === "timeout") return { allow: false, status: 500, note: "authorizer timed out" };
  if (outcome.kind === "error") {
    const message = outcome.error instanceof Error ? outcome.error.message : String(outcome.error);
    return message === "Unauthorized"
      ? { allow: false, status: 401, note: "authorizer: Unauthorized" }
      : { allow: false, status: 500, note: `authorizer threw: ${message}` };
  }
  const result = outcome.value;
  if (typeof result !== "object" || result === null || Array.isArray(result)) {
    return { allow: false, status: 500, note: "authorizer result is not an object" };
  }
  const { principalId, policyDocument, context } = result as Record<string, unknown>;
  if (typeof principalId !== "string" && typeof principalId !== "number") {
    return { allow: false, status: 500, note: "authorizer result has no principalId" };
  }
  let size: number;
  try {
    size = Buffer.byteLength(JSON.stringify(result));
  } catch {
    return { allow: false, status: 500, note: "authorizer result is not JSON" };
  }
  if (size > MAX_AUTHORIZER_RESULT_BYTES) {
    return { allow: false, status: 500, note: `authorizer result of ${size} bytes > ${MAX_AUTHORIZER_RESULT_BYTES}` };
  }
  // Without a prototype, so a context key such as `__proto__` stays a plain key instead of hitting the setter.
  const flat: Record<string, string> = Object.create(null) as Record<string, string>;
  if (context !== undefined && context !== null) {
    if (typeof context !== "object" || Array.isArray(context))
      return { allow: false, status: 500, note: "authorizer context is not an object" };
    for (const [key, value] of Object.entries(context)) {
      if (typeof value !== "string" && typeof value !== "number" && typeof value !== "boolean") {
        return {
          allow: false,
          status: 500,
          note: `authorizer context value ${JSON.stringify(key)} is not a string, number or boolean`,
        };
      }
      flat[key] = String(value);
    }
  }
  const verdict = evaluatePolicy(policyDocument, methodArn);
  if (verdict === undefined) return { allow: false, status: 500, note: "authorizer policyDocument is malformed" };
  if (verdict === "deny") return { allow: false, status: 403, note: "authorizer policy does not allow this $connect" };
  // Spread defines own properties (no setters run), so `__proto__` survives as data here too.
  const authorizer: Record<string, string | number> = {
    ...flat,
    principalId: String(principalId),
    integrationLatency: latencyMs,
  };
  return { allow: true, authorizer, note: `principal=${String(principalId)}` };
}

/** Runs `handler` with `event`, bounded by `timeoutMs`; never rejects. */
export async function runAuthorizer(
  handler: AuthorizerHandler,
  event: Record<string, unknown>,
  timeoutMs: number,
): Promise<{ decision: AuthorizerDecision; durationMs: number }> {
  const started = Date.now();
  let timer: NodeJS.Timeout | undefined;
  const timeout = new Promise<{ kind: "timeout" }>(
    (resolve) => (timer = setTimeout(() => resolve({ kind: "timeout" }), timeoutMs)),
  );
  const run = (async () => {
    try {
      return { kind: "result" as const, value: await handler(event) };
    } catch (error) {
      return { kind: "error" as const, error };
    }
  })();
  try {
    const outcome = await Promise.race([run, timeout]);
    const durationMs = Date.now() - started;
    return { decision: decide(outcome, String(event.methodArn), durationMs), durationMs };
  } finally {
    clearTimeout(timer);
  }
}

const HANDLERS_DIR = join(__dirname, "..", "handlers");

/** `handlers/<AUTHORIZER.module>.ts`'s exported `handler`, exactly what Lambda runs. */
export function loadAuthorizerHandler(): AuthorizerHandler {
  const mod = require(join(HANDLERS_DIR, AUTHORIZER.module)) as { handler?: unknown };
  if (typeof mod.handler !== "function")
    throw new Error(`handlers/${AUTHORIZER.module} does not export a handler function`);
  return mod.handler as AuthorizerHandler;
}
