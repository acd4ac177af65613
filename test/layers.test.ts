/**
 * The import rule of docs/architecture.md: dependencies flow one way, from the top floor down,
 *
 *   contract ← stores ← runtime ← broadcast ← chat ← app ← handlers ← infra ← local ← bench, scripts, index.ts
 *   contract ← sdk (the client SDK: type-only imports of contract/, nothing of the server)
 *
 * A file may import its own folder or a lower floor, never a higher one; handlers never import each other (what
 * they share lives below them); and no files import each other in a circle. Every import counts, type-only ones
 * too: a type that a lower floor needs belongs on that floor.
 */

import { execFileSync } from "node:child_process";
import { readFileSync } from "node:fs";
import * as path from "node:path";
import { expect } from "chai";
import * as ts from "typescript";

const ROOT = path.join(__dirname, "..");

/**
 * The only contract files the SDK may import values from (everything else of contract/ type-only): each must import
 * nothing, so the SDK's bundle cannot pull in server code through them.
 */
const SDK_VALUE_IMPORTS: readonly string[] = ["contract/subprotocol.ts"];

/** Floors from the bottom; files in one entry are on the same floor. */
const FLOORS: readonly (readonly string[])[] = [
  ["contract"],
  // The client SDK sits just above the contract it speaks; its own rule below keeps the server out of it.
  ["sdk"],
  ["stores"],
  ["runtime"],
  ["broadcast"],
  ["chat"],
  ["app"],
  ["handlers"],
  ["infra"],
  ["local"],
  ["bench", "scripts", "index.ts"],
];

const floorOf = (file: string): number => {
  const top = file.split("/")[0]!;
  return FLOORS.findIndex((floor) => floor.includes(top));
};

const sources = execFileSync("git", ["ls-files", "-co", "--exclude-standard", "*.ts"], { cwd: ROOT, encoding: "utf8" })
  .split("\n")
  .filter((file) => file !== "" && !file.startsWith("test/") && !file.startsWith("node_modules/"))
  .filter((file) => {
    try {
      readFileSync(path.join(ROOT, file));
      return true;
    } catch {
      return false;
    }
  });

/** The project files a file imports (relative specifiers resolved to `.ts` files), with the names it takes. */
function importsOf(file: string): string[] {
  const { importedFiles } = ts.preProcessFile(readFileSync(path.join(ROOT, file), "utf8"), true, true);
  const found: string[] = [];
  for (const { fileName } of importedFiles) {
    if (!fileName.startsWith(".")) continue;
    const base = path.normalize(path.join(path.dirname(file), fileName));
    for (const candidate of [`${base}.ts`, base, path.join(base, "index.ts")]) {
      if (sources.includes(candidate)) {
        found.push(candidate);
        break;
      }
    }
  }
  return found;
}

const graph = new Map(sources.map((file) => [file, importsOf(file)]));

describe("layers: imports flow one way", () => {
  it("knows the floor of every source file", () => {
    const unplaced = sources.filter((file) => floorOf(file) === -1);
    expect(unplaced, "add the folder to FLOORS and to docs/architecture.md").to.deep.equal([]);
  });

  it("no import runs up a floor", () => {
    const upward: string[] = [];
    for (const [file, imports] of graph) {
      for (const target of imports) {
        if (floorOf(target) > floorOf(file)) upward.push(`${file} -> ${target}`);
      }
    }
    expect(upward).to.deep.equal([]);
  });

  it("no handler imports another handler", () => {
    const sideways: string[] = [];
    for (const [file, imports] of graph) {
      if (!file.startsWith("handlers/")) continue;
      for (const target of imports) if (target.startsWith("handlers/")) sideways.push(`${file} -> ${target}`);
    }
    expect(sideways).to.deep.equal([]);
  });

  it("the SDK takes only types from contract/ and imports nothing of the server", () => {
    const leaks: string[] = [];
    for (const [file, imports] of graph) {
      if (!file.startsWith("sdk/")) continue;
      const source = readFileSync(path.join(ROOT, file), "utf8");
      for (const target of imports) {
        if (target.startsWith("sdk/")) continue;
        const typeOnly = new RegExp(`import type [^;]*from "[./]*${target.replace(/\.ts$/, "")}"`).test(source);
        const allowedValue = SDK_VALUE_IMPORTS.includes(target);
        if (!target.startsWith("contract/") || !(typeOnly || allowedValue)) leaks.push(`${file} -> ${target}`);
      }
    }
    expect(leaks).to.deep.equal([]);
  });

  it("the contract files the SDK may import values from import nothing themselves", () => {
    for (const file of SDK_VALUE_IMPORTS) expect(graph.get(file), file).to.deep.equal([]);
  });

  it("nothing on the server imports the SDK (a benchmark may, to measure it)", () => {
    const users = [...graph].filter(
      ([file, imports]) =>
        !file.startsWith("sdk/") && !file.startsWith("bench/") && imports.some((t) => t.startsWith("sdk/")),
    );
    expect(users.map(([file]) => file)).to.deep.equal([]);
  });

  it("no files import each other in a circle", () => {
    // Tarjan's strongly connected components; any component of more than one file is a circle.
    let index = 0;
    const indices = new Map<string, number>();
    const low = new Map<string, number>();
    const stack: string[] = [];
    const onStack = new Set<string>();
    const circles: string[][] = [];
    const visit = (file: string): void => {
      indices.set(file, index);
      low.set(file, index);
      index += 1;
      stack.push(file);
      onStack.add(file);
      for (const target of graph.get(file) ?? []) {
        if (!indices.has(target)) {
          visit(target);
          low.set(file, Math.min(low.get(file)!, low.get(target)!));
        } else if (onStack.has(target)) {
          low.set(file, Math.min(low.get(file)!, indices.get(target)!));
        }
      }
      if (low.get(file) === indices.get(file)) {
        const component: string[] = [];
        let member: string;
        do {
          member = stack.pop()!;
          onStack.delete(member);
          component.push(member);
        } while (member !== file);
        if (component.length > 1) circles.push(component.sort());
      }
    };
    for (const file of graph.keys()) if (!indices.has(file)) visit(file);
    expect(circles).to.deep.equal([]);
  });

  it("reads imports for real (the rule would pass vacuously otherwise)", () => {
    expect(graph.get("handlers/connect.ts")).to.include("app/container.ts");
    expect(floorOf("contract/routes.ts")).to.be.lessThan(floorOf("handlers/connect.ts"));
  });
});
