/** Writes docs/runtime-env.md, rendered from the `ENV` object of contract/env-vars.ts. */
import { readFileSync, writeFileSync } from "node:fs";
import { join } from "node:path";
import { ENV_SOURCE, renderEnvDoc } from "./render-env-doc";

const root = join(__dirname, "..");
writeFileSync(join(root, "docs", "runtime-env.md"), renderEnvDoc(readFileSync(join(root, ENV_SOURCE), "utf8")));
console.log("wrote docs/runtime-env.md");
