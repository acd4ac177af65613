/**
 * An identity provider on loopback for authorizer tests: key pairs generated in the test, their public JSON Web
 * Key Set served over HTTP (with a request counter and switchable failures), and token minting, including the
 * malformed and malicious tokens the authorizer must refuse.
 */
import { createServer, type Server } from "node:http";
import type { AddressInfo } from "node:net";
import { exportJWK, exportSPKI, generateKeyPair, type JWK, type JWTPayload, SignJWT, UnsecuredJWT } from "jose";
import type { AuthSettings } from "../../contract/auth-settings";

export const ISSUER = "https://issuer.test/";
export const AUDIENCE = "chat-api-test";

type KeyPair = Awaited<ReturnType<typeof generateKeyPair>>;

export interface TestIdp {
  /** `http://127.0.0.1:PORT/.well-known/jwks.json`. */
  readonly jwksUrl: string;
  /** Requests the key set endpoint has answered. */
  readonly requests: () => number;
  /** `ok` (default), `down` (503), `garbage` (200 with a body that is not a key set), `hang` (never answers). */
  mode: "ok" | "down" | "garbage" | "hang";
  /** The settings an authorizer for this provider uses. */
  settings(overrides?: Partial<AuthSettings>): AuthSettings;
  /** A valid RS256 token for `sub` (claims and header overridable). */
  token(claims?: JWTPayload & { sub?: string }, options?: TokenOptions): Promise<string>;
  /** `alg: none`, unsigned. */
  unsigned(claims?: JWTPayload): string;
  /** HS256 keyed with the RSA public key's PEM text: the classic algorithm-confusion attack. */
  hs256WithPublicKey(claims?: JWTPayload): Promise<string>;
  /** Signed by a key that is not in the set, under a `kid` that is. */
  foreignSigned(claims?: JWTPayload): Promise<string>;
  close(): Promise<void>;
}

export interface TokenOptions {
  /** `RS256` (default, key `rsa-1`) or `ES256` (key `ec-1`). */
  readonly alg?: "RS256" | "ES256";
  readonly kid?: string;
  /** Seconds from now; default +600. `null` leaves `exp` out. */
  readonly expiresIn?: number | null;
}

const now = () => Math.floor(Date.now() / 1000);

export async function startTestIdp(): Promise<TestIdp> {
  const rsa: KeyPair = await generateKeyPair("RS256", { extractable: true });
  const ec: KeyPair = await generateKeyPair("ES256", { extractable: true });
  const foreign: KeyPair = await generateKeyPair("RS256", { extractable: true });
  const publicJwk = async (pair: KeyPair, kid: string, alg: string): Promise<JWK> => ({
    ...(await exportJWK(pair.publicKey)),
    kid,
    alg,
    use: "sig",
  });
  const keySet = { keys: [await publicJwk(rsa, "rsa-1", "RS256"), await publicJwk(ec, "ec-1", "ES256")] };
  const rsaPem = await exportSPKI(rsa.publicKey);

  let requests = 0;
  const server: Server = createServer((req, res) => {
    if (req.url !== "/.well-known/jwks.json") return void res.writeHead(404).end();
    requests++;
    switch (idp.mode) {
      case "down":
        return void res.writeHead(503).end("unavailable");
      case "garbage":
        return void res.writeHead(200, { "Content-Type": "application/json" }).end('{"not":"a key set"}');
      case "hang":
        return; // never answers; the client's timeout must fire
      default:
        res.writeHead(200, { "Content-Type": "application/json" }).end(JSON.stringify(keySet));
    }
  });
  await new Promise<void>((resolve) => server.listen(0, "127.0.0.1", resolve));
  const { port } = server.address() as AddressInfo;
  const jwksUrl = `http://127.0.0.1:${port}/.well-known/jwks.json`;

  const baseClaims = (claims: JWTPayload & { sub?: string } = {}, expiresIn: number | null = 600): JWTPayload => ({
    iss: ISSUER,
    aud: AUDIENCE,
    sub: "user-1",
    iat: now(),
    ...(expiresIn === null ? {} : { exp: now() + expiresIn }),
    ...claims,
  });

  const idp: TestIdp = {
    jwksUrl,
    requests: () => requests,
    mode: "ok",
    settings: (overrides = {}) => ({
      issuer: ISSUER,
      audience: AUDIENCE,
      jwksUrl,
      algorithms: ["RS256", "ES256"],
      queryParam: "token",
      ...overrides,
    }),
    async token(claims = {}, options = {}) {
      const alg = options.alg ?? "RS256";
      const key = alg === "RS256" ? rsa.privateKey : ec.privateKey;
      const kid = options.kid ?? (alg === "RS256" ? "rsa-1" : "ec-1");
      return new SignJWT(baseClaims(claims, options.expiresIn === undefined ? 600 : options.expiresIn))
        .setProtectedHeader({ alg, kid, typ: "JWT" })
        .sign(key);
    },
    unsigned: (claims = {}) => new UnsecuredJWT(baseClaims(claims)).encode(),
    async hs256WithPublicKey(claims = {}) {
      return new SignJWT(baseClaims(claims))
        .setProtectedHeader({ alg: "HS256", kid: "rsa-1" })
        .sign(new TextEncoder().encode(rsaPem));
    },
    async foreignSigned(claims = {}) {
      return new SignJWT(baseClaims(claims))
        .setProtectedHeader({ alg: "RS256", kid: "rsa-1" })
        .sign(foreign.privateKey);
    },
    close: () =>
      new Promise<void>((resolve) => {
        server.closeAllConnections();
        server.close(() => resolve());
      }),
  };
  return idp;
}

/** The token with one character of its payload changed (a claim edited without re-signing). */
export function tamper(token: string): string {
  const [header, payload, signature] = token.split(".") as [string, string, string];
  const claims = JSON.parse(Buffer.from(payload, "base64url").toString("utf8")) as Record<string, unknown>;
  claims.sub = "admin";
  return [header, Buffer.from(JSON.stringify(claims)).toString("base64url"), signature].join(".");
}
