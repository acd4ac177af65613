/**
 * Lambda bundles per function AND per store (infra/bundle.ts: the handler plus one store's factory module): a
 * DynamoDB stack's functions carry no ioredis and no Secrets Manager client, a Redis stack's no DynamoDB client;
 * what each bundle contains is read from esbuild's metafile, not grepped from minified text. Each store's bundles also run: loaded from a directory with no
 * node_modules, in a fresh `node`, against dynalite / a real redis-server and a loopback `@connections` server.
 */
import { execFile } from "node:child_process";
import { mkdirSync, mkdtempSync, rmSync, writeFileSync } from "node:fs";
import { isBuiltin } from "node:module";
import { tmpdir } from "node:os";
import * as path from "node:path";
import * as vm from "node:vm";
import { expect } from "chai";
import { type StoreFactory, storeFactoryOf } from "../app/store-registry";
import { createDynamoDbStore } from "../app/stores/dynamodb";
import { createRedisStore } from "../app/stores/redis";
import { ENV } from "../contract/env";
import { AUTHORIZER, FANOUT_WORKER, ROUTES } from "../contract/routes";
import { buildBundle, bundledPackages, bundleHandler, handlerBundle, STORE_EXCLUDED_PACKAGES } from "../infra/bundle";
import { DEPLOYED_STORES, type DeployedStore } from "../infra/config";
import { type ConnectionContext, connectEvent, messageEvent, newConnectionId } from "../local/events";
import { createConnectionsTable, localDynamoDbClient, startDynalite, type TestDynamoDb } from "./support/dynalite";
import { type ManagementServer, startManagementServer } from "./support/management-server";
import { startRedis, type TestRedis } from "./support/redis-server";

const MODULES = [...ROUTES.map((r) => r.module), FANOUT_WORKER.module];
const inputs = (store: DeployedStore, module: string) => Object.keys(handlerBundle(module, { store }).metafile.inputs);

/** Runs a bundle's top level with nothing but built-ins to require, and returns its exports. */
function loadWithBuiltinsOnly(code: string): Record<string, unknown> {
  const module = { exports: {} as Record<string, unknown> };
  const requireBuiltin = (id: string) => {
    if (!isBuiltin(id)) throw new Error(`bundle requires ${id}`);
    return require(id);
  };
  vm.runInThisContext(`(function (module, exports, require) {${code}\n})`)(module, module.exports, requireBuiltin);
  return module.exports;
}

describe("infra: per-store bundles", function () {
  this.timeout(120_000);

  it("covers every deployed store", () => {
    expect([...DEPLOYED_STORES].sort()).to.deep.equal(Object.keys(STORE_EXCLUDED_PACKAGES).sort());
  });

  it("the DynamoDB-stack sendmessage bundle has no ioredis, no Redis store and no Secrets Manager client", () => {
    const files = inputs("dynamodb", "send-message");
    const packages = bundledPackages(handlerBundle("send-message", { store: "dynamodb" }).metafile);
    expect(packages).to.include("@aws-sdk/client-dynamodb");
    expect(packages).to.not.include.members(["ioredis"]);
    expect(packages).to.not.include("@aws-sdk/client-secrets-manager");
    expect(
      files.filter((f) => /node_modules\/(ioredis|@ioredis|redis-errors|denque|cluster-key-slot)\//.test(f)),
    ).to.deep.equal([]);
    expect(files).to.include("app/stores/dynamodb.ts").and.include("stores/dynamodb.ts");
    expect(files).to.not.include.members([
      "stores/redis.ts",
      "stores/memory.ts",
      "app/stores/redis.ts",
      "app/stores/memory.ts",
      "app/store-from-env.ts",
      "runtime/secrets.ts",
    ]);
  });

  it("the Redis-stack sendmessage bundle has no DynamoDB client and no DynamoDB store, but reads its secret", () => {
    const files = inputs("redis", "send-message");
    const packages = bundledPackages(handlerBundle("send-message", { store: "redis" }).metafile);
    expect(packages).to.include("ioredis").and.include("@aws-sdk/client-secrets-manager");
    expect(packages).to.not.include("@aws-sdk/client-dynamodb");
    expect(files.filter((f) => f.includes("node_modules/@aws-sdk/client-dynamodb/"))).to.deep.equal([]);
    expect(files).to.include("app/stores/redis.ts").and.include("runtime/secrets.ts");
    expect(files).to.not.include.members([
      "stores/dynamodb.ts",
      "stores/dynamodb-meter.ts",
      "stores/memory.ts",
      "app/stores/dynamodb.ts",
      "app/stores/memory.ts",
      "app/store-from-env.ts",
    ]);
  });

  for (const store of DEPLOYED_STORES) {
    it(`every function's ${store} bundle holds only that store's packages and exports handler`, () => {
      for (const module of MODULES) {
        const bundle = handlerBundle(module, { store });
        const packages = bundledPackages(bundle.metafile);
        for (const excluded of STORE_EXCLUDED_PACKAGES[store])
          expect(packages, `${module}: ${excluded}`).to.not.include(excluded);
        expect(loadWithBuiltinsOnly(bundle.code).handler, module).to.be.a("function");
        expect(bundleHandler(module, store), "cached").to.equal(bundle.code);
      }
    });
  }

  it("the authorizer (no store) bundles the same for every store", () => {
    const code = bundleHandler(AUTHORIZER.module);
    for (const store of DEPLOYED_STORES) expect(bundleHandler(AUTHORIZER.module, store)).to.equal(code);
  });

  it("the store bundles are smaller than the every-store bundle", () => {
    const all = bundleHandler("send-message").length;
    for (const store of DEPLOYED_STORES) expect(bundleHandler("send-message", store).length).to.be.lessThan(all);
  });

  it("a process built with one store's factory refuses any other store plainly", () => {
    const base = { connectionTtlSeconds: 60 } as const;
    const dynamodbOnly = new Map<DeployedStore, StoreFactory>([["dynamodb", { create: createDynamoDbStore }]]);
    const redisOnly = new Map<DeployedStore, StoreFactory>([["redis", { create: createRedisStore }]]);
    expect(() => storeFactoryOf("redis", dynamodbOnly)).to.throw(/bundled for the dynamodb store, but STORE is redis/);
    expect(() => storeFactoryOf("dynamodb", redisOnly)).to.throw(/bundled for the redis store, but STORE is dynamodb/);
    expect(() => storeFactoryOf("memory", new Map())).to.throw(/no store is registered/);
    // The factories themselves still refuse an environment without their settings.
    expect(() => createDynamoDbStore({ ...base, store: "dynamodb" } as never)).to.throw(/tableName is required/);
  });

  it("a function that builds no store (the authorizer) gets no store's factory", () => {
    const files = Object.keys(handlerBundle(AUTHORIZER.module, { store: "redis" }).metafile.inputs);
    expect(files.filter((f) => f.startsWith("app/") || f.startsWith("stores/"))).to.deep.equal([]);
  });

  it("fails the build when a store's bundle would contain an excluded package", () => {
    const dir = mkdtempSync(path.join(tmpdir(), "bundle-test-"));
    try {
      // An entry that imports the Redis store directly, bypassing from-env: the DynamoDB bundle must refuse it.
      const entry = path.join(dir, "entry.ts");
      writeFileSync(
        entry,
        `export { RedisConnectionStore } from ${JSON.stringify(path.resolve(__dirname, "../stores/redis"))};\n`,
      );
      expect(() => buildBundle(entry, { store: "dynamodb" })).to.throw(/contains ioredis, which that store never uses/);
    } finally {
      rmSync(dir, { recursive: true, force: true });
    }
  });
});

const RESULT_MARKER = "@@bundle-test-results@@";

/** Runs steps (bundle file, event) in order in one fresh `node`, with `env` only; resolves to their results. */
function runBundles(
  steps: readonly [string, unknown][],
  env: Record<string, string>,
): Promise<{ statusCode?: number }[]> {
  // The handlers log JSON lines to stdout too; the results are the line after the marker.
  const runner = `
    const RESULT = ${JSON.stringify(RESULT_MARKER)};
    const steps = JSON.parse(process.env.STEPS);
    (async () => {
      const results = [];
      const context = { awsRequestId: "bundle-test", functionName: "bundle-test", getRemainingTimeInMillis: () => 30000 };
      for (const [file, event] of steps) results.push(await require(file).handler(event, context));
      process.stdout.write("\\n" + RESULT + JSON.stringify(results) + "\\n");
      process.exit(0);
    })().catch((e) => { console.error(e); process.exit(1); });`;
  return new Promise((resolve, reject) => {
    execFile(
      process.execPath,
      ["-e", runner],
      {
        env: {
          PATH: process.env.PATH ?? "",
          AWS_SDK_JS_NODE_VERSION_SUPPORT_WARNING_DISABLED: "true",
          STEPS: JSON.stringify(steps),
          ...env,
        },
        cwd: tmpdir(),
        timeout: 30_000,
      },
      (error, stdout, stderr) => {
        if (error) return reject(new Error(`${error.message}\n${stderr}`));
        const line = stdout.split("\n").find((l) => l.startsWith(RESULT_MARKER));
        if (line === undefined) return reject(new Error(`no results in:\n${stdout}\n${stderr}`));
        resolve(JSON.parse(line.slice(RESULT_MARKER.length)));
      },
    );
  });
}

describe("infra: per-store bundles run", function () {
  this.timeout(120_000);
  let dir: string;
  let server: ManagementServer;

  before(() => {
    dir = mkdtempSync(path.join(tmpdir(), "bundles-"));
  });
  after(() => rmSync(dir, { recursive: true, force: true }));
  beforeEach(async () => {
    server = await startManagementServer("test");
  });
  afterEach(() => server.close());

  /** Writes the store's bundles of connect and sendmessage where no node_modules can be found. */
  function writeBundles(store: DeployedStore): { connect: string; send: string } {
    const file = (module: string) => {
      const target = path.join(dir, store, module, "index.js");
      rmSync(path.dirname(target), { recursive: true, force: true });
      mkdirSync(path.dirname(target), { recursive: true });
      writeFileSync(target, bundleHandler(module, store));
      return target;
    };
    return { connect: file("connect"), send: file("send-message") };
  }

  const conn = (): ConnectionContext => ({
    connectionId: newConnectionId(),
    connectedAt: Date.now(),
    stage: "test",
    apiId: "local",
    domainName: "localhost",
    sourceIp: "127.0.0.1",
    userAgent: "mocha",
  });

  async function broadcast(store: DeployedStore, env: Record<string, string>): Promise<void> {
    const files = writeBundles(store);
    const [a, b] = [conn(), conn()];
    const results = await runBundles(
      [
        [files.connect, connectEvent(a, { headers: { Host: "localhost" } })],
        [files.connect, connectEvent(b, { headers: { Host: "localhost" } })],
        [
          files.send,
          messageEvent(a, "sendmessage", JSON.stringify({ action: "sendmessage", data: `hello from ${store}` })),
        ],
      ],
      {
        AWS_REGION: "us-east-1",
        AWS_ACCESS_KEY_ID: "local",
        AWS_SECRET_ACCESS_KEY: "local",
        [ENV.CALLBACK_URL]: server.endpoint,
        ...env,
      },
    );
    expect(results.map((r) => r.statusCode)).to.deep.equal([200, 200, 200]);
    expect(server.postsTo(b.connectionId).join("")).to.include(`hello from ${store}`);
  }

  describe("dynamodb", () => {
    let db: TestDynamoDb;
    before(async () => {
      db = await startDynalite();
      await createConnectionsTable(localDynamoDbClient(db.endpoint), "bundle-test");
    });
    after(() => db.stop());

    it("connect and sendmessage, bundled for dynamodb, broadcast through dynalite", () =>
      broadcast("dynamodb", {
        [ENV.STORE]: "dynamodb",
        [ENV.TABLE_NAME]: "bundle-test",
        AWS_ENDPOINT_URL_DYNAMODB: db.endpoint,
      }));

    it("refuses another store's environment with a clear error", async () => {
      const files = writeBundles("dynamodb");
      const outcome = await runBundles([[files.connect, connectEvent(conn(), { headers: {} })]], {
        [ENV.STORE]: "memory",
      }).then(
        (results) => results,
        (e: Error) => e,
      );
      // The container is built before the handler runs, so the invocation fails (Lambda reports it as an error).
      expect(outcome).to.be.instanceOf(Error);
      expect((outcome as Error).message).to.match(/bundled for the dynamodb store, but STORE is memory/);
    });
  });

  describe("redis", () => {
    let redis: TestRedis;
    before(async () => {
      redis = await startRedis();
    });
    after(() => redis.stop());

    it("connect and sendmessage, bundled for redis, broadcast through redis-server", () =>
      broadcast("redis", {
        [ENV.STORE]: "redis",
        [ENV.REDIS_URL]: redis.url,
        [ENV.REDIS_KEY_PREFIX]: `bundle-${Date.now()}`,
      }));
  });
});
