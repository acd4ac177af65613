/**
 * What is generated from the config schema is committed as generated: `Pulumi.yaml`'s `config:` block and
 * docs/configuration.md. Run `npm run docs:config` after editing infra/config/schema.ts.
 */
import { readFileSync } from "node:fs";
import { join } from "node:path";
import { expect } from "chai";
import { load } from "js-yaml";
import { CONFIG_SCHEMA, PROJECT_NAME, renderConfigurationDoc, renderPulumiYaml } from "../infra/config";

const ROOT = join(__dirname, "..");
const read = (file: string) => readFileSync(join(ROOT, file), "utf8");

describe("config docs: generated from the schema", () => {
  it("Pulumi.yaml is exactly what the schema renders", () => {
    expect(read("Pulumi.yaml"), "run `npm run docs:config`").to.equal(renderPulumiYaml());
  });

  it("docs/configuration.md is exactly what the schema renders", () => {
    expect(read("docs/configuration.md"), "run `npm run docs:config`").to.equal(renderConfigurationDoc());
  });

  it("declares every schema key with its default, types on scalars only, and no key as a path", () => {
    const project = load(read("Pulumi.yaml")) as {
      name: string;
      runtime: { name: string; options: { typescript: boolean } };
      config: Record<string, { type?: string; default: unknown; description: string; items?: unknown }>;
    };
    expect(project.name).to.equal(PROJECT_NAME);
    expect(project.runtime.name).to.equal("nodejs");
    expect(project.runtime.options.typescript).to.equal(true);
    expect(Object.keys(project.config)).to.deep.equal(Object.keys(CONFIG_SCHEMA));
    for (const [key, entry] of Object.entries(project.config)) {
      const spec = CONFIG_SCHEMA[key as keyof typeof CONFIG_SCHEMA];
      // The CLI reads a dotted declared key as a path into an object key.
      expect(key, key).not.to.match(/[.[\]:]/);
      expect(entry.description, key).to.be.a("string").and.not.be.empty;
      if (spec.type === "object") {
        expect(entry, key).not.to.have.property("type");
        expect(entry.default, key).to.deep.equal({});
      } else {
        expect(entry.type, key).to.equal(spec.type);
        expect(entry.default, key).to.deep.equal(spec.default);
      }
    }
  });

  it("lists every setting in the configuration reference", () => {
    const doc = read("docs/configuration.md");
    for (const [key, spec] of Object.entries(CONFIG_SCHEMA)) {
      expect(doc).to.include(`| \`${key}\` |`);
      if (spec.type === "object") {
        for (const field of Object.keys(spec.fields)) expect(doc).to.include(`| \`${key}.${field}\` |`);
      }
    }
  });
});
