/**
 * Runs the Pulumi program under mocks on the config the Pulumi CLI would hand it: settings become a stack file
 * (as `pulumi config set [--path]` would write it), the model of the CLI in ./pulumi-cli.ts merges it with the
 * real `Pulumi.yaml`, and exactly the map that comes out is what the program reads. A stack the CLI would refuse
 * fails here with the CLI's message, before the program runs.
 */
import { readFileSync } from "node:fs";
import { join } from "node:path";
import * as pulumi from "@pulumi/pulumi";
import { dump } from "js-yaml";
import { PROJECT_NAME } from "../../infra/config";
import { createProgram } from "../../infra/program";
import { type CliConfig, cliConfig } from "./pulumi-cli";
import { RecordingMocks, resolve } from "./pulumi-mocks";

const ROOT = join(__dirname, "..", "..");
export const PROJECT_YAML = readFileSync(join(ROOT, "Pulumi.yaml"), "utf8");

/**
 * Settings named as `pulumi config set --path` names them: `store`, `redis.replicas`, `jwt.issuer`. Keys with a
 * colon (`aws:region`) are taken as they are.
 */
export type StackSettings = Readonly<Record<string, string | number | boolean | readonly string[]>>;

/**
 * What `pulumi config set --path` stores for a nested value (map.go `Set` → `coerceObject`): "true"/"false"
 * become booleans and decimal integers without a leading zero become numbers; everything else stays text.
 */
function coerced(value: string | number | boolean | readonly string[]): unknown {
  if (typeof value !== "string") return value;
  if (value === "true" || value === "false") return value === "true";
  if (/^(0|-?[1-9]\d*)$/.test(value) && Number.isSafeInteger(Number(value))) return Number(value);
  return value;
}

/**
 * The stack file that `pulumi config set` commands for `settings` leave behind (a top-level value as text,
 * nested values coerced), plus `secrets` as encrypted values (the model's `plain:` cipher).
 */
export function stackYamlFor(settings: StackSettings, secrets: Readonly<Record<string, string>> = {}): string {
  const config: Record<string, unknown> = {};
  for (const [path, value] of Object.entries(settings)) {
    if (path.includes(":")) {
      config[path] = value;
      continue;
    }
    const dot = path.indexOf(".");
    if (dot === -1) {
      config[`${PROJECT_NAME}:${path}`] = Array.isArray(value) ? value : String(value);
      continue;
    }
    const key = `${PROJECT_NAME}:${path.slice(0, dot)}`;
    const group = (config[key] ?? {}) as Record<string, unknown>;
    group[path.slice(dot + 1)] = coerced(value);
    config[key] = group;
  }
  for (const [key, value] of Object.entries(secrets)) config[`${PROJECT_NAME}:${key}`] = { secure: `plain:${value}` };
  return dump({ config });
}

export interface Registration {
  readonly name: string;
  readonly type: string;
  readonly protect: boolean;
  readonly retainOnDelete: boolean;
  /** Names (not URNs) of the resources it depends on. */
  readonly dependsOn: readonly string[];
  /** URN of its parent; empty for a resource without one. */
  readonly parent: string;
  /** The parent URNs its aliases name (an alias spec that names none is left out). */
  readonly aliasParents: readonly string[];
}

export interface ProgramRun {
  readonly mocks: RecordingMocks;
  readonly outputs: { url: string; callbackUrl: string; store: string; storeResource: string };
  readonly registrations: ReadonlyMap<string, Registration>;
  /** What the CLI model handed the program. */
  readonly cli: CliConfig;
  readonly apiId: string;
  readonly executionArn: string;
}

export interface RunOptions {
  readonly stack?: string;
  readonly settings?: StackSettings;
  readonly secrets?: Readonly<Record<string, string>>;
  /** A whole stack file instead of `settings`. */
  readonly stackYaml?: string;
  /** The CloudWatch Logs role the account's API Gateway settings already have; default none. */
  readonly accountCloudwatchRoleArn?: string;
}

// waitForRPCs is exported at runtime but marked internal; it is the only way to know every registration ran.
const runtimeInternals = pulumi.runtime as unknown as { waitForRPCs(): Promise<void> };

interface RegisterRequest {
  getName(): string;
  getType(): string;
  getProtect(): boolean | undefined;
  getRetainondelete(): boolean | undefined;
  getDependenciesList(): string[];
  getParent(): string;
  getAliasesList(): { getSpec(): { getParenturn(): string } | undefined }[];
}

interface MockMonitor {
  registerResource(req: RegisterRequest, callback: (...args: unknown[]) => void): Promise<void>;
  newUrn(parent: string, type: string, name: string): string;
}

/**
 * A URN as the engine builds it: the parent's whole type chain, then the type (`ChatApi$ChatRoute$…Function`).
 * The mock monitor keeps only the parent's own type, which would hide where a grandchild sits.
 */
function engineUrn(parent: string, type: string, name: string): string {
  const parentType = parent ? parent.split("::")[2] : undefined;
  const qualified = parentType && parentType !== "pulumi:pulumi:Stack" ? `${parentType}$${type}` : type;
  return `urn:pulumi:${pulumi.getStack()}::${pulumi.getProject()}::${qualified}::${name}`;
}

const nameOfUrn = (urn: string) => urn.slice(urn.lastIndexOf("::") + 2);

const mocks = new RecordingMocks();

/** The CLI's view of a stack, then the program under fresh mocks on exactly that config. */
export async function runProgram(options: RunOptions = {}): Promise<ProgramRun> {
  const stack = options.stack ?? "dev";
  const stackYaml = options.stackYaml ?? stackYamlFor(options.settings ?? {}, options.secrets);
  const cli = cliConfig({ projectYaml: PROJECT_YAML, stackYaml, stackName: stack });

  mocks.reset();
  mocks.accountCloudwatchRoleArn = options.accountCloudwatchRoleArn ?? "";
  await pulumi.runtime.setMocks(mocks, PROJECT_NAME, stack, false);
  const registrations = new Map<string, Registration>();
  const monitor = pulumi.runtime.getMonitor() as unknown as MockMonitor;
  monitor.newUrn = engineUrn;
  const register = monitor.registerResource.bind(monitor);
  monitor.registerResource = (req, callback) => {
    registrations.set(req.getName(), {
      name: req.getName(),
      type: req.getType(),
      protect: req.getProtect() ?? false,
      retainOnDelete: req.getRetainondelete() ?? false,
      dependsOn: req.getDependenciesList().map(nameOfUrn),
      parent: req.getParent(),
      aliasParents: req.getAliasesList().flatMap((alias) => alias.getSpec()?.getParenturn() || []),
    });
    return register(req, callback);
  };
  pulumi.runtime.setAllConfig({ ...cli.config }, [...cli.secretKeys]);

  const program = createProgram();
  const outputs = {
    url: await resolve(program.url),
    callbackUrl: await resolve(program.callbackUrl),
    store: program.store,
    storeResource: await resolve(program.storeResource),
  };
  await runtimeInternals.waitForRPCs();
  const recorded = new RecordingMocks();
  recorded.resources = [...mocks.resources];
  recorded.calls = [...mocks.calls];
  const api = recorded.named(`${PROJECT_NAME}-api`);
  return { mocks: recorded, outputs, registrations, cli, apiId: api.id, executionArn: String(api.state.executionArn) };
}
