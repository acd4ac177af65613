/**
 * `pulumi up` must work from a production install (`npm ci --omit=dev`): everything the Pulumi runtime needs to
 * load this TypeScript program, everything the program requires at runtime, and every package esbuild bundles into
 * a function while the program runs has to be a `dependency`. A devDependency is simply not there.
 *
 * How Pulumi loads a TypeScript program (package @pulumi/pulumi: cmd/run/run.js and tsutils.js): with
 * `runtime.options.typescript: true` (Pulumi.yaml) the language host runs the project's own
 * `@pulumi/pulumi/cmd/run`, which `require`s "typescript" and "ts-node" (tsutils.js `typeScriptRequireStrings`)
 * and registers ts-node with that TypeScript as its compiler before requiring `index.ts`. Both are optional peer
 * dependencies of @pulumi/pulumi, never installed for you; when one cannot be required Pulumi silently falls back
 * to the copy it vendors (vendor/typescript@3.8.3, vendor/ts-node@7.0.1). The vendored ts-node is a
 * self-contained bundle, so ts-node need not be installed; the vendored TypeScript 3.8 cannot parse this program,
 * so `typescript` must be a dependency.
 */
import { existsSync, readdirSync, readFileSync, statSync } from "node:fs";
import { isBuiltin } from "node:module";
import * as path from "node:path";
import { expect } from "chai";
import * as ts from "typescript";
import { AUTHORIZER, FANOUT_WORKER, ROUTES } from "../contract/routes";
import { STORE_FACTORIES } from "../infra/bundle";

const ROOT = path.resolve(__dirname, "..");

interface PackageJson {
  readonly dependencies?: Record<string, string>;
  readonly devDependencies?: Record<string, string>;
}
interface LockEntry {
  readonly version?: string;
  readonly dev?: boolean;
  readonly optional?: boolean;
  readonly devOptional?: boolean;
}

const pkg = JSON.parse(readFileSync(path.join(ROOT, "package.json"), "utf8")) as PackageJson;
const lock = JSON.parse(readFileSync(path.join(ROOT, "package-lock.json"), "utf8")) as {
  readonly packages: Record<string, LockEntry>;
};
const dependencies = pkg.dependencies ?? {};

const PULUMI_DIR = path.dirname(require.resolve("@pulumi/pulumi/package.json"));
const PULUMI_TSUTILS = path.join(PULUMI_DIR, "tsutils.js");
const VENDORED_TYPESCRIPT = path.join(PULUMI_DIR, "vendor", "typescript@3.8.3", "typescript.js");
const VENDORED_TS_NODE = path.join(PULUMI_DIR, "vendor", "ts-node@7.0.1", "index.js");

/**
 * What the Pulumi runtime itself needs from the project's node_modules to load a TypeScript program: the runtime
 * (the language host runs the project's `@pulumi/pulumi/cmd/run`) and the TypeScript compiler ts-node uses. Not
 * ts-node: its vendored fallback carries its own dependencies (checked below).
 */
const PULUMI_LOADER_PACKAGES = ["@pulumi/pulumi", "typescript"] as const;

/** `@scope/name` or `name` of a bare specifier. */
function packageName(specifier: string): string {
  const parts = specifier.split("/");
  return specifier.startsWith("@") ? parts.slice(0, 2).join("/") : parts[0]!;
}

/** Every `require("…")` / `require.resolve("…")` with a literal argument in compiled JavaScript. */
function requiredSpecifiers(js: string, fileName: string): string[] {
  const found: string[] = [];
  const visit = (node: ts.Node): void => {
    if (ts.isCallExpression(node) && node.arguments.length >= 1 && ts.isStringLiteral(node.arguments[0]!)) {
      const callee = node.expression.getText();
      if (callee === "require" || callee === "require.resolve") found.push(node.arguments[0].text);
    }
    ts.forEachChild(node, visit);
  };
  visit(ts.createSourceFile(fileName, js, ts.ScriptTarget.Latest, true, ts.ScriptKind.JS));
  return found;
}

function resolveProjectFile(from: string, specifier: string): string {
  const base = path.resolve(path.dirname(from), specifier);
  for (const candidate of [base, `${base}.ts`, path.join(base, "index.ts"), `${base}.js`, `${base}.json`]) {
    if (existsSync(candidate) && statSync(candidate).isFile()) return candidate;
  }
  throw new Error(`${path.relative(ROOT, from)} imports ${specifier}, which resolves to no project file`);
}

/**
 * The packages the given project files need at runtime, following relative imports through project files. Each
 * file is compiled to CommonJS as ts-node compiles it for Pulumi, and the `require` calls of the output are read:
 * TypeScript drops `import type`, `{ type X }` and imports used only as types, so what is left is exactly what
 * runs. Maps package name => the project files that require it.
 */
function runtimePackages(entries: readonly string[]): Map<string, string[]> {
  const packages = new Map<string, string[]>();
  const seen = new Set<string>();
  const queue = [...entries];
  while (queue.length > 0) {
    const file = queue.shift()!;
    if (seen.has(file)) continue;
    seen.add(file);
    if (!file.endsWith(".ts")) continue;
    const js = ts.transpileModule(readFileSync(file, "utf8"), {
      fileName: file,
      compilerOptions: { module: ts.ModuleKind.CommonJS, target: ts.ScriptTarget.ES2022, esModuleInterop: true },
    }).outputText;
    for (const specifier of requiredSpecifiers(js, file)) {
      if (specifier.startsWith(".")) queue.push(resolveProjectFile(file, specifier));
      else if (!isBuiltin(specifier)) {
        const name = packageName(specifier);
        packages.set(name, [...(packages.get(name) ?? []), path.relative(ROOT, file)]);
      }
    }
  }
  return packages;
}

function tsFilesUnder(dir: string): string[] {
  return readdirSync(dir, { withFileTypes: true, recursive: true })
    .filter((entry) => entry.isFile() && entry.name.endsWith(".ts"))
    .map((entry) => path.join(entry.parentPath, entry.name))
    .sort();
}

/** Packages (with who needs them) missing from `dependencies`, e.g. present only as devDependencies. */
function notInDependencies(needed: ReadonlyMap<string, readonly string[]>): string[] {
  return [...needed]
    .filter(([name]) => !(name in dependencies))
    .map(([name, by]) => `${name} (needed by ${[...new Set(by)].join(", ")}${devNote(name)})`);
}

const devNote = (name: string) => (name in (pkg.devDependencies ?? {}) ? "; only a devDependency" : "");

let programScan: Map<string, string[]> | undefined;
let bundleScan: Map<string, string[]> | undefined;

/** What index.ts and infra/ (and the project files they import) require when Pulumi runs the program. */
function programPackages(): Map<string, string[]> {
  programScan ??= runtimePackages([path.join(ROOT, "index.ts"), ...tsFilesUnder(path.join(ROOT, "infra"))]);
  return programScan;
}

/**
 * What esbuild resolves from node_modules while the program runs (infra/bundle.ts): the imports of every deployed
 * function and of each store's factory module.
 */
function bundledPackages(): Map<string, string[]> {
  const modules = [...ROUTES.map((r) => r.module), FANOUT_WORKER.module, AUTHORIZER.module];
  bundleScan ??= runtimePackages([
    ...modules.map((module) => path.join(ROOT, "handlers", `${module}.ts`)),
    ...Object.values(STORE_FACTORIES).map((file) => path.join(ROOT, file)),
  ]);
  return bundleScan;
}

describe("deploy install: `pulumi up` from `npm ci --omit=dev`", function () {
  this.timeout(60_000);

  it("Pulumi still loads TypeScript the way this test assumes (project typescript and ts-node, vendored fallback)", () => {
    const tsutils = readFileSync(PULUMI_TSUTILS, "utf8");
    expect(tsutils).to.include('require("typescript")').and.include('"typescript@3.8.3"');
    expect(tsutils).to.include('"ts-node"').and.include('"ts-node@7.0.1"');
    expect(existsSync(VENDORED_TYPESCRIPT), VENDORED_TYPESCRIPT).to.equal(true);
    expect(existsSync(VENDORED_TS_NODE), VENDORED_TS_NODE).to.equal(true);
  });

  it("the vendored ts-node needs nothing from node_modules, so ts-node need not be a dependency", () => {
    const requires = requiredSpecifiers(readFileSync(VENDORED_TS_NODE, "utf8"), VENDORED_TS_NODE);
    expect(requires).to.not.be.empty;
    expect(requires.filter((id) => !isBuiltin(id))).to.deep.equal([]);
  });

  it("the vendored TypeScript fallback cannot parse this program, so typescript must be a dependency", () => {
    // Loaded under its own path: a separate, older compiler, not the project's typescript.
    const vendored = require(VENDORED_TYPESCRIPT) as typeof ts;
    expect(vendored.version).to.equal("3.8.3");
    // What ts-node would hand it first: index.ts and the project files it loads.
    const files = [path.join(ROOT, "index.ts"), ...tsFilesUnder(path.join(ROOT, "infra"))];
    const syntaxErrors = (file: string) =>
      vendored.transpileModule(readFileSync(file, "utf8"), { fileName: file, reportDiagnostics: true }).diagnostics ??
      [];
    const failing = files.find((file) => syntaxErrors(file).length > 0);
    expect(failing, "a program file TypeScript 3.8 cannot parse").to.be.a("string");
  });

  it("every package the Pulumi TypeScript loader requires is a dependency", () => {
    const needed = new Map(PULUMI_LOADER_PACKAGES.map((name) => [name, ["the Pulumi TypeScript loader"]]));
    expect(notInDependencies(needed)).to.deep.equal([]);
  });

  it("every package index.ts and infra/ require at runtime is a dependency", () => {
    const needed = programPackages();
    // The scan works: the program's own runtime packages are found.
    expect([...needed.keys()]).to.include.members(["@pulumi/pulumi", "@pulumi/aws", "esbuild"]);
    expect(notInDependencies(needed)).to.deep.equal([]);
  });

  it("every package esbuild bundles from handlers/ while the program runs is a dependency", () => {
    const needed = bundledPackages();
    expect([...needed.keys()]).to.include.members(["jose", "ioredis", "@aws-sdk/client-dynamodb"]);
    expect(notInDependencies(needed)).to.deep.equal([]);
  });

  it("package-lock.json installs each of them under --omit=dev (none marked dev, optional or devOptional)", () => {
    const needed = new Set<string>([
      ...PULUMI_LOADER_PACKAGES,
      ...programPackages().keys(),
      ...bundledPackages().keys(),
    ]);
    const omitted = [...needed].filter((name) => {
      const entry = lock.packages[`node_modules/${name}`];
      return entry === undefined || entry.dev === true || entry.optional === true || entry.devOptional === true;
    });
    expect(omitted, "run `npm install` after moving a package to dependencies").to.deep.equal([]);
  });

  it("lists no package both as a dependency and a devDependency", () => {
    expect(Object.keys(pkg.devDependencies ?? {}).filter((name) => name in dependencies)).to.deep.equal([]);
  });

  it("every type package tsconfig.json names is installed under --omit=dev (ts-node type-checks at pulumi up)", () => {
    // Pulumi's ts-node runs with type checking on and reports a `types` entry it cannot find (TS2688), so a
    // dev-only entry such as mocha would stop every production deploy before the program runs.
    const tsconfig = JSON.parse(readFileSync(path.join(ROOT, "tsconfig.json"), "utf8")) as {
      compilerOptions: { types?: string[] };
    };
    const missing = (tsconfig.compilerOptions.types ?? []).filter((name) => {
      const entry = lock.packages[`node_modules/@types/${name}`];
      return entry === undefined || entry.dev === true || entry.devOptional === true;
    });
    expect(missing, "declare dev-only globals in a test file instead").to.deep.equal([]);
  });
});
