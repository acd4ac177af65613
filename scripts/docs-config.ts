/** Writes what is generated from the config schema: `Pulumi.yaml` and docs/configuration.md. */
import { writeFileSync } from "node:fs";
import { join } from "node:path";
import { renderConfigurationDoc, renderPulumiYaml } from "../infra/config";

const root = join(__dirname, "..");
writeFileSync(join(root, "Pulumi.yaml"), renderPulumiYaml());
writeFileSync(join(root, "docs", "configuration.md"), renderConfigurationDoc());
console.log("wrote Pulumi.yaml and docs/configuration.md");
