/**
 * docs/runtime-env.md is committed as generated from the `ENV` object of contract/env-vars.ts: run
 * `npm run docs:env` after editing a variable or its doc comment.
 */
import { readFileSync } from "node:fs";
import { join } from "node:path";
import { expect } from "chai";
import { ENV } from "../contract/env-vars";
import { ENV_SOURCE, readEnvVars, renderEnvDoc } from "../scripts/render-env-doc";

const ROOT = join(__dirname, "..");
const read = (file: string) => readFileSync(join(ROOT, file), "utf8");

describe("runtime env docs: generated from contract/env-vars.ts", () => {
  it("docs/runtime-env.md is exactly what the source renders", () => {
    expect(read("docs/runtime-env.md"), "run `npm run docs:env`").to.equal(renderEnvDoc(read(ENV_SOURCE)));
  });

  it("reads every variable of ENV, in order, each with its doc comment", () => {
    const vars = readEnvVars(read(ENV_SOURCE));
    expect(vars.map((v) => v.name)).to.deep.equal(Object.values(ENV));
    for (const { name, doc } of vars) expect(doc, name).to.be.a("string").and.not.be.empty;
    const doc = read("docs/runtime-env.md");
    for (const name of Object.values(ENV)) expect(doc).to.include(`| \`${name}\` |`);
  });

  it("renders multi-line comments on one line, links as code and pipes escaped", () => {
    const source = [
      "export const ENV = {",
      "  /**",
      "   * `a` | `b`, see",
      "   * {@link ENV.OTHER} and {@link LIMIT}.",
      "   */",
      '  ONE: "ONE",',
      '  /** Two. */ OTHER: "OTHER",',
      "} as const;",
    ].join("\n");
    expect(readEnvVars(source)).to.deep.equal([
      { name: "ONE", doc: "`a` | `b`, see `OTHER` and `LIMIT`." },
      { name: "OTHER", doc: "Two." },
    ]);
    expect(renderEnvDoc(source)).to.include("| `ONE` | `a` \\| `b`, see `OTHER` and `LIMIT`. |");
  });

  it("refuses a variable without a doc comment, or an ENV that is missing", () => {
    expect(() => readEnvVars('export const ENV = {\n  /** Doc. */\n  A: "A",\n  B: "B",\n} as const;')).to.throw(
      /ENV\.B has no doc comment/,
    );
    expect(() => readEnvVars("export const OTHER = {};")).to.throw(/no `export const ENV/);
    expect(() => readEnvVars("export const ENV = {\n  /** Doc. */\n  A: name,\n} as const;")).to.throw(/KEY: "NAME"/);
  });
});
