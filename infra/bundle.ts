/**
 * Lambda code, bundled by esbuild while the Pulumi program runs: no separate build step to forget, and the
 * archive hash changes exactly when the bundled code does.
 */
import { isBuiltin } from "node:module";
import * as path from "node:path";
import * as esbuild from "esbuild";
import * as pulumi from "@pulumi/pulumi";

/** The one place the Lambda runtime is pinned; the bundle targets the same Node major. */
export const LAMBDA_RUNTIME = "nodejs22.x";
const BUNDLE_TARGET = "node22";

/** The file name inside the archive; the function handler is `index.handler`. */
export const BUNDLE_FILE = "index.js";
export const LAMBDA_HANDLER = "index.handler";

const FUNCTIONS_DIR = path.resolve(__dirname, "..", "functions");

const cache = new Map<string, string>();

/**
 * Bundles `functions/<module>.ts` into one CommonJS file. The AWS SDK is bundled too, not taken from the
 * runtime: the runtime's copy changes under us when AWS updates it, and a retired runtime takes it away.
 * Cached per module, so every stack built in one process (tests) bundles each handler once.
 */
export function bundleHandler(module: string): string {
  const cached = cache.get(module);
  if (cached !== undefined) return cached;
  const result = esbuild.buildSync({
    entryPoints: [path.join(FUNCTIONS_DIR, `${module}.ts`)],
    bundle: true,
    platform: "node",
    target: BUNDLE_TARGET,
    format: "cjs",
    minify: true,
    write: false,
    legalComments: "none",
    // Nothing is external: esbuild's node platform already leaves the built-ins alone.
    external: [],
    metafile: true,
    logLevel: "silent",
  });
  const code = result.outputFiles[0]?.text ?? "";
  if (code.length === 0) throw new Error(`esbuild produced no code for functions/${module}.ts`);
  // A package left out of the bundle would only fail on the first invocation in AWS; fail the deploy instead.
  const missing = Object.values(result.metafile.outputs)
    .flatMap((output) => output.imports)
    .filter((i) => i.external && !isBuiltin(i.path))
    .map((i) => i.path);
  if (missing.length > 0) {
    const names = [...new Set(missing)].join(", ");
    throw new Error(`functions/${module}.ts bundle imports packages it does not contain: ${names}`);
  }
  cache.set(module, code);
  return code;
}

/** The deployable archive for a handler module. */
export function handlerArchive(module: string): pulumi.asset.AssetArchive {
  return new pulumi.asset.AssetArchive({ [BUNDLE_FILE]: new pulumi.asset.StringAsset(bundleHandler(module)) });
}
