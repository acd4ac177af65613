/**
 * What the real `@connections` API requires of every call, checked locally: a SigV4 signature (service
 * `execute-api`) over the request. Without it any web page could inject frames, because a `text/plain` POST is a
 * "simple" request that browsers send cross-site without a preflight; a browser cannot add `Authorization` to
 * such a request, and the gateway never answers a CORS preflight, so no page can pass.
 *
 * The signature is recomputed with the project's own signer (runtime/sigv4.ts, checked against the SDK's) and
 * compared with the one sent. A signature can only be checked against a secret the gateway knows: any access key
 * id is accepted, the secret must be one of `secrets` (the handlers' `AWS_SECRET_ACCESS_KEY`, and `local`, the
 * dummy every local tool and test uses). Refusals are API Gateway's (all 403):
 *
 * - no `Authorization`: `MissingAuthenticationTokenException` `{"message":"Missing Authentication Token"}`, what
 *   execute-api answers an unsigned request;
 * - a malformed one, a wrong scope, an `X-Amz-Date` more than 5 minutes off, or a signature that does not match:
 *   `InvalidSignatureException` with AWS's wording (the 5 minutes are in AWS's own "Signature expired" message).
 */
import { timingSafeEqual } from "node:crypto";
import type { IncomingMessage } from "node:http";
import { SigV4Signer } from "../runtime/sigv4";

/** How far `X-Amz-Date` may be from the gateway's clock. */
export const MAX_CLOCK_SKEW_MS = 5 * 60 * 1000;

export type SignatureVerdict =
  | { readonly ok: true; readonly accessKeyId: string }
  | { readonly ok: false; readonly errorType: string; readonly message: string; readonly note: string };

const AUTH_PATTERN =
  /^AWS4-HMAC-SHA256 Credential=([^/,\s]+)\/(\d{8})\/([^/,\s]+)\/([^/,\s]+)\/aws4_request,\s*SignedHeaders=([a-z0-9;-]+),\s*Signature=([0-9a-f]{64})$/;

const MISMATCH =
  "The request signature we calculated does not match the signature you provided. Check your AWS Secret Access Key and signing method. Consult the service documentation for details.";

function missing(): SignatureVerdict {
  return {
    ok: false,
    errorType: "MissingAuthenticationTokenException",
    message: "Missing Authentication Token",
    note: "unsigned request (no SigV4 Authorization header)",
  };
}

function invalid(message: string, note: string): SignatureVerdict {
  return { ok: false, errorType: "InvalidSignatureException", message, note };
}

/**
 * Signers by region, service and secret, so the day's signing key (four HMACs) is derived once a day, not on every
 * call: a broadcast is one `@connections` POST per connection. Region and service come from the request before
 * it is verified, so the table is bounded: past its size a call gets a signer of its own, as before.
 */
const SIGNERS = new Map<string, SigV4Signer>();
const MAX_SIGNERS = 16;

function signerFor(region: string, service: string, secret: string): SigV4Signer {
  const key = `${region}\0${service}\0${secret}`;
  const cached = SIGNERS.get(key);
  if (cached) return cached;
  const signer = new SigV4Signer(region, service);
  if (SIGNERS.size < MAX_SIGNERS) SIGNERS.set(key, signer);
  return signer;
}

/** `20150830T123600Z` → epoch ms, or NaN. */
function parseAmzDate(value: string): number {
  const m = /^(\d{4})(\d{2})(\d{2})T(\d{2})(\d{2})(\d{2})Z$/.exec(value);
  if (!m) return Number.NaN;
  return Date.UTC(Number(m[1]), Number(m[2]) - 1, Number(m[3]), Number(m[4]), Number(m[5]), Number(m[6]));
}

/** A header's value as SigV4 canonicalises it: every value, trimmed, joined with commas. */
function headerValue(req: IncomingMessage, name: string): string | undefined {
  const values = req.headersDistinct[name];
  return values === undefined ? undefined : values.map((v) => v.trim().replace(/\s+/g, " ")).join(",");
}

/**
 * Verifies the SigV4 signature of an `@connections` request whose body has been read: `payloadHash` is its hex
 * SHA-256 (of the empty string for GET and DELETE). `now` is injectable for tests.
 */
export function verifyConnectionsSignature(
  req: IncomingMessage,
  payloadHash: string,
  secrets: readonly string[],
  now: number = Date.now(),
): SignatureVerdict {
  const authorization = req.headers.authorization;
  if (authorization === undefined || authorization === "") return missing();
  const m = AUTH_PATTERN.exec(authorization.trim());
  if (!m) return invalid(`Authorization header requires a valid SigV4 signature`, "malformed Authorization header");
  const [, accessKeyId, shortDate, region, service, signedList, signature] = m as unknown as string[];
  if (service !== "execute-api") {
    return invalid(`Credential should be scoped to correct service: 'execute-api'.`, `service ${service}`);
  }
  const amzDate = headerValue(req, "x-amz-date");
  const signedAt = amzDate === undefined ? Number.NaN : parseAmzDate(amzDate);
  if (Number.isNaN(signedAt) || amzDate?.slice(0, 8) !== shortDate) {
    return invalid("Authorization header requires existence of a valid X-Amz-Date header.", "no or bad X-Amz-Date");
  }
  if (Math.abs(now - signedAt) > MAX_CLOCK_SKEW_MS) {
    return invalid(`Signature expired: ${amzDate} is now outside the 5 minutes around the gateway's clock.`, "expired");
  }
  const names = signedList!.split(";");
  if (!names.includes("host") || !names.includes("x-amz-date")) {
    return invalid(MISMATCH, "host and x-amz-date must be signed");
  }
  const declared = req.headers["x-amz-content-sha256"];
  if (declared !== undefined && declared !== payloadHash && declared !== "UNSIGNED-PAYLOAD") {
    return invalid(MISMATCH, "x-amz-content-sha256 is not the body's hash");
  }
  // The signer adds `host` and `x-amz-date` itself (and the session token from the credentials).
  const headers: Record<string, string> = {};
  let sessionToken: string | undefined;
  for (const name of names) {
    const value = headerValue(req, name);
    if (value === undefined) return invalid(MISMATCH, `signed header ${name} is missing`);
    if (name === "x-amz-security-token") sessionToken = value;
    else if (name !== "host" && name !== "x-amz-date") headers[name] = value;
  }
  const path = (req.url ?? "/").split("?")[0]!;
  if ((req.url ?? "").includes("?")) return invalid(MISMATCH, "@connections takes no query string");
  const expected = Buffer.from(signature!, "hex");
  for (const secretAccessKey of new Set(secrets)) {
    const signed = signerFor(region!, service, secretAccessKey).sign(
      { method: req.method ?? "GET", host: headerValue(req, "host") ?? "", path, payloadHash, headers },
      { accessKeyId: accessKeyId!, secretAccessKey, ...(sessionToken !== undefined ? { sessionToken } : {}) },
      signedAt,
    );
    const got = /Signature=([0-9a-f]{64})$/.exec(signed.authorization ?? "")?.[1];
    const sameHeaders = /SignedHeaders=([^,]+)/.exec(signed.authorization ?? "")?.[1] === signedList;
    if (got && sameHeaders && timingSafeEqual(Buffer.from(got, "hex"), expected))
      return { ok: true, accessKeyId: accessKeyId! };
  }
  return invalid(MISMATCH, `signature does not verify with the gateway's secret (access key ${accessKeyId})`);
}
