/**
 * The SigV4 signer used for `PostToConnection` and Lambda `Invoke` outside the SDK (runtime/sigv4.ts):
 * AWS's published test vector, the SDK's own signer for the exact requests this project sends, and what the
 * signed post looks like on the wire.
 */
import { createServer, type IncomingHttpHeaders } from "node:http";
import type { AddressInfo } from "node:net";
import { SignatureV4 } from "@smithy/signature-v4";
import { expect } from "chai";
import { ConnectionsApi, preparePayload } from "../runtime/connections-api";
import { amzDate, canonicalPath, escapeUri, SigV4Signer, sha256Hex } from "../runtime/sigv4";
import { Sha256 } from "./support/sdk-sha256";

const EXAMPLE = { accessKeyId: "AKIDEXAMPLE", secretAccessKey: "wJalrXUtnFEMI/K7MDENG+bPxRfiCYEXAMPLEKEY" };

describe("SigV4 signer", () => {
  it("matches AWS's post-vanilla test vector", () => {
    const headers = new SigV4Signer("us-east-1", "service").sign(
      { method: "POST", host: "example.amazonaws.com", path: "/", payloadHash: sha256Hex("") },
      EXAMPLE,
      Date.UTC(2015, 7, 30, 12, 36, 0),
    );
    expect(headers).to.deep.equal({
      authorization:
        "AWS4-HMAC-SHA256 Credential=AKIDEXAMPLE/20150830/us-east-1/service/aws4_request, SignedHeaders=host;x-amz-date, " +
        "Signature=5da7c1a2acd57cee7505fc6676e4e544621c30862966e37dddb68e92efbe5d6b",
      "x-amz-date": "20150830T123600Z",
    });
  });

  for (const [service, host, path] of [
    [
      "execute-api",
      "abc123.execute-api.eu-west-1.amazonaws.com",
      `/prod/@connections/${escapeUri("Df14mf(UX)IAM!Cyg=")}`,
    ],
    [
      "lambda",
      "lambda.eu-west-1.amazonaws.com",
      `/2015-03-31/functions/${escapeUri("arn:aws:lambda:eu-west-1:1:function:f")}/invocations`,
    ],
    // The shard queue's SendMessage (AWS JSON 1.0: POST / with the action in X-Amz-Target).
    ["sqs", "sqs.eu-west-1.amazonaws.com", "/"],
  ] as const) {
    it(`signs a ${service} POST exactly as the SDK's signer does (temporary credentials, extra headers)`, async () => {
      const credentials = { ...EXAMPLE, sessionToken: "session/token+=" };
      const body = Buffer.from('{"hello":"wörld"}');
      const hash = sha256Hex(body);
      const extra: Record<string, string> =
        service === "sqs"
          ? {
              "content-type": "application/x-amz-json-1.0",
              "x-amz-target": "AmazonSQS.SendMessage",
              "x-amz-content-sha256": hash,
            }
          : { "content-type": "application/octet-stream", "x-amz-content-sha256": hash };
      const date = new Date(Date.UTC(2024, 10, 11, 13, 45, 46));
      // The SDK types its hash constructor over every binary shape; this one is only given strings and Uint8Arrays.
      const sdk = new SignatureV4({ credentials, region: "eu-west-1", service, sha256: Sha256 as never });
      const signed = await sdk.sign(
        {
          method: "POST",
          protocol: "https:",
          hostname: host,
          path,
          headers: { host, ...extra },
          body,
          query: {},
        } as never,
        { signingDate: date },
      );
      const ours = new SigV4Signer("eu-west-1", service).sign(
        { method: "POST", host, path, payloadHash: hash, headers: extra },
        credentials,
        date.getTime(),
      );
      expect(ours.authorization).to.equal(
        (signed as unknown as { headers: Record<string, string> }).headers.authorization,
      );
      expect(ours["x-amz-security-token"]).to.equal("session/token+=");
    });
  }

  it("double-encodes path segments and resolves dot segments like the SDK", () => {
    expect(canonicalPath("/prod/@connections/abc%3D")).to.equal("/prod/%40connections/abc%253D");
    expect(canonicalPath("/a/./b/../c/")).to.equal("/a/c/");
    expect(canonicalPath("/")).to.equal("/");
    expect(escapeUri("a!'()*b")).to.equal("a%21%27%28%29%2Ab");
    expect(amzDate(Date.UTC(2024, 0, 2, 3, 4, 5, 678))).to.equal("20240102T030405Z");
  });

  it("re-derives the signing key when the day or the credentials change", () => {
    const signer = new SigV4Signer("us-east-1", "execute-api");
    const request = { method: "POST", host: "h", path: "/p", payloadHash: sha256Hex("") };
    const day1 = signer.sign(request, EXAMPLE, Date.UTC(2024, 0, 1, 23, 59, 59)).authorization;
    const day2 = signer.sign(request, EXAMPLE, Date.UTC(2024, 0, 2, 0, 0, 1)).authorization;
    const rotated = signer.sign(
      request,
      { ...EXAMPLE, secretAccessKey: "other" },
      Date.UTC(2024, 0, 2, 0, 0, 1),
    ).authorization;
    const fresh = new SigV4Signer("us-east-1", "execute-api").sign(
      request,
      { ...EXAMPLE, secretAccessKey: "other" },
      Date.UTC(2024, 0, 2, 0, 0, 1),
    );
    expect(day1).to.include("/20240101/");
    expect(day2).to.include("/20240102/");
    expect(rotated).to.not.equal(day2);
    expect(rotated).to.equal(fresh.authorization);
  });

  it("sends a post the way the SDK does: path, content type, payload hash, credentials of the SDK's provider chain", async () => {
    const seen: { url: string; headers: IncomingHttpHeaders; body: string }[] = [];
    const server = createServer((req, res) => {
      const chunks: Buffer[] = [];
      req.on("data", (c: Buffer) => chunks.push(c));
      req.on("end", () => {
        seen.push({ url: req.url ?? "", headers: req.headers, body: Buffer.concat(chunks).toString() });
        res.writeHead(200, { "content-length": 0 }).end();
      });
    });
    await new Promise<void>((resolve) => server.listen(0, "127.0.0.1", resolve));
    process.env.AWS_REGION ??= "us-east-1";
    process.env.AWS_ACCESS_KEY_ID ??= "local";
    process.env.AWS_SECRET_ACCESS_KEY ??= "local";
    const api = ConnectionsApi.forEndpoint(`http://127.0.0.1:${(server.address() as AddressInfo).port}/prod`, {
      maxSockets: 2,
    });
    const outcome = await api.attempt("Df14mf(UX)IAM!Cyg=", preparePayload("hi"), 1_000);
    api.close();
    server.closeAllConnections();
    await new Promise<void>((resolve) => server.close(() => resolve()));
    expect(outcome).to.deep.equal({ kind: "delivered" });
    expect(seen).to.have.length(1);
    const { url, headers, body } = seen[0]!;
    expect(url).to.equal("/prod/@connections/Df14mf%28UX%29IAM%21Cyg%3D");
    expect(body).to.equal("hi");
    expect(headers["content-type"]).to.equal("application/octet-stream");
    expect(headers["x-amz-content-sha256"]).to.equal(sha256Hex("hi"));
    expect(headers.authorization).to.match(
      new RegExp(
        `^AWS4-HMAC-SHA256 Credential=${process.env.AWS_ACCESS_KEY_ID}/\\d{8}/${process.env.AWS_REGION}/execute-api/aws4_request, SignedHeaders=content-type;host;x-amz-content-sha256;x-amz-date`,
      ),
    );
  });
});
