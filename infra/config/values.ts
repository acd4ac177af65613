/**
 * Reads one setting of the stack configuration at a time, as the Pulumi CLI hands it over, and records every
 * problem instead of stopping at the first, so one `pulumi preview` lists everything to fix.
 *
 * What arrives (pulumi/pulumi `sdk/go/common/resource/config/value.go`, `object.go`): a top-level scalar is
 * always TEXT, whatever YAML type the stack file used (`true` → "true", `5` → "5"); an object key is JSON text
 * whose fields keep their JSON types, and `pulumi config set --path` turns "true"/"false" and decimal integers
 * into booleans and numbers. So a field may be `5` or `"5"`, `true` or `"true"`, and both are accepted; nothing
 * the CLI itself would refuse is accepted (`boolean` is exactly true/false, `integer` is what Go's
 * `strconv.Atoi` parses: `ValidateConfigValue` in `sdk/go/common/workspace/project.go`).
 */
import {
  CONFIG_SCHEMA,
  type ConfigKey,
  type FieldSpec,
  fullKey,
  type GroupSpec,
  type KeySpec,
  type SettingPath,
  specOf,
} from "./schema";

/** Values as `pulumi.runtime.allConfig()` holds them, keys without the project namespace. */
export type RawConfig = Readonly<Record<string, string | undefined>>;

const INTEGER_TEXT = /^[+-]?\d+$/;

/** How a value is shown in a message: secrets never are. */
function shown(path: SettingPath, value: unknown): string {
  const spec = specOf(path);
  if (spec.type === "string" && spec.secret) return `[secret, ${String(value).length} characters]`;
  return JSON.stringify(value);
}

/** The message every rejected value gets: full key, the value, what is allowed, and why when it helps. */
export function invalid(path: SettingPath, value: unknown, allowed: string, why?: string): string {
  return `Invalid config ${fullKey(path)}: ${shown(path, value)} (allowed: ${allowed})${why ? `; ${why}` : ""}`;
}

export class ConfigReader {
  readonly problems: string[] = [];
  private readonly groups = new Map<string, Readonly<Record<string, unknown>>>();

  constructor(private readonly raw: RawConfig) {}

  /** The value as set, or `undefined` when unset (absent, empty text, or JSON null in an object). */
  value(path: SettingPath): unknown {
    const [key, field] = path.split(".") as [ConfigKey, string | undefined];
    if (field === undefined) {
      const text = this.raw[key];
      return text === undefined || text === "" ? undefined : text;
    }
    const value = this.group(key)[field];
    return value === null || value === "" ? undefined : value;
  }

  /** A string; `normalize` (e.g. upper-casing) applies before the allowed values are checked. */
  string(path: SettingPath, normalize: (text: string) => string = (text) => text): string {
    const spec = specOf(path) as Extract<FieldSpec, { type: "string" }>;
    const value = this.value(path);
    if (value === undefined) return spec.default;
    // `--path` and YAML maps turn 7 or 7.1 into numbers; a string field takes their text.
    const text =
      typeof value === "number" ? String(value) : typeof value === "string" ? normalize(value.trim()) : value;
    if (typeof text !== "string") {
      this.problems.push(invalid(path, value, "a string"));
      return spec.default;
    }
    if (spec.allowed && !spec.allowed.includes(text)) {
      this.problems.push(invalid(path, value, spec.allowed.filter((a) => a !== "").join(", ")));
      return spec.default;
    }
    return text;
  }

  /** An integer within the spec's bounds (and its allowed set, if any). */
  integer(path: SettingPath): number {
    const spec = specOf(path) as Extract<FieldSpec, { type: "integer" }>;
    const value = this.value(path);
    if (value === undefined) return spec.default;
    const parsed =
      typeof value === "number" ? value : typeof value === "string" && INTEGER_TEXT.test(value) ? Number(value) : NaN;
    const allowed = spec.allowed
      ? spec.allowed.join(", ")
      : spec.max === Number.MAX_SAFE_INTEGER
        ? `an integer >= ${spec.min}`
        : `an integer from ${spec.min} to ${spec.max}`;
    if (
      !Number.isSafeInteger(parsed) ||
      parsed < spec.min ||
      parsed > spec.max ||
      (spec.allowed !== undefined && !spec.allowed.includes(parsed))
    ) {
      this.problems.push(invalid(path, value, allowed, spec.why));
      return spec.default;
    }
    return parsed;
  }

  /** Exactly true or false, as the CLI's `boolean` type and the Node SDK's `getBoolean` accept. */
  boolean(path: SettingPath): boolean {
    const spec = specOf(path) as Extract<FieldSpec, { type: "boolean" }>;
    const value = this.value(path);
    if (value === undefined) return spec.default;
    if (value === true || value === "true") return true;
    if (value === false || value === "false") return false;
    this.problems.push(invalid(path, value, "true, false"));
    return spec.default;
  }

  /** A list of strings: a YAML list in the stack file (JSON text at the top level, an array in an object). */
  list(path: SettingPath): string[] {
    const spec = specOf(path) as Extract<FieldSpec, { type: "array" }>;
    let value = this.value(path);
    if (value === undefined) return [...spec.default];
    if (typeof value === "string") {
      try {
        value = JSON.parse(value);
      } catch {
        // Reported below as not a list.
      }
    }
    if (!Array.isArray(value) || !value.every((item) => typeof item === "string")) {
      this.problems.push(invalid(path, this.value(path), "a list of strings (a YAML list)"));
      return [...spec.default];
    }
    return value;
  }

  /** The fields of an object key as set; unknown fields and a value that is no map are problems. */
  private group(key: ConfigKey): Readonly<Record<string, unknown>> {
    const cached = this.groups.get(key);
    if (cached) return cached;
    const spec: KeySpec = CONFIG_SCHEMA[key];
    const fields = this.parseGroup(key, spec as GroupSpec);
    this.groups.set(key, fields);
    return fields;
  }

  private parseGroup(key: ConfigKey, spec: GroupSpec): Readonly<Record<string, unknown>> {
    const text = this.raw[key];
    if (text === undefined || text === "") return {};
    let parsed: unknown;
    try {
      parsed = JSON.parse(text);
    } catch {
      parsed = text;
    }
    const names = Object.keys(spec.fields);
    if (parsed === null || typeof parsed !== "object" || Array.isArray(parsed)) {
      this.problems.push(
        `Invalid config ${fullKey(key)}: ${JSON.stringify(parsed)} (allowed: a map of ${names.join(", ")}); ` +
          `set a field with \`pulumi config set --path ${key}.${names[0]} <value>\``,
      );
      return {};
    }
    for (const field of Object.keys(parsed)) {
      if (!Object.hasOwn(spec.fields, field)) {
        this.problems.push(`Unknown config ${fullKey(`${key}.${field}`)} (fields of ${key}: ${names.join(", ")})`);
      }
    }
    return parsed as Record<string, unknown>;
  }
}
