/**
 * The SDK as one ES module, bundled by esbuild from `sdk/index.ts`: what `npm run build:sdk` writes to `sdk/dist/`
 * and what the local gateway serves at `/sdk.js` for the web client (so the page needs no build step). The bundle
 * is built for the `neutral` platform with nothing external, so an SDK source that imported a Node built-in or a
 * package would fail here: the SDK has no runtime dependencies by construction.
 */
import { readdirSync, statSync } from "node:fs";
import { join } from "node:path";
import * as esbuild from "esbuild";

export const SDK_DIR = join(__dirname, "..", "sdk");
export const SDK_ENTRY = join(SDK_DIR, "index.ts");

export interface SdkBundle {
  readonly code: string;
  /** Every source file in the bundle, relative to the repository. */
  readonly inputs: readonly string[];
}

export async function bundleSdk(options: { readonly minify?: boolean } = {}): Promise<SdkBundle> {
  const result = await esbuild.build({
    entryPoints: [SDK_ENTRY],
    bundle: true,
    format: "esm",
    platform: "neutral",
    target: "es2022",
    write: false,
    metafile: true,
    minify: options.minify ?? false,
    legalComments: "none",
    logLevel: "silent",
  });
  return { code: result.outputFiles[0]!.text, inputs: Object.keys(result.metafile.inputs) };
}

let cached: { stamp: number; bundle: Promise<SdkBundle> } | undefined;

/** The bundle for serving, rebuilt when a source file under `sdk/` changed since the last build. */
export function servedSdk(): Promise<SdkBundle> {
  const stamp = newestChange(SDK_DIR);
  if (!cached || cached.stamp !== stamp) cached = { stamp, bundle: bundleSdk() };
  return cached.bundle;
}

function newestChange(dir: string): number {
  let newest = 0;
  for (const entry of readdirSync(dir, { withFileTypes: true })) {
    if (entry.name === "dist" || entry.name === "node_modules") continue;
    const path = join(dir, entry.name);
    newest = Math.max(newest, entry.isDirectory() ? newestChange(path) : statSync(path).mtimeMs);
  }
  return newest;
}
