/**
 * The `@connections` signature check (local/connections-signature.ts) over many calls: signers are kept per region,
 * service and secret (a broadcast verifies one POST per connection), and keeping them must not change a verdict.
 * Requests are signed by the SDK's own signer.
 */
import type { IncomingMessage } from "node:http";
import { SignatureV4 } from "@smithy/signature-v4";
import { expect } from "chai";
import { verifyConnectionsSignature } from "../local/connections-signature";
import { sha256Hex } from "../runtime/sigv4";
import { Sha256 } from "./support/sdk-sha256";

const HOST = "127.0.0.1:3001";

async function signedRequest(secret: string, region: string, when: Date, path = "/dev/@connections/abc%3D") {
  const body = "hello";
  const sdk = new SignatureV4({
    credentials: { accessKeyId: "anything", secretAccessKey: secret },
    region,
    service: "execute-api",
    sha256: Sha256 as never,
  });
  const signed = (await sdk.sign(
    {
      method: "POST",
      protocol: "http:",
      hostname: "127.0.0.1",
      port: 3001,
      path,
      headers: { host: HOST },
      body,
      query: {},
    } as never,
    { signingDate: when },
  )) as unknown as { headers: Record<string, string> };
  const headers: Record<string, string> = {};
  for (const [name, value] of Object.entries(signed.headers)) headers[name.toLowerCase()] = value;
  const headersDistinct = Object.fromEntries(Object.entries(headers).map(([n, v]) => [n, [v]]));
  const req = { method: "POST", url: path, headers, headersDistinct } as unknown as IncomingMessage;
  return { req, payloadHash: sha256Hex(body) };
}

describe("@connections signature check", () => {
  const now = new Date(Date.UTC(2026, 11, 5, 12, 0, 0));

  it("verifies call after call with the second of two secrets, and still refuses a wrong one", async () => {
    for (let i = 0; i < 20; i++) {
      const { req, payloadHash } = await signedRequest("local", "us-east-1", now);
      expect(verifyConnectionsSignature(req, payloadHash, ["gateway-secret", "local"], now.getTime())).to.deep.equal({
        ok: true,
        accessKeyId: "anything",
      });
    }
    const wrong = await signedRequest("not-the-secret", "us-east-1", now);
    const verdict = verifyConnectionsSignature(
      wrong.req,
      wrong.payloadHash,
      ["gateway-secret", "local"],
      now.getTime(),
    );
    expect(verdict.ok).to.equal(false);
    expect(verdict.ok === false && verdict.errorType).to.equal("InvalidSignatureException");
  });

  it("verifies in more regions than it keeps signers for, and across a change of day", async () => {
    for (let r = 0; r < 24; r++) {
      const { req, payloadHash } = await signedRequest("local", `region-${r}`, now);
      expect(verifyConnectionsSignature(req, payloadHash, ["local"], now.getTime()).ok, `region-${r}`).to.equal(true);
    }
    const late = await signedRequest("local", "region-23", now);
    expect(verifyConnectionsSignature(late.req, late.payloadHash, ["other"], now.getTime()).ok).to.equal(false);
    const nextDay = new Date(now.getTime() + 24 * 3600 * 1000);
    const tomorrow = await signedRequest("local", "us-east-1", nextDay);
    expect(verifyConnectionsSignature(tomorrow.req, tomorrow.payloadHash, ["local"], nextDay.getTime()).ok).to.equal(
      true,
    );
    // Yesterday's signature is now outside the 5-minute window.
    const yesterday = await signedRequest("local", "us-east-1", now);
    expect(verifyConnectionsSignature(yesterday.req, yesterday.payloadHash, ["local"], nextDay.getTime()).ok).to.equal(
      false,
    );
  });
});
