/**
 * Every function infra deploys, as Lambda would run it: for each deployed store, the Pulumi program runs under
 * mocks and each `aws:lambda/function:Function` it registers gives its archive (what `handlerArchive` built for
 * it, file {@link BUNDLE_FILE}), its handler string and its environment. The archive is written to a directory of
 * its own outside the project, and a fresh `node` (no tsx, no NODE_PATH, no node_modules anywhere up the tree)
 * loads it the way Lambda's Node.js runtime does (`_HANDLER` = `index.handler`: file `index` under
 * LAMBDA_TASK_ROOT, export `handler`), invokes it with a real event and prints the result.
 *
 * The environment is the function's own, exactly as infra set it, with only endpoints pointed at loopback
 * servers (the `@connections` API, the Redis host, the key set URL, the AWS SDK's standard endpoint overrides)
 * and what Lambda itself provides (handler, task root, region, credentials). The backends are real: dynalite,
 * a spawned `redis-server` behind TLS (infra sets REDIS_TLS) whose AUTH token comes from a loopback Secrets
 * Manager under the ARN infra set, a loopback `@connections` server and a loopback identity provider.
 */
import { execFileSync, spawn } from "node:child_process";
import { existsSync, mkdirSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from "node:fs";
import { createServer, type Server } from "node:http";
import { type AddressInfo, connect as netConnect, type Socket } from "node:net";
import { tmpdir } from "node:os";
import * as path from "node:path";
import { createServer as createTlsServer } from "node:tls";
import * as pulumi from "@pulumi/pulumi";
import { expect } from "chai";
import type { ConnectionStore } from "../contract/connection-store";
import { ENV, readRuntimeEnv } from "../contract/env";
import { AUTHORIZER, FANOUT_WORKER, ROUTES, TOKEN_SWEEPER } from "../contract/routes";
import { BUNDLE_FILE, bundleHandler, LAMBDA_HANDLER, LAMBDA_RUNTIME } from "../infra/bundle";
import { ChatApi } from "../infra/chat-api";
import { type DeployedStore, loadConfig, PROJECT_NAME } from "../infra/config";
import { authorizerEvent } from "../local/authorizer";
import { type ConnectionContext, connectEvent, disconnectEvent, messageEvent, newConnectionId } from "../local/events";
import { DynamoDbConnectionStore } from "../stores/dynamodb";
import { RedisConnectionStore } from "../stores/redis";
import { createConnectionsTable, localDynamoDbClient, startDynalite, type TestDynamoDb } from "./support/dynalite";
import { startTestIdp, type TestIdp } from "./support/jwks";
import { type ManagementServer, startManagementServer } from "./support/management-server";
import { plain, REGION, RecordingMocks, resolve } from "./support/pulumi-mocks";
import { startRedis, type TestRedis } from "./support/redis-server";
import { type FakeSecretsManager, startSecretsManager } from "./support/secrets-manager-server";

const FUNCTION_TYPE = "aws:lambda/function:Function";
const STACK = "dev";
const runtimeInternals = pulumi.runtime as unknown as { waitForRPCs(): Promise<void> };

/** One deployed function, as the program registered it. */
interface DeployedFunction {
  readonly name: string;
  readonly handler: string;
  readonly runtime: string;
  readonly timeoutSeconds: number;
  /** The archive's files: name => content. */
  readonly files: Record<string, string>;
  /** `environment.variables`, exactly as infra set them. */
  readonly env: Record<string, string>;
}

interface Deployment {
  /** By resource name: `${PROJECT_NAME}-${route.name}`. */
  readonly functions: Map<string, DeployedFunction>;
  readonly apiId: string;
  readonly executionArn: string;
}

/** The $connect authorizer as a stack with `auth: jwt` configures it; the key set URL is https, as deployed. */
const DEPLOYED_JWKS_URL = "https://issuer.test/.well-known/jwks.json";

/**
 * Runs the program's ChatApi under mocks with the stack config's defaults for `store` (what `createProgram` does)
 * plus the JWT authorizer, so the authorizer is deployed too, and reads back every function it registered. The
 * authorizer is given as ChatApi's `auth` argument (what config parsing produces for `auth: jwt`), so this suite
 * does not depend on how the stack file spells it.
 */
async function deploy(store: DeployedStore, idp: TestIdp): Promise<Deployment> {
  const mocks = new RecordingMocks();
  await pulumi.runtime.setMocks(mocks, PROJECT_NAME, STACK, false);
  pulumi.runtime.setAllConfig({ [`${PROJECT_NAME}:store`]: store });
  const chat = new ChatApi(PROJECT_NAME, {
    ...loadConfig(),
    auth: {
      mode: "jwt",
      jwt: idp.settings({ jwksUrl: DEPLOYED_JWKS_URL }),
      tokenSource: { kind: "query", name: "token" },
    },
  });
  await resolve(chat.url);
  await runtimeInternals.waitForRPCs();

  const functions = new Map<string, DeployedFunction>();
  for (const resource of mocks.ofType(FUNCTION_TYPE)) {
    const inputs = resource.inputs as Record<string, any>;
    const assets = await (inputs.code as pulumi.asset.AssetArchive).assets;
    const files: Record<string, string> = {};
    for (const [file, asset] of Object.entries(assets)) files[file] = await (asset as pulumi.asset.StringAsset).text;
    functions.set(resource.name, {
      name: resource.name,
      handler: inputs.handler,
      runtime: inputs.runtime,
      timeoutSeconds: inputs.timeout,
      files,
      env: plain<{ variables: Record<string, string> }>(inputs.environment).variables,
    });
  }
  const api = mocks.named(`${PROJECT_NAME}-api`);
  return { functions, apiId: api.id, executionArn: String(api.state.executionArn) };
}

/** What Lambda's Node.js runtime does with an archive, in plain CommonJS: no project code, no tsx. */
const BOOTSTRAP = `
const fs = require("node:fs");
const path = require("node:path");
const { pathToFileURL } = require("node:url");
const MARKER = process.argv[1];
const print = (value) => process.stdout.write("\\n" + MARKER + JSON.stringify(value) + "\\n", () => process.exit(0));
(async () => {
  // The invocation, as the Runtime API hands it over: the event, the deadline, the request id.
  let input = "";
  for await (const chunk of process.stdin) input += chunk;
  const { event, deadlineMs, requestId } = JSON.parse(input);
  // _HANDLER "dir/module.export.path": the module under LAMBDA_TASK_ROOT, then the export path within it.
  const handlerString = process.env._HANDLER;
  const match = /^([^.]*)\\.(.*)$/.exec(path.basename(handlerString));
  if (!match) throw new Error("malformed handler " + handlerString);
  const base = path.resolve(process.env.LAMBDA_TASK_ROOT, path.dirname(handlerString), match[1]);
  const file = [".js", ".mjs", ".cjs"].map((ext) => base + ext).find((f) => fs.existsSync(f));
  if (!file) throw new Error("no module " + base + ".{js,mjs,cjs}");
  const mod = file.endsWith(".mjs") ? await import(pathToFileURL(file).href) : require(file);
  const handler = match[2].split(".").reduce((object, key) => (object == null ? undefined : object[key]), mod);
  if (typeof handler !== "function") throw new Error(handlerString + " is not a function but " + typeof handler);
  const context = {
    awsRequestId: requestId,
    functionName: process.env.AWS_LAMBDA_FUNCTION_NAME,
    getRemainingTimeInMillis: () => deadlineMs - Date.now(),
    callbackWaitsForEmptyEventLoop: true,
  };
  const returned = handler(event, context);
  const result = await returned;
  print({ ok: true, arity: handler.length, promise: typeof returned?.then === "function", result: result ?? null });
})().catch((error) => print({ ok: false, error: { name: error?.name, message: String(error?.message ?? error) } }));
`;
const MARKER = "@@bundle-smoke@@";

interface Invocation {
  readonly ok: boolean;
  /** Declared parameters: Node 24's runtime has no callback-style handlers, so at most (event, context). */
  readonly arity: number;
  /** Whether the handler returned a promise (an async handler). */
  readonly promise: boolean;
  readonly result: any;
  readonly error?: { readonly name?: string; readonly message: string };
}

/** Runs one invocation in a fresh `node` whose environment is exactly `env`. */
function invoke(dir: string, env: Record<string, string>, event: unknown, timeoutSeconds: number): Promise<Invocation> {
  return new Promise((done, fail) => {
    const child = spawn(process.execPath, ["-e", BOOTSTRAP, MARKER], {
      cwd: dir,
      env,
      stdio: ["pipe", "pipe", "pipe"],
    });
    let stdout = "";
    let stderr = "";
    child.stdout.on("data", (chunk: Buffer) => (stdout += chunk.toString()));
    child.stderr.on("data", (chunk: Buffer) => (stderr += chunk.toString()));
    const timer = setTimeout(() => child.kill("SIGKILL"), 20_000);
    child.once("error", fail);
    child.once("close", (code, signal) => {
      clearTimeout(timer);
      const line = stdout.split("\n").find((l) => l.startsWith(MARKER));
      if (line === undefined)
        return fail(new Error(`node exited (${code ?? signal}) without a result:\n${stdout}\n${stderr}`));
      const invocation = JSON.parse(line.slice(MARKER.length)) as Invocation;
      if (!invocation.ok) return fail(new Error(`${invocation.error?.name}: ${invocation.error?.message}\n${stderr}`));
      done(invocation);
    });
    child.stdin.end(
      JSON.stringify({ event, deadlineMs: Date.now() + timeoutSeconds * 1000, requestId: `smoke-${Date.now()}` }),
    );
  });
}

/** A self-signed certificate for 127.0.0.1 (openssl), and the PEM file a child trusts it from. */
function selfSignedCertificate(dir: string): { key: string; cert: string; certFile: string } {
  const keyFile = path.join(dir, "key.pem");
  const certFile = path.join(dir, "cert.pem");
  execFileSync(
    "openssl",
    [
      ...["req", "-x509", "-newkey", "ec", "-pkeyopt", "ec_paramgen_curve:prime256v1", "-nodes", "-days", "1"],
      ...["-subj", "/CN=127.0.0.1", "-addext", "subjectAltName=IP:127.0.0.1", "-keyout", keyFile, "-out", certFile],
    ],
    { stdio: "ignore" },
  );
  return { key: readFileSync(keyFile, "utf8"), cert: readFileSync(certFile, "utf8"), certFile };
}

/** ElastiCache with in-transit encryption, on loopback: a TLS listener forwarding to a plain redis-server. */
async function startTlsProxy(
  target: number,
  tls: { key: string; cert: string },
): Promise<{ port: number; sessions: () => number; close(): Promise<void> }> {
  const sockets = new Set<Socket>();
  let sessions = 0;
  const server = createTlsServer(tls, (client) => {
    sessions++;
    const upstream = netConnect(target, "127.0.0.1");
    for (const socket of [client, upstream]) {
      sockets.add(socket);
      socket.once("close", () => sockets.delete(socket));
    }
    client.on("error", () => upstream.destroy());
    upstream.on("error", () => client.destroy());
    client.pipe(upstream).pipe(client);
  });
  await new Promise<void>((done) => server.listen(0, "127.0.0.1", done));
  return {
    port: (server.address() as AddressInfo).port,
    sessions: () => sessions,
    close: () => {
      for (const socket of sockets) socket.destroy();
      return new Promise((done) => server.close(() => done()));
    },
  };
}

/** A loopback Lambda API that only counts invocations: small broadcasts must never reach a worker. */
async function startLambdaRecorder(): Promise<{ endpoint: string; requests: () => number; close(): Promise<void> }> {
  let requests = 0;
  const server: Server = createServer((req, res) => {
    requests++;
    req.resume();
    res.writeHead(500, { "x-amzn-ErrorType": "ServiceException" }).end("{}");
  });
  await new Promise<void>((done) => server.listen(0, "127.0.0.1", done));
  return {
    endpoint: `http://127.0.0.1:${(server.address() as AddressInfo).port}`,
    requests: () => requests,
    close: () => {
      server.closeAllConnections();
      return new Promise((done) => server.close(() => done()));
    },
  };
}

/** Variables Lambda itself sets for every function: the handler, the task root, the region and credentials. */
function lambdaProvided(fn: DeployedFunction, dir: string): Record<string, string> {
  return {
    _HANDLER: fn.handler,
    LAMBDA_TASK_ROOT: dir,
    AWS_LAMBDA_FUNCTION_NAME: fn.name,
    AWS_REGION: REGION,
    // Dummy credentials, as test/support/aws-env.ts gives the in-process tests: every endpoint is loopback.
    AWS_ACCESS_KEY_ID: "local",
    AWS_SECRET_ACCESS_KEY: "local",
  };
}

/** Variables the loopback wiring may replace (endpoint-valued ones infra sets) or add (standard overrides). */
const REPLACEABLE = new Set<string>([ENV.CALLBACK_URL, ENV.REDIS_HOST, ENV.REDIS_PORT, ENV.AUTH_JWKS_URL]);
const ADDABLE = new Set<string>([
  ENV.AWS_ENDPOINT_URL_DYNAMODB,
  ENV.AWS_ENDPOINT_URL_SECRETS_MANAGER,
  ENV.AWS_ENDPOINT_URL_LAMBDA,
  ENV.AWS_ENDPOINT_URL_SQS,
  "NODE_EXTRA_CA_CERTS",
]);

interface Backends {
  readonly server: ManagementServer;
  readonly idp: TestIdp;
  readonly lambda: { endpoint: string };
  readonly dynamodb?: TestDynamoDb;
  readonly redis?: { readonly port: number; readonly certFile: string };
  readonly secrets?: FakeSecretsManager;
}

/** The function's infra environment, with endpoints pointed at the loopback backends that serve them. */
function loopbackEnv(infra: Readonly<Record<string, string>>, b: Backends): Record<string, string> {
  const env: Record<string, string> = { ...infra };
  if (ENV.CALLBACK_URL in infra) env[ENV.CALLBACK_URL] = b.server.endpoint;
  if (ENV.AUTH_JWKS_URL in infra) env[ENV.AUTH_JWKS_URL] = b.idp.jwksUrl;
  if (ENV.TABLE_NAME in infra) env[ENV.AWS_ENDPOINT_URL_DYNAMODB] = b.dynamodb!.endpoint;
  if (ENV.REDIS_HOST in infra) {
    env[ENV.REDIS_HOST] = "127.0.0.1";
    env[ENV.REDIS_PORT] = String(b.redis!.port);
    if (infra[ENV.REDIS_TLS] === "true") env.NODE_EXTRA_CA_CERTS = b.redis!.certFile;
  }
  if (ENV.REDIS_AUTH_SECRET_ARN in infra) env[ENV.AWS_ENDPOINT_URL_SECRETS_MANAGER] = b.secrets!.endpoint;
  if (ENV.FANOUT_WORKER_FUNCTION in infra) env[ENV.AWS_ENDPOINT_URL_LAMBDA] = b.lambda.endpoint;
  // The recorder also stands in for SQS: small broadcasts must not queue a shard either.
  if (ENV.FANOUT_SHARD_QUEUE_URL in infra) env[ENV.AWS_ENDPOINT_URL_SQS] = b.lambda.endpoint;
  return env;
}

/** Every function infra deploys, by resource name, with the module it is bundled from. */
const EXPECTED_FUNCTIONS = new Map<string, string>([
  ...ROUTES.map((route) => [`${PROJECT_NAME}-${route.name}`, route.module] as const),
  [`${PROJECT_NAME}-${FANOUT_WORKER.name}`, FANOUT_WORKER.module],
  [`${PROJECT_NAME}-${AUTHORIZER.name}`, AUTHORIZER.module],
  // Deployed with auth jwt, as this stack has.
  [`${PROJECT_NAME}-${TOKEN_SWEEPER.name}`, TOKEN_SWEEPER.module],
]);
const routeFunction = (routeKey: string) => `${PROJECT_NAME}-${ROUTES.find((r) => r.routeKey === routeKey)!.name}`;

const STORES: readonly DeployedStore[] = ["dynamodb", "redis"];

describe("bundle smoke: every deployed function, loaded as Lambda loads it, against real backends", function () {
  this.timeout(120_000);
  let root: string;
  let idp: TestIdp;
  let lambda: Awaited<ReturnType<typeof startLambdaRecorder>>;

  before(async () => {
    root = mkdtempSync(path.join(tmpdir(), "bundle-smoke-"));
    // Nothing but built-ins can be required from the archives' directories: no node_modules up the tree.
    for (let dir = root; ; dir = path.dirname(dir)) {
      expect(existsSync(path.join(dir, "node_modules")), `${dir}/node_modules`).to.equal(false);
      if (path.dirname(dir) === dir) break;
    }
    idp = await startTestIdp();
    lambda = await startLambdaRecorder();
  });
  after(async () => {
    await idp?.close();
    await lambda?.close();
    if (root) rmSync(root, { recursive: true, force: true });
  });

  for (const store of STORES) {
    describe(`store ${store}`, () => {
      let deployment: Deployment;
      let server: ManagementServer;
      let backends: Backends;
      let inspect: ConnectionStore;
      const stops: (() => Promise<void>)[] = [];
      let stage: string;
      let a: ConnectionContext;
      let b: ConnectionContext;
      let redisTls: Awaited<ReturnType<typeof startTlsProxy>> | undefined;

      before(async () => {
        deployment = await deploy(store, idp);
        const anyRoute = deployment.functions.get(routeFunction("$connect"))!;
        // The management server answers on the stage infra's CALLBACK_URL names.
        stage = new URL(anyRoute.env[ENV.CALLBACK_URL]!).pathname.split("/").filter(Boolean).pop()!;
        server = await startManagementServer(stage);
        stops.push(() => server.close());

        if (store === "dynamodb") {
          const dynamodb = await startDynalite();
          stops.push(() => dynamodb.stop());
          const tableName = anyRoute.env[ENV.TABLE_NAME]!;
          await createConnectionsTable(localDynamoDbClient(dynamodb.endpoint), tableName);
          inspect = new DynamoDbConnectionStore({ tableName, client: localDynamoDbClient(dynamodb.endpoint) });
          backends = { server, idp, lambda, dynamodb };
        } else {
          const password = `smoke-${Date.now()}`;
          const redis: TestRedis = await startRedis({ password });
          stops.push(() => redis.stop());
          const tls = selfSignedCertificate(root);
          redisTls = await startTlsProxy(redis.port!, tls);
          stops.push(() => redisTls!.close());
          const secrets = await startSecretsManager();
          stops.push(() => secrets.close());
          // The token lives in Secrets Manager under the ARN infra gave the functions, as on AWS.
          const storeRoute = [...deployment.functions.values()].find((f) => ENV.REDIS_AUTH_SECRET_ARN in f.env)!;
          secrets.secrets.set(storeRoute.env[ENV.REDIS_AUTH_SECRET_ARN]!, password);
          const redisEnv = readRuntimeEnv(storeRoute.env).redis!;
          inspect = new RedisConnectionStore({ url: redis.url, keyPrefix: redisEnv.keyPrefix });
          backends = { server, idp, lambda, redis: { port: redisTls.port, certFile: tls.certFile }, secrets };
        }
        stops.push(() => inspect.close());

        const connection = (): ConnectionContext => ({
          connectionId: newConnectionId(),
          connectedAt: Date.now(),
          stage,
          apiId: deployment.apiId,
          domainName: `${deployment.apiId}.execute-api.${REGION}.amazonaws.com`,
          sourceIp: "127.0.0.1",
          userAgent: "bundle-smoke",
        });
        a = connection();
        b = connection();
      });
      after(async () => {
        for (const stop of stops.reverse()) await stop();
      });

      /** Writes the function's archive to its own directory and runs one invocation there in a fresh node. */
      async function run(functionName: string, event: unknown): Promise<any> {
        const fn = deployment.functions.get(functionName);
        if (!fn) throw new Error(`infra deploys no function ${functionName}`);
        const dir = path.join(root, store, fn.name);
        mkdirSync(dir, { recursive: true });
        for (const [file, content] of Object.entries(fn.files)) writeFileSync(path.join(dir, file), content);
        const env = { ...loopbackEnv(fn.env, backends), ...lambdaProvided(fn, dir) };
        const invocation = await invoke(dir, env, event, fn.timeoutSeconds);
        expect(invocation.arity, `${functionName} takes (event, context) at most`).to.be.at.most(2);
        expect(invocation.promise, `${functionName} is async`).to.equal(true);
        return invocation.result;
      }

      const framesTo = (c: ConnectionContext, from = 0) => server.postsTo(c.connectionId).slice(from);
      const jsonFramesTo = (c: ConnectionContext, from = 0) =>
        framesTo(c, from).map((f) => JSON.parse(f) as Record<string, any>);
      const send = (c: ConnectionContext, body: unknown) =>
        messageEvent(c, (body as { action: string }).action, JSON.stringify(body));

      it("deploys exactly the route table's functions, the fan-out worker and the authorizer, each one archive", () => {
        expect([...deployment.functions.keys()].sort()).to.deep.equal([...EXPECTED_FUNCTIONS.keys()].sort());
        for (const fn of deployment.functions.values()) {
          expect(Object.keys(fn.files), fn.name).to.deep.equal([BUNDLE_FILE]);
          expect(fn.handler, fn.name).to.equal(LAMBDA_HANDLER);
          expect(fn.runtime, fn.name).to.equal(LAMBDA_RUNTIME);
          // What handlerArchive bundles: the stack's store for its functions, no store for the authorizer.
          const module = EXPECTED_FUNCTIONS.get(fn.name)!;
          const bundleStore = module === AUTHORIZER.module ? undefined : store;
          expect(fn.files[BUNDLE_FILE] === bundleHandler(module, bundleStore), fn.name).to.equal(true);
        }
      });

      it("gives each child exactly its infra environment, with only endpoints and Lambda's own variables added", () => {
        for (const fn of deployment.functions.values()) {
          const env = loopbackEnv(fn.env, backends);
          for (const [key, value] of Object.entries(env)) {
            if (key in fn.env && !REPLACEABLE.has(key)) expect(value, `${fn.name} ${key}`).to.equal(fn.env[key]);
            if (!(key in fn.env)) expect(ADDABLE.has(key), `${fn.name} adds ${key}`).to.equal(true);
          }
          expect(Object.keys(env), fn.name).to.include.members(Object.keys(fn.env));
          expect(
            Object.keys(lambdaProvided(fn, root)).filter((key) => key in fn.env),
            fn.name,
          ).to.deep.equal([]);
        }
      });

      it("the authorizer allows a good token: Allow execute-api:Invoke on the $connect method ARN", async () => {
        const methodArn = `${deployment.executionArn}/${stage}/$connect`;
        const token = await idp.token({ sub: "user-1" });
        const event = authorizerEvent(
          a,
          { headers: { Host: a.domainName }, queryStringParameters: { token } },
          methodArn,
        );
        const result = await run(`${PROJECT_NAME}-${AUTHORIZER.name}`, event);
        expect(result.principalId).to.equal("user-1");
        expect(result.policyDocument.Statement).to.deep.equal([
          { Action: "execute-api:Invoke", Effect: "Allow", Resource: methodArn },
        ]);
        expect(result.context).to.include({ userId: "user-1" });
        expect(idp.requests(), "key set fetched from the loopback provider").to.be.greaterThan(0);
        // API Gateway hands the authorizer's answer to every later event of the connection.
        a = { ...a, authorizer: { principalId: result.principalId, integrationLatency: 5, ...result.context } };
      });

      it("$connect returns 200 and the connection is in the store", async () => {
        const connected = await run(routeFunction("$connect"), connectEvent(a, { headers: { Host: a.domainName } }));
        expect(connected).to.deep.include({ statusCode: 200 });
        expect(await inspect.get(a.connectionId)).to.deep.include({ connectionId: a.connectionId });
        expect((await inspect.get(a.connectionId))?.attributes).to.include({ userId: "user-1" });

        const event = connectEvent(b, { headers: { Host: b.domainName }, queryStringParameters: { name: "bob" } });
        expect(await run(routeFunction("$connect"), event)).to.deep.include({ statusCode: 200 });
        expect((await inspect.get(b.connectionId))?.attributes).to.include({ name: "bob" });
        if (store === "redis") {
          // Over TLS, with the token read from Secrets Manager under the ARN infra set.
          expect(redisTls!.sessions(), "TLS sessions").to.be.greaterThan(0);
          const reads = backends.secrets!.requests.map((r) => [r.target, r.body.SecretId]);
          expect(reads).to.not.be.empty;
          const arn = deployment.functions.get(routeFunction("$connect"))!.env[ENV.REDIS_AUTH_SECRET_ARN];
          for (const read of reads) expect(read).to.deep.equal(["secretsmanager.GetSecretValue", arn]);
        }
      });

      it("join puts both connections in a room and tells its members", async () => {
        expect(await run(routeFunction("join"), send(a, { action: "join", room: "lobby" }))).to.deep.include({
          statusCode: 200,
        });
        const seenByA = framesTo(a).length;
        expect(await run(routeFunction("join"), send(b, { action: "join", room: "lobby" }))).to.deep.include({
          statusCode: 200,
        });
        expect(await inspect.roomsOf(b.connectionId)).to.deep.equal(["lobby"]);
        const members = jsonFramesTo(b).find((f) => f.type === "members");
        expect(members?.members.map((m: { connectionId: string }) => m.connectionId).sort()).to.deep.equal(
          [a.connectionId, b.connectionId].sort(),
        );
        expect(jsonFramesTo(a, seenByA).some((f) => f.type === "joined" && f.connectionId === b.connectionId)).to.equal(
          true,
        );
      });

      it("sendmessage posts the frame to the second connection", async () => {
        const before = framesTo(b).length;
        const data = `hello from the ${store} bundle`;
        expect(await run(routeFunction("sendmessage"), send(a, { action: "sendmessage", data }))).to.deep.include({
          statusCode: 200,
        });
        expect(framesTo(b, before)).to.deep.equal([data]);
        expect(framesTo(a).at(-1)).to.equal(data);
      });

      it("whoami answers the asker with its id and rooms", async () => {
        const before = framesTo(b).length;
        expect(await run(routeFunction("whoami"), send(b, { action: "whoami" }))).to.deep.include({ statusCode: 200 });
        expect(jsonFramesTo(b, before)).to.deep.equal([
          { type: "whoami", connectionId: b.connectionId, name: "bob", nameVerified: false, rooms: ["lobby"] },
        ]);
      });

      it("sendto delivers a direct frame to that one connection", async () => {
        const before = framesTo(b).length;
        const event = send(a, { action: "sendto", to: b.connectionId, data: "psst" });
        expect(await run(routeFunction("sendto"), event)).to.deep.include({ statusCode: 200 });
        expect(jsonFramesTo(b, before)).to.have.length(1);
        expect(jsonFramesTo(b, before)[0]).to.include({ type: "direct", from: a.connectionId, data: "psst" });
      });

      it("$default answers an unknown action with an UnknownAction error frame", async () => {
        const before = framesTo(a).length;
        const event = messageEvent(a, "$default", JSON.stringify({ action: "dance" }));
        expect(await run(routeFunction("$default"), event)).to.deep.include({ statusCode: 200 });
        expect(jsonFramesTo(a, before)).to.have.length(1);
        expect(jsonFramesTo(a, before)[0]).to.include({ type: "error", code: "UnknownAction", action: "dance" });
      });

      it("the fan-out worker posts the shard it is given", async () => {
        const [beforeA, beforeB] = [framesTo(a).length, framesTo(b).length];
        const shard = {
          type: "fanout-shard",
          version: 1,
          broadcastId: `smoke-${store}`,
          shard: 1,
          sender: a.connectionId,
          data: `shard for ${store}`,
          connectionIds: [a.connectionId, b.connectionId],
        };
        // The worker returns nothing (it never throws: Lambda would retry the whole shard).
        expect(await run(`${PROJECT_NAME}-${FANOUT_WORKER.name}`, shard)).to.equal(null);
        expect(framesTo(a, beforeA)).to.deep.equal([shard.data]);
        expect(framesTo(b, beforeB)).to.deep.equal([shard.data]);
        // As the shard queue's event source mapping delivers it: a batch, answered with its failures (none).
        const queued = { ...shard, data: `queued shard for ${store}` };
        const records = { Records: [{ messageId: "m-1", body: JSON.stringify(queued), eventSource: "aws:sqs" }] };
        expect(await run(`${PROJECT_NAME}-${FANOUT_WORKER.name}`, records)).to.deep.equal({ batchItemFailures: [] });
        expect(framesTo(a, beforeA)).to.deep.equal([shard.data, queued.data]);
        expect(framesTo(b, beforeB)).to.deep.equal([shard.data, queued.data]);
      });

      it("leave takes a connection out of the room and tells the others", async () => {
        const before = framesTo(b).length;
        expect(await run(routeFunction("leave"), send(a, { action: "leave", room: "lobby" }))).to.deep.include({
          statusCode: 200,
        });
        expect(await inspect.roomsOf(a.connectionId)).to.deep.equal([]);
        expect(jsonFramesTo(b, before).map((f) => [f.type, f.connectionId])).to.deep.equal([["left", a.connectionId]]);
      });

      it("$disconnect removes the connection from the store", async () => {
        const event = disconnectEvent(b, 1000, "bye");
        expect(await run(routeFunction("$disconnect"), event)).to.deep.include({ statusCode: 200 });
        expect(await inspect.get(b.connectionId)).to.equal(undefined);
        expect(await inspect.roomsOf(b.connectionId)).to.deep.equal([]);
        expect(await inspect.get(a.connectionId)).to.deep.include({ connectionId: a.connectionId });
      });

      it("the token sweeper, invoked as its schedule does, closes a connection whose stored token has expired", async () => {
        const expired: ConnectionContext = { ...b, connectionId: newConnectionId() };
        await inspect.add({
          connectionId: expired.connectionId,
          connectedAt: Date.now(),
          expiresAt: Date.now() + 60_000,
          attributes: { userId: "user-2", tokenExpiresAt: String(Math.floor(Date.now() / 1000) - 5) },
        });
        const scheduled = { source: "aws.events", "detail-type": "Scheduled Event", detail: {} };
        const summary = await run(`${PROJECT_NAME}-${TOKEN_SWEEPER.name}`, scheduled);
        expect(summary).to.deep.include({ expired: 1, closed: 1, failed: 0 });
        expect(jsonFramesTo(expired).map((f) => f.code)).to.deep.equal(["TokenExpired"]);
        expect(server.deleted).to.include(expired.connectionId);
        expect(server.deleted).to.not.include(a.connectionId);
      });

      it("hands nothing to a worker or the shard queue: a two-connection broadcast stays inline", () => {
        expect(lambda.requests()).to.equal(0);
      });
    });
  }
});
