/**
 * `npm run build:sdk`: writes the SDK as one ES module, `sdk/dist/index.js`, with its type declarations beside it,
 * for `import { ChatClient } from "websocket-chat/sdk"` in an application's own build.
 */
import { execFileSync } from "node:child_process";
import { mkdirSync, writeFileSync } from "node:fs";
import { join } from "node:path";
import { bundleSdk, SDK_DIR } from "../local/sdk-bundle";

async function main(): Promise<void> {
  const out = join(SDK_DIR, "dist");
  mkdirSync(out, { recursive: true });
  const bundle = await bundleSdk();
  writeFileSync(join(out, "index.js"), bundle.code);
  execFileSync(
    process.execPath,
    [
      require.resolve("typescript/bin/tsc"),
      "--declaration",
      "--emitDeclarationOnly",
      "--skipLibCheck",
      "--target",
      "ES2022",
      "--lib",
      "ES2022,DOM",
      "--outDir",
      out,
      join(SDK_DIR, "index.ts"),
    ],
    { stdio: "inherit" },
  );
  console.log(`sdk/dist/index.js: ${Buffer.byteLength(bundle.code)} bytes from ${bundle.inputs.length} files`);
}

void main();
