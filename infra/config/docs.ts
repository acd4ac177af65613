/**
 * Renders what is generated from the config schema: `Pulumi.yaml`'s `config:` block (what the CLI merges and
 * type-checks) and docs/configuration.md (the reference a reader looks up). `npm run docs:config` writes both;
 * test/config-docs.test.ts fails when a committed file differs from what this renders.
 */
import { CONFIG_SCHEMA, type FieldSpec, type KeySpec, PROJECT_NAME } from "./schema";

const WIDTH = 110;

/** Folds text into lines of at most {@link WIDTH} characters, each prefixed with `indent`. */
function fold(text: string, indent: string): string[] {
  const lines: string[] = [];
  let line = "";
  for (const word of text.split(/\s+/)) {
    if (line !== "" && indent.length + line.length + 1 + word.length > WIDTH) {
      lines.push(indent + line);
      line = word;
    } else {
      line = line === "" ? word : `${line} ${word}`;
    }
  }
  if (line !== "") lines.push(indent + line);
  return lines;
}

function yamlValue(value: unknown): string {
  if (Array.isArray(value)) return value.length === 0 ? "[]" : `[${value.map(yamlValue).join(", ")}]`;
  if (typeof value === "string") return JSON.stringify(value);
  if (value !== null && typeof value === "object") return "{}";
  return String(value);
}

function allowedText(spec: FieldSpec): string {
  if ((spec.type === "string" || spec.type === "integer") && spec.allowed) {
    const values = (spec.allowed as readonly (string | number)[]).filter((v) => v !== "");
    return ` One of: ${values.join(", ")}.`;
  }
  if (spec.type === "integer") return ` Range ${spec.min}-${spec.max}.`;
  return "";
}

function fieldSummary(name: string, spec: FieldSpec): string {
  return `${name} (${spec.type}, default ${yamlValue(spec.default)})`;
}

/**
 * The description the CLI shows. An object key's lists its fields, since the project schema cannot type them.
 */
function cliDescription(key: string, spec: KeySpec): string {
  if (spec.type !== "object") return spec.description + allowedText(spec);
  const fields = Object.entries(spec.fields).map(([name, field]) => fieldSummary(name, field));
  const first = Object.keys(spec.fields)[0];
  return (
    `${spec.description} A map with the fields ${fields.join(", ")}; ` +
    `set one with \`pulumi config set --path ${key}.${first} <value>\`. See docs/configuration.md.`
  );
}

/**
 * The `config:` block. Object keys are declared without a `type`: `object` is missing from the type list of
 * older CLIs' project schema, and an untyped key is merged but not type-checked by the CLI, so the program's
 * own check reports every field with its full name. Every key has a default: a declared key without one is
 * required on every stack.
 */
export function renderProjectConfig(): string {
  const out: string[] = ["config:"];
  for (const [key, spec] of Object.entries(CONFIG_SCHEMA) as [string, KeySpec][]) {
    out.push(`  ${key}:`);
    if (spec.type === "object") {
      out.push("    default: {}");
    } else {
      out.push(`    type: ${spec.type}`);
      if (spec.type === "array") out.push(`    items:`, `      type: ${spec.items}`);
      out.push(`    default: ${yamlValue(spec.default)}`);
    }
    out.push("    description: >-", ...fold(cliDescription(key, spec), "      "));
  }
  return `${out.join("\n")}\n`;
}

const PULUMI_YAML_HEAD = `name: ${PROJECT_NAME}
description: Serverless real-time WebSocket chat backend on AWS API Gateway (Lambda per route, DynamoDB or Redis store).
runtime:
  name: nodejs
  options:
    typescript: true
    packagemanager: npm
# Generated from infra/config/schema.ts by \`npm run docs:config\`; edit the schema, not this block.
# Set values per stack in Pulumi.<stack>.yaml or with \`pulumi config set\` (\`--path\` for a field of an object key).
`;

export function renderPulumiYaml(): string {
  return PULUMI_YAML_HEAD + renderProjectConfig();
}

function markdownCell(text: string): string {
  return text.replace(/\|/g, "\\|");
}

function settingRow(path: string, spec: FieldSpec): string {
  const shownDefault = spec.type === "string" && spec.default === "" ? "(empty)" : `\`${yamlValue(spec.default)}\``;
  return `| \`${path}\` | ${spec.type === "array" ? "list of strings" : spec.type} | ${shownDefault} | ${markdownCell(
    spec.description + allowedText(spec),
  )} |`;
}

export function renderConfigurationDoc(): string {
  const rows: string[] = [];
  for (const [key, spec] of Object.entries(CONFIG_SCHEMA) as [string, KeySpec][]) {
    if (spec.type !== "object") {
      rows.push(settingRow(key, spec));
      continue;
    }
    rows.push(`| \`${key}\` | map | \`{}\` | ${markdownCell(spec.description)} |`);
    for (const [field, fieldSpec] of Object.entries(spec.fields)) rows.push(settingRow(`${key}.${field}`, fieldSpec));
  }
  return `<!-- Generated from infra/config/schema.ts by \`npm run docs:config\`; test/config-docs.test.ts checks it. -->
# Configuration reference

Every stack setting, its type, default and meaning. Keys are namespaced by the project (\`${PROJECT_NAME}:store\`).
Groups of settings are **object keys** (\`redis\`, \`jwt\`, \`throttle\` …): set a field with
\`pulumi config set --path redis.nodeType cache.t4g.small\`, or write a YAML map in \`Pulumi.<stack>.yaml\`:

\`\`\`yaml
config:
  ${PROJECT_NAME}:store: redis
  ${PROJECT_NAME}:redis:
    nodeType: cache.t4g.small
    replicas: 1
\`\`\`

A field left out of a map takes its default; the program checks every field and reports all problems at once,
each naming the full key (\`${PROJECT_NAME}:redis.replicas\`). Why object keys and not dotted flat names, and what
the Pulumi CLI does with them, is in [deploying.md](deploying.md#configuration-and-the-pulumi-cli).

| Setting | Type | Default | Meaning |
| --- | --- | --- | --- |
${rows.join("\n")}
`;
}
