/**
 * Lambda code, bundled by esbuild while the Pulumi program runs: no separate build step to forget, and the
 * archive hash changes exactly when the bundled code does.
 *
 * Bundles are per function AND per store. The store is known at `pulumi up` time, so a store's bundle gets
 * `app/store-from-env.<store>.ts` in place of `app/store-from-env.ts` (which loads every store, for the local gateway
 * and tests), and a DynamoDB bundle gets `runtime/secrets.dynamodb.ts` in place of the Secrets Manager
 * reader: a DynamoDB function carries no ioredis and no Secrets Manager client, a Redis function no DynamoDB
 * client. Smaller bundles load faster, and cold start is paid on every new container.
 */
import { isBuiltin } from "node:module";
import * as path from "node:path";
import { MessageChannel, Worker, receiveMessageOnPort, type MessagePort } from "node:worker_threads";
import * as esbuild from "esbuild";
import type * as aws from "@pulumi/aws";
import * as pulumi from "@pulumi/pulumi";
import type { DeployedStore } from "./config";

/**
 * The one place the Lambda runtime is pinned. Node 24 is Lambda's current LTS runtime (GA since November 2025;
 * nodejs22.x is deprecated in 2027). `satisfies` makes tsc check the value against @pulumi/aws's `lambda.Runtime`
 * enum (package @pulumi/aws, file types/enums/lambda/index.d.ts, which lists `NodeJS24dX: "nodejs24.x"`), so a
 * runtime the provider does not know fails the type check rather than the deploy.
 */
export const LAMBDA_RUNTIME = "nodejs24.x" satisfies aws.lambda.Runtime;

/** esbuild's target for a `nodejsNN.x` runtime: `nodeNN`. */
type NodeTarget<R extends string> = R extends `nodejs${infer Major}.x` ? `node${Major}` : never;

/** The bundle targets the runtime's Node major, derived here so the two cannot drift apart. */
export const BUNDLE_TARGET: NodeTarget<typeof LAMBDA_RUNTIME> = nodeTarget(LAMBDA_RUNTIME);

function nodeTarget<R extends string>(runtime: R): NodeTarget<R> {
  const major = /^nodejs(\d+)\.x$/.exec(runtime)?.[1];
  if (major === undefined) throw new Error(`LAMBDA_RUNTIME ${runtime} is not a nodejsNN.x runtime`);
  return `node${major}` as NodeTarget<R>;
}

/** The file name inside the archive; the function handler is `index.handler`. */
export const BUNDLE_FILE = "index.js";
export const LAMBDA_HANDLER = "index.handler";

const ROOT = path.resolve(__dirname, "..");
const HANDLERS_DIR = path.join(ROOT, "handlers");

/**
 * Per store: module (project-relative, no extension) => the file bundled in its place. Every import that resolves
 * to the module, from anywhere in the bundle, gets the replacement.
 */
export const STORE_SUBSTITUTES: Readonly<Record<DeployedStore, Readonly<Record<string, string>>>> = {
  dynamodb: {
    "app/store-from-env": "app/store-from-env.dynamodb.ts",
    "runtime/secrets": "runtime/secrets.dynamodb.ts",
  },
  redis: {
    "app/store-from-env": "app/store-from-env.redis.ts",
  },
};

/**
 * Packages a store's bundle must not contain. Checked on every build, so an import that drags one back in (a
 * handler importing a store directly, say) fails the deploy instead of silently growing the cold start.
 */
export const STORE_EXCLUDED_PACKAGES: Readonly<Record<DeployedStore, readonly string[]>> = {
  dynamodb: ["ioredis", "@aws-sdk/client-secrets-manager"],
  redis: ["@aws-sdk/client-dynamodb"],
};

/**
 * How the AWS SDK gets to the function. `bundled` (what infra deploys): inside the bundle, not taken from the
 * runtime, whose copy changes under us when AWS updates it and goes away with a retired runtime; `npm run size`
 * has the figures. `external`: left to the runtime's copy, for `npm run size` to compare against.
 */
export type SdkMode = "bundled" | "external";

export interface BundleOptions {
  /**
   * The stack's store: the bundle carries that store only. Absent: every store (`app/store-from-env.ts` as is),
   * for functions that touch no store.
   */
  readonly store?: DeployedStore;
  /** Default `bundled`. */
  readonly sdk?: SdkMode;
}

export interface Bundle {
  /** The minified CommonJS code; exports `handler`. */
  readonly code: string;
  /** esbuild's metafile: `inputs` lists every file bundled (project-relative paths). */
  readonly metafile: esbuild.Metafile;
}

const cache = new Map<string, Bundle>();

/**
 * The bundle of `handlers/<module>.ts` for a store. Cached per (module, store, sdk), so every stack built in one
 * process (tests) bundles each variant once.
 */
export function handlerBundle(module: string, options: BundleOptions = {}): Bundle {
  const key = `${module}\0${options.store ?? "*"}\0${options.sdk ?? "bundled"}`;
  const cached = cache.get(key);
  if (cached !== undefined) return cached;
  const bundle = buildBundle(path.join(HANDLERS_DIR, `${module}.ts`), options);
  cache.set(key, bundle);
  return bundle;
}

/**
 * Bundles `handlers/<module>.ts` into one CommonJS file for a store's functions (every store when absent). The
 * AWS SDK is bundled too.
 */
export function bundleHandler(module: string, store?: DeployedStore): string {
  return handlerBundle(module, { store }).code;
}

/** The deployable archive for a handler module on a stack whose store is `store`. */
export function handlerArchive(module: string, store?: DeployedStore): pulumi.asset.AssetArchive {
  return new pulumi.asset.AssetArchive({ [BUNDLE_FILE]: new pulumi.asset.StringAsset(bundleHandler(module, store)) });
}

/** The npm packages a bundle contains (from its metafile inputs), `@scope/name` or `name`, sorted. */
export function bundledPackages(metafile: esbuild.Metafile): string[] {
  const names = new Set<string>();
  for (const input of Object.keys(metafile.inputs)) {
    const match = /(?:^|\/)node_modules\/((?:@[^/]+\/)?[^/]+)\//.exec(input.split(path.sep).join("/"));
    if (match) names.add(match[1]!);
  }
  return [...names].sort();
}

/**
 * Bundles any entry file the way infra bundles handlers (uncached): `npm run size` bundles its baseline with it.
 * Throws when the bundle would need a package it does not contain, or contains one its store excludes.
 */
export function buildBundle(entry: string, options: BundleOptions = {}): Bundle {
  const label = path.relative(ROOT, entry);
  const sdk = options.sdk ?? "bundled";
  const buildOptions: esbuild.BuildOptions = {
    entryPoints: [entry],
    absWorkingDir: ROOT,
    bundle: true,
    platform: "node",
    target: BUNDLE_TARGET,
    format: "cjs",
    minify: true,
    write: false,
    legalComments: "none",
    // esbuild's node platform already leaves the built-ins alone.
    external: sdk === "external" ? ["@aws-sdk/*"] : [],
    metafile: true,
    logLevel: "silent",
  };
  const substitutes = options.store ? STORE_SUBSTITUTES[options.store] : {};
  const bundle =
    Object.keys(substitutes).length === 0 ? buildDirect(buildOptions) : buildInWorker(buildOptions, substitutes);
  if (bundle.code.length === 0) throw new Error(`esbuild produced no code for ${label}`);

  // A package left out of the bundle would only fail on the first invocation in AWS; fail the deploy instead.
  const missing = Object.values(bundle.metafile.outputs)
    .flatMap((output) => output.imports)
    .filter((i) => i.external && !isBuiltin(i.path) && !(sdk === "external" && i.path.startsWith("@aws-sdk/")))
    .map((i) => i.path);
  if (missing.length > 0) {
    throw new Error(`${label} bundle imports packages it does not contain: ${[...new Set(missing)].join(", ")}`);
  }
  if (options.store) {
    const excluded = STORE_EXCLUDED_PACKAGES[options.store];
    const found = bundledPackages(bundle.metafile).filter((name) => excluded.includes(name));
    if (found.length > 0) {
      throw new Error(
        `${label} bundle for the ${options.store} store contains ${found.join(", ")}, which that store never uses`,
      );
    }
  }
  return bundle;
}

function buildDirect(options: esbuild.BuildOptions): Bundle {
  const result = esbuild.buildSync(options);
  return { code: result.outputFiles?.[0]?.text ?? "", metafile: result.metafile! };
}

/**
 * esbuild runs plugins only in its async API, and the Pulumi program (and the tests) need the bundle
 * synchronously. So substituted builds run in one worker thread (started at the first, kept for the process,
 * never keeping it alive) with a resolve plugin that swaps the modules, and this thread blocks on an Atomics wait
 * until the worker posts the result.
 */
interface BuildWorker {
  readonly worker: Worker;
  readonly port: MessagePort;
  readonly signal: Int32Array;
}

let buildWorker: BuildWorker | undefined;

function startBuildWorker(): BuildWorker {
  const signal = new Int32Array(new SharedArrayBuffer(4));
  const { port1, port2 } = new MessageChannel();
  const worker = new Worker(WORKER_SOURCE, {
    eval: true,
    workerData: { esbuildPath: require.resolve("esbuild"), signal, port: port2 },
    transferList: [port2],
  });
  worker.unref();
  port1.unref();
  // A dead worker is replaced at the next build; its last error is reported by the wait below.
  worker.once("exit", () => {
    if (buildWorker?.worker === worker) buildWorker = undefined;
  });
  return { worker, port: port1, signal };
}

function buildInWorker(options: esbuild.BuildOptions, substitutes: Readonly<Record<string, string>>): Bundle {
  const absolute = Object.fromEntries(
    Object.entries(substitutes).map(([module, replacement]) => [path.join(ROOT, module), path.join(ROOT, replacement)]),
  );
  const current = (buildWorker ??= startBuildWorker());
  Atomics.store(current.signal, 0, 0);
  current.port.postMessage({ options, substitutes: absolute });
  if (Atomics.wait(current.signal, 0, 0, WORKER_TIMEOUT_MS) === "timed-out") {
    buildWorker = undefined;
    void current.worker.terminate();
    throw new Error(`esbuild did not finish within ${WORKER_TIMEOUT_MS} ms`);
  }
  const reply = receiveMessageOnPort(current.port)?.message as WorkerReply | undefined;
  if (!reply) throw new Error("the esbuild worker answered without a result");
  if (!reply.ok) throw new Error(reply.message);
  return { code: reply.code, metafile: reply.metafile };
}

const WORKER_TIMEOUT_MS = 120_000;

type WorkerReply =
  | { readonly ok: true; readonly code: string; readonly metafile: esbuild.Metafile }
  | { readonly ok: false; readonly message: string };

/** Plain CommonJS: the worker runs without tsx or ts-node, whichever loaded this file. */
const WORKER_SOURCE = `
const { workerData } = require("node:worker_threads");
const path = require("node:path");
const { esbuildPath, signal, port } = workerData;
const reply = (message) => {
  port.postMessage(message);
  Atomics.store(signal, 0, 1);
  Atomics.notify(signal, 0);
};
const failure = (error) => ({ ok: false, message: String((error && error.message) || error) });
let esbuild;
port.on("message", ({ options, substitutes }) => {
  try {
    esbuild ??= require(esbuildPath);
  } catch (error) {
    return reply(failure(error));
  }
  const plugin = {
    name: "store-substitutes",
    setup(build) {
      build.onResolve({ filter: /^\\.\\.?\\// }, (args) => {
        const target = path.resolve(args.resolveDir, args.path).replace(/\\.[cm]?[jt]s$/, "");
        const replacement = substitutes[target];
        return replacement === undefined ? undefined : { path: replacement };
      });
    },
  };
  esbuild.build({ ...options, plugins: [plugin] }).then(
    (result) => reply({ ok: true, code: result.outputFiles[0] ? result.outputFiles[0].text : "", metafile: result.metafile }),
    (error) => reply(failure(error)),
  );
});
`;
