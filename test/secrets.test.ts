/**
 * The Redis AUTH token from Secrets Manager, for real: the runtime's fetch through the real AWS SDK client against
 * a loopback server speaking Secrets Manager's JSON protocol, and the fetched token used as the password of a
 * real `redis-server --requirepass`. The last suite runs the deployed `$connect` handler in a fresh process (a
 * Lambda container of its own) to prove the fetch happens once per container and a failed one is retried.
 */
import { spawn } from "node:child_process";
import * as path from "node:path";
import { expect } from "chai";
import { Redis } from "ioredis";
import { buildContainerDeps } from "../app/container";
// The container builds the stores this process registered: here the Redis store, as in a Redis stack's bundle.
import "../app/stores/redis";
import { ENV, EnvError, type RuntimeEnv, readRuntimeEnv } from "../contract/env";
import { fetchSecretString, resolveRedisAuth, SecretFetchError } from "../runtime/secrets";
import { useDummyAwsCredentials } from "./support/aws-env";
import { startRedis, type TestRedis } from "./support/redis-server";
import { type FakeSecretsManager, startSecretsManager } from "./support/secrets-manager-server";

const ROOT = path.resolve(__dirname, "..");
const SECRET_ARN = "arn:aws:secretsmanager:us-east-1:123456789012:secret:websocket-chat-redis-auth-secret-AbCdEf";
const PASSWORD = "Fetched-From-Secrets-Manager-0123456789";

/** Sets process.env keys (computed when the suite starts) for the suite, and puts the old values back after it. */
function withEnv(values: () => Record<string, string>): void {
  const saved: Record<string, string | undefined> = {};
  before(() => {
    for (const [key, value] of Object.entries(values())) {
      saved[key] = process.env[key];
      process.env[key] = value;
    }
  });
  after(() => {
    for (const [key, value] of Object.entries(saved)) {
      if (value === undefined) delete process.env[key];
      else process.env[key] = value;
    }
  });
}

describe("runtime env: the Redis AUTH token's source", () => {
  const base = { [ENV.STORE]: "redis", [ENV.REDIS_HOST]: "cache.internal", [ENV.REDIS_TLS]: "true" };

  it("reads REDIS_AUTH_SECRET_ARN as the token's source, not as a token", () => {
    const env = readRuntimeEnv({ ...base, [ENV.REDIS_AUTH_SECRET_ARN]: SECRET_ARN });
    expect(env.redis).to.include({ host: "cache.internal", tls: true, authSecretArn: SECRET_ARN });
    expect(env.redis).not.to.have.property("authToken");
  });

  it("keeps REDIS_AUTH_TOKEN for local runs", () => {
    const env = readRuntimeEnv({ ...base, [ENV.REDIS_AUTH_TOKEN]: "local-token" });
    expect(env.redis).to.include({ authToken: "local-token" });
    expect(env.redis).not.to.have.property("authSecretArn");
  });

  it("refuses both at once, naming both variables", () => {
    expect(() =>
      readRuntimeEnv({ ...base, [ENV.REDIS_AUTH_TOKEN]: "local-token", [ENV.REDIS_AUTH_SECRET_ARN]: SECRET_ARN }),
    ).to.throw(EnvError, /REDIS_AUTH_TOKEN and REDIS_AUTH_SECRET_ARN are both set/);
  });

  it("resolves the secret into the token, and leaves every other environment alone", async () => {
    const reads: string[] = [];
    const read = async (id: string) => {
      reads.push(id);
      return PASSWORD;
    };
    const fromSecret = readRuntimeEnv({ ...base, [ENV.REDIS_AUTH_SECRET_ARN]: SECRET_ARN });
    const resolved = await resolveRedisAuth(fromSecret, read);
    expect(resolved.redis).to.deep.equal({
      host: "cache.internal",
      port: 6379,
      tls: true,
      authToken: PASSWORD,
      keyPrefix: "wsc",
    });
    expect(reads).to.deep.equal([SECRET_ARN]);

    const untouched: RuntimeEnv[] = [
      readRuntimeEnv({ ...base, [ENV.REDIS_AUTH_TOKEN]: "local-token" }),
      readRuntimeEnv({ [ENV.STORE]: "redis", [ENV.REDIS_URL]: "redis://127.0.0.1:6379" }),
      readRuntimeEnv({ [ENV.STORE]: "dynamodb", [ENV.TABLE_NAME]: "t" }),
      readRuntimeEnv({ [ENV.STORE]: "memory" }),
    ];
    for (const env of untouched) expect(await resolveRedisAuth(env, read)).to.equal(env);
    expect(reads).to.have.length(1);
  });
});

describe("runtime: fetching a secret from Secrets Manager (loopback server, real SDK client)", function () {
  this.timeout(20_000);
  let sm: FakeSecretsManager;

  before(async () => {
    useDummyAwsCredentials();
    sm = await startSecretsManager();
    sm.secrets.set(SECRET_ARN, PASSWORD);
  });
  // The standard per-service endpoint override of the AWS SDK.
  withEnv(() => ({ [ENV.AWS_ENDPOINT_URL_SECRETS_MANAGER]: sm.endpoint }));
  after(async () => sm?.close());
  beforeEach(() => {
    sm.requests.length = 0;
  });

  it("returns the SecretString of GetSecretValue, in one signed request for secretsmanager", async () => {
    expect(await fetchSecretString(SECRET_ARN)).to.equal(PASSWORD);
    expect(sm.requests).to.have.length(1);
    const [request] = sm.requests;
    expect(request!.target).to.equal("secretsmanager.GetSecretValue");
    expect(request!.body).to.deep.equal({ SecretId: SECRET_ARN });
    expect(request!.headers["content-type"]).to.equal("application/x-amz-json-1.1");
    expect(String(request!.headers.authorization)).to.match(
      /^AWS4-HMAC-SHA256 Credential=[^/]+\/\d{8}\/[a-z0-9-]+\/secretsmanager\/aws4_request/,
    );
  });

  it("retries throttling and server errors within its attempts", async () => {
    sm.failNext("throttle", 1);
    sm.failNext("internal", 1);
    expect(await fetchSecretString(SECRET_ARN)).to.equal(PASSWORD);
    expect(sm.requests).to.have.length(3);
  });

  it("fails naming the secret and the AWS error, never a value, when the secret does not exist", async () => {
    const missing = SECRET_ARN.replace("AbCdEf", "Zz0000");
    let error: unknown;
    try {
      await fetchSecretString(missing);
    } catch (e) {
      error = e;
    }
    expect(error).to.be.instanceOf(SecretFetchError);
    expect((error as Error).message)
      .to.include(missing)
      .and.include("ResourceNotFoundException");
    expect((error as Error).message).not.to.include(PASSWORD);
    // Not retried: a missing secret stays missing.
    expect(sm.requests).to.have.length(1);
  });

  it("gives up at its deadline when Secrets Manager does not answer", async () => {
    sm.failNext("hang", 1);
    const started = Date.now();
    let error: unknown;
    try {
      await fetchSecretString(SECRET_ARN, { deadlineMs: 300 });
    } catch (e) {
      error = e;
    }
    const elapsed = Date.now() - started;
    expect(error).to.be.instanceOf(SecretFetchError);
    expect((error as Error).message).to.match(/took longer than 300 ms/);
    expect(elapsed).to.be.below(1_500);
  });
});

describe("runtime: the fetched token is the Redis password", function () {
  this.timeout(30_000);
  let sm: FakeSecretsManager;
  let redis: TestRedis;
  const prefix = `secrets-${process.pid}-${Date.now()}`;

  before(async () => {
    useDummyAwsCredentials();
    sm = await startSecretsManager();
    sm.secrets.set(SECRET_ARN, PASSWORD);
    sm.secrets.set(`${SECRET_ARN}-wrong`, "not-the-password-at-all");
    redis = await startRedis({ password: PASSWORD });
  });
  withEnv(() => ({ [ENV.AWS_ENDPOINT_URL_SECRETS_MANAGER]: sm.endpoint }));
  after(async () => {
    await sm?.close();
    await redis?.stop();
  });

  /** The environment infra gives a deployed function, pointed at the loopback servers. */
  const deployedEnv = (secretArn?: string): Record<string, string> => ({
    [ENV.STORE]: "redis",
    [ENV.REDIS_HOST]: "127.0.0.1",
    [ENV.REDIS_PORT]: String(redis.port),
    [ENV.REDIS_TLS]: "false",
    [ENV.REDIS_KEY_PREFIX]: prefix,
    ...(secretArn ? { [ENV.REDIS_AUTH_SECRET_ARN]: secretArn } : {}),
  });

  const record = (connectionId: string) => ({ connectionId, connectedAt: Date.now(), expiresAt: Date.now() + 60_000 });

  it("connects the store with the token read from the secret", async () => {
    sm.requests.length = 0;
    const deps = await buildContainerDeps(deployedEnv(SECRET_ARN));
    try {
      await deps.store.add(record("with-secret"));
      expect((await deps.store.get("with-secret"))?.connectionId).to.equal("with-secret");
    } finally {
      await deps.store.close();
    }
    expect(sm.requests.map((r) => r.body.SecretId)).to.deep.equal([SECRET_ARN]);
  });

  it("is refused by the same server without the token", async () => {
    const deps = await buildContainerDeps(deployedEnv());
    try {
      let error: unknown;
      try {
        await deps.store.add(record("without-secret"));
      } catch (e) {
        error = e;
      }
      expect(String((error as Error)?.message)).to.match(/NOAUTH/);
    } finally {
      await deps.store.close();
    }
  });

  it("is refused with a different token", async () => {
    const deps = await buildContainerDeps(deployedEnv(`${SECRET_ARN}-wrong`));
    try {
      let error: unknown;
      try {
        await deps.store.add(record("wrong-secret"));
      } catch (e) {
        error = e;
      }
      expect(String((error as Error)?.message)).to.match(/WRONGPASS|invalid password/i);
    } finally {
      await deps.store.close();
    }
  });

  it("runs the deployed $connect handler in a fresh container: one fetch, retried after a failed cold start", async () => {
    sm.requests.length = 0;
    // The first cold start meets a Secrets Manager that keeps failing (every attempt of the SDK's three).
    sm.failNext("internal", 3);
    const script = `
      // What the Redis stack's bundle is: the handler plus the Redis store's factory (infra/bundle.ts).
      require("./app/stores/redis");
      const { handler } = require("./handlers/connect");
      const event = (i) => ({
        requestContext: {
          routeKey: "$connect", eventType: "CONNECT", extendedRequestId: "x" + i, requestTime: "", messageDirection: "IN",
          stage: "test", connectedAt: Date.now(), requestTimeEpoch: Date.now(), identity: { sourceIp: "127.0.0.1" },
          requestId: "r" + i, domainName: "localhost", connectionId: "child-" + i, apiId: "api",
        },
        isBase64Encoded: false,
      });
      (async () => {
        const results = [];
        for (let i = 0; i < 3; i++) {
          try {
            results.push(await handler(event(i)));
          } catch (error) {
            results.push({ error: error.name + ": " + error.message });
          }
        }
        process.stdout.write("RESULTS " + JSON.stringify(results) + "\\n");
        process.exit(0);
      })();
    `;
    const output = await runNode(script, {
      ...deployedEnv(SECRET_ARN),
      AWS_ENDPOINT_URL_SECRETS_MANAGER: sm.endpoint,
      AWS_REGION: "us-east-1",
      AWS_ACCESS_KEY_ID: "local",
      AWS_SECRET_ACCESS_KEY: "local",
      AWS_LAMBDA_LOG_LEVEL: "ERROR",
    });
    const line = output.split("\n").find((l) => l.startsWith("RESULTS "));
    expect(line, output).to.be.a("string");
    const results = JSON.parse(line!.slice("RESULTS ".length)) as { statusCode?: number; error?: string }[];
    expect(results[0]!.error).to.match(/SecretFetchError: reading secret .* failed: InternalServiceError/);
    expect(results[0]!.error).not.to.include(PASSWORD);
    expect(results.slice(1)).to.deep.equal([{ statusCode: 200 }, { statusCode: 200 }]);
    // Three failed attempts, then one successful fetch shared by both later invocations.
    expect(sm.requests).to.have.length(4);
    expect(output).not.to.include(PASSWORD);

    const check = new Redis({ host: "127.0.0.1", port: redis.port, password: PASSWORD, lazyConnect: true });
    try {
      expect(await check.exists(`{${prefix}}:conn:child-1`, `{${prefix}}:conn:child-2`)).to.equal(2);
      expect(await check.exists(`{${prefix}}:conn:child-0`)).to.equal(0);
    } finally {
      check.disconnect();
    }
  });
});

/** Runs a script with tsx in a new Node process (a fresh "container"), returning stdout and stderr. */
function runNode(script: string, env: Record<string, string>): Promise<string> {
  return new Promise((resolve, reject) => {
    const inherited = Object.fromEntries(
      Object.entries(process.env).filter(
        ([key]) => !key.startsWith("REDIS_") && !key.startsWith("AWS_") && key !== "STORE",
      ),
    );
    const child = spawn(process.execPath, ["--require", "tsx/cjs", "-e", script], {
      cwd: ROOT,
      env: { ...inherited, ...env },
      stdio: ["ignore", "pipe", "pipe"],
    });
    let output = "";
    child.stdout.on("data", (chunk: Buffer) => (output += chunk.toString()));
    child.stderr.on("data", (chunk: Buffer) => (output += chunk.toString()));
    const timer = setTimeout(() => {
      child.kill("SIGKILL");
      reject(new Error(`child did not finish:\n${output}`));
    }, 25_000);
    child.once("error", reject);
    child.once("exit", () => {
      clearTimeout(timer);
      resolve(output);
    });
  });
}
