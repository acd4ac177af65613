/**
 * AWS Signature Version 4 for the two hot, body-carrying POSTs this project makes outside the SDK: `PostToConnection`
 * (service `execute-api`) during a fan-out, and Lambda's asynchronous `Invoke` (service `lambda`) when a fan-out
 * is split. The SDK client spends ~0.7 ms of CPU per post on its middleware stack (measured, see the README's
 * fan-out section); this signs in ~15 µs, because everything that is the same for every post of a broadcast is
 * computed once: the payload hash (one body, N posts), the signing key (per day and region) and the date string
 * (per second).
 *
 * Only what these requests need: no query string, a fixed set of signed headers. Checked against AWS's published
 * SigV4 test vector and against the SDK's own signer in test/sigv4.test.ts.
 */
import { createHash, createHmac } from "node:crypto";

export interface AwsCredentials {
  readonly accessKeyId: string;
  readonly secretAccessKey: string;
  readonly sessionToken?: string;
}

export interface SignableRequest {
  readonly method: string;
  /** `Host` header value (with the port when it is not the scheme's default). */
  readonly host: string;
  /** The request path exactly as sent on the wire (already percent-encoded). */
  readonly path: string;
  /** Hex SHA-256 of the body ({@link sha256Hex}). */
  readonly payloadHash: string;
  /** Extra headers to sign, lower-case names (e.g. `x-amz-invocation-type`). */
  readonly headers?: Readonly<Record<string, string>>;
}

export const sha256Hex = (data: string | Uint8Array): string => createHash("sha256").update(data).digest("hex");

const hmac = (key: string | Buffer, data: string): Buffer => createHmac("sha256", key).update(data, "utf8").digest();

/** `encodeURIComponent` plus the characters it leaves alone that SigV4 wants escaped (RFC 3986). */
export const escapeUri = (value: string): string =>
  encodeURIComponent(value).replace(/[!'()*]/g, (c) => `%${c.charCodeAt(0).toString(16).toUpperCase()}`);

/**
 * The canonical URI of every service but S3: each segment of the wire path (already encoded once) encoded again,
 * `.` and `..` resolved, empty segments dropped, as the SDK's signer does.
 */
export function canonicalPath(path: string): string {
  const segments: string[] = [];
  for (const segment of path.split("/")) {
    if (segment === "" || segment === ".") continue;
    if (segment === "..") segments.pop();
    else segments.push(segment);
  }
  const joined = `${path.startsWith("/") ? "/" : ""}${segments.join("/")}${segments.length > 0 && path.endsWith("/") ? "/" : ""}`;
  return escapeUri(joined).replace(/%2F/g, "/");
}

/** `20150830T123600Z` for a time. */
export function amzDate(epochMs: number): string {
  return new Date(epochMs)
    .toISOString()
    .replace(/[-:]/g, "")
    .replace(/\.\d{3}/, "");
}

export class SigV4Signer {
  private keyCache: { id: string; key: Buffer } | undefined;
  private dateCache: { second: number; value: string } | undefined;

  constructor(
    readonly region: string,
    readonly service: string,
  ) {}

  /** The headers to add to `request`: `authorization`, `x-amz-date` and, with temporary credentials, the token. */
  sign(request: SignableRequest, credentials: AwsCredentials, now: number = Date.now()): Record<string, string> {
    const longDate = this.longDate(now);
    const shortDate = longDate.slice(0, 8);
    const headers: Record<string, string> = { ...request.headers, host: request.host, "x-amz-date": longDate };
    if (credentials.sessionToken) headers["x-amz-security-token"] = credentials.sessionToken;
    const names = Object.keys(headers).sort();
    const canonicalHeaders = names.map((name) => `${name}:${headers[name]!.trim().replace(/\s+/g, " ")}\n`).join("");
    const signedHeaders = names.join(";");
    const canonicalRequest = [
      request.method,
      canonicalPath(request.path),
      "",
      canonicalHeaders,
      signedHeaders,
      request.payloadHash,
    ].join("\n");
    const scope = `${shortDate}/${this.region}/${this.service}/aws4_request`;
    const stringToSign = `AWS4-HMAC-SHA256\n${longDate}\n${scope}\n${sha256Hex(canonicalRequest)}`;
    const signature = createHmac("sha256", this.signingKey(credentials, shortDate))
      .update(stringToSign, "utf8")
      .digest("hex");
    const out: Record<string, string> = {
      authorization: `AWS4-HMAC-SHA256 Credential=${credentials.accessKeyId}/${scope}, SignedHeaders=${signedHeaders}, Signature=${signature}`,
      "x-amz-date": longDate,
    };
    if (credentials.sessionToken) out["x-amz-security-token"] = credentials.sessionToken;
    return out;
  }

  private longDate(now: number): string {
    const second = Math.floor(now / 1000);
    if (this.dateCache?.second !== second) this.dateCache = { second, value: amzDate(second * 1000) };
    return this.dateCache.value;
  }

  /** The day's key; recomputed when the day or the credentials change (Lambda's role credentials rotate). */
  private signingKey(credentials: AwsCredentials, shortDate: string): Buffer {
    const id = `${shortDate}\0${credentials.accessKeyId}\0${credentials.secretAccessKey}`;
    if (this.keyCache?.id !== id) {
      const kDate = hmac(`AWS4${credentials.secretAccessKey}`, shortDate);
      const key = hmac(hmac(hmac(kDate, this.region), this.service), "aws4_request");
      this.keyCache = { id, key };
    }
    return this.keyCache.key;
  }
}
