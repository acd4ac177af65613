/**
 * Lambda code, bundled by esbuild while the Pulumi program runs: no separate build step to forget, and the
 * archive hash changes exactly when the bundled code does.
 *
 * Bundles are per function AND per store. Handlers name no store: the container builds whichever store's factory
 * was registered (app/store-registry.ts), and a factory registers itself when its module is imported. The store is
 * known at `pulumi up` time, so a store's bundle is built from a small generated entry that imports exactly that
 * store's factory (app/stores/<store>.ts, {@link STORE_FACTORIES}) and re-exports the handler: a DynamoDB
 * function carries no ioredis and no Secrets Manager client (only the Redis factory reads a secret), a Redis
 * function no DynamoDB client. Smaller bundles load faster, and cold start is paid on every new container. Every
 * import is an ordinary one, visible to esbuild, tsc and the layers test alike; {@link STORE_EXCLUDED_PACKAGES}
 * is checked against esbuild's metafile on every build.
 */
import { isBuiltin } from "node:module";
import * as path from "node:path";
import type * as aws from "@pulumi/aws";
import * as pulumi from "@pulumi/pulumi";
import * as esbuild from "esbuild";
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

/** Per store: the module (project-relative) that registers that store's factory, the one a store's bundle imports. */
export const STORE_FACTORIES: Readonly<Record<DeployedStore, string>> = {
  dynamodb: "app/stores/dynamodb.ts",
  redis: "app/stores/redis.ts",
};

/** What a bundle built without a store imports instead: every store's factory (the local gateway's set). */
const EVERY_STORE = "app/store-from-env.ts";
/** A bundle whose code reaches this module builds a store, so it needs a factory registered. */
const STORE_REGISTRY = "app/store-registry.ts";

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
   * The stack's store: the bundle carries that store only. Absent: every store (`app/store-from-env.ts`). Either
   * way only for code that builds a store; a function that touches none (the authorizer) bundles the same for all.
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
  const bundle = needsStore(entry, buildOptions)
    ? build({ ...buildOptions, stdin: storeEntry(entry, options.store) })
    : build({ ...buildOptions, entryPoints: [entry] });
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

function build(options: esbuild.BuildOptions): Bundle {
  const result = esbuild.buildSync(options);
  return { code: result.outputFiles?.[0]?.text ?? "", metafile: result.metafile! };
}

/** Per entry and build options: whether its code reaches the store registry (one bare build finds out). */
const storeUse = new Map<string, boolean>();

function needsStore(entry: string, options: esbuild.BuildOptions): boolean {
  const key = `${entry}\0${JSON.stringify(options.external)}`;
  let uses = storeUse.get(key);
  if (uses === undefined) {
    uses = STORE_REGISTRY in build({ ...options, entryPoints: [entry] }).metafile.inputs;
    storeUse.set(key, uses);
  }
  return uses;
}

/** The generated entry of a store's bundle: that store's factory registered, the handler exported. */
function storeEntry(entry: string, store: DeployedStore | undefined): esbuild.StdinOptions {
  const factory = path.join(ROOT, store ? STORE_FACTORIES[store] : EVERY_STORE);
  return {
    contents: `import ${JSON.stringify(factory)};\nexport { handler } from ${JSON.stringify(entry)};\n`,
    resolveDir: ROOT,
    sourcefile: `${path.relative(ROOT, entry)}+${store ?? "every-store"}`,
    loader: "ts",
  };
}
