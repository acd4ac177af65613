/**
 * A model of what the Pulumi CLI (pulumi/pulumi at HEAD) does with `Pulumi.yaml` and `Pulumi.<stack>.yaml` before
 * `pulumi preview` / `pulumi up` starts a Node.js program, so tests can catch config the real CLI rejects (Pulumi
 * mocks' `setAllConfig` skips all of it). The sequence `pulumi preview` runs (pkg/cmd/pulumi/operations/preview.go):
 *
 * 1. `workspace.LoadProjectBytes` (sdk/go/common/workspace/loaders.go) — {@link loadProject}.
 * 2. `config.GetStackConfiguration` → `workspace.LoadProjectStackBytes` — {@link loadStack}; errors are printed as
 *    `getting stack configuration: …`.
 * 3. `pkgWorkspace.ValidateStackConfigAndApplyProjectConfig` (pkg/workspace/config.go `mergeConfig` with validate=true):
 *    apply every project default/value, then report missing keys, then `validateStackConfigValues` type-checks every
 *    typed key against the MERGED map — {@link cliConfig}; errors are printed as `validating stack config: …`.
 *    (Since CLI v3.202.0, pulumi/pulumi#20674; before it, typed keys were checked inside the loop and a defaulted
 *    key was never re-checked, so a default path-set into a typed root went through silently.)
 * 4. The engine hands `Config.Decrypt(…)` and `Config.SecureKeys()` to the language host
 *    (pkg/resource/deploy/source_eval.go), which the Node SDK stores with `setAllConfig(config, secretKeys)`.
 *
 * Secrets in fixtures are `{secure: "plain:<text>"}`: the "ciphertext" is the plaintext behind a `plain:` prefix.
 * Not modelled: ESC environments, `--config` flags, schema checks outside `name` and `config`, YAML line numbers in
 * messages, and Go's random map order (everything here is sorted where Go would iterate a map).
 */
import * as yaml from "js-yaml";

/** An error the CLI would print, with its exact text. */
export class PulumiCliError extends Error {
  override name = "PulumiCliError";
}
const fail = (message: string): never => {
  throw new PulumiCliError(message);
};
/** Go's `fmt.Errorf("<prefix>%w", err)` around one step. */
function prefixed<T>(prefix: string, run: () => T): T {
  try {
    return run();
  } catch (error) {
    return fail(`${prefix}${(error as Error).message}`);
  }
}

// ---------- YAML as gopkg.in/yaml.v3 decodes it into `any` (resolve.go `resolve`) ----------

/** A YAML float (Go float64), kept apart from ints because the CLI treats the two differently. */
class GoFloat {
  constructor(readonly value: number) {}
}
/** A YAML timestamp (Go time.Time, assuming the CLI's local zone is UTC): its RFC 3339 and `String()` forms. */
class GoTime {
  constructor(
    readonly rfc3339: string,
    readonly text: string,
  ) {}
}

const p2 = (n: number) => String(n).padStart(2, "0");
const TIMESTAMP = /^(\d{4})-(\d\d?)-(\d\d?)(?:([Tt ])(\d\d?):(\d\d?):(\d\d?)(?:[.,](\d+))?(Z|[+-]\d\d:\d\d)?)?$/;

/** yaml.v3 resolve.go `parseTimestamp` (the four layouts of `allowedTimestampFormats`). */
function parseTimestamp(s: string): GoTime | undefined {
  const m = TIMESTAMP.exec(s);
  if (!m) return undefined;
  const [, y, mo, d, sep, h = "0", mi = "0", se = "0", frac = "", zone] = m;
  if (sep && (sep === " ") !== (zone === undefined)) return undefined; // T/t need a zone, a space forbids one
  const [Y, M, D, H, Mi, S] = [y, mo, d, h, mi, se].map(Number) as [number, number, number, number, number, number];
  const days = new Date(Date.UTC(Y, M, 0)).getUTCDate();
  if (M < 1 || M > 12 || D < 1 || D > days || H > 23 || Mi > 59 || S > 59) return undefined;
  const [zh, zm] = zone && zone !== "Z" ? [Number(zone.slice(1, 3)), Number(zone.slice(4))] : [0, 0];
  if (zh > 24 || zm > 60) return undefined;
  const f = frac.slice(0, 9).replace(/0+$/, "");
  const at = `${y}-${p2(M)}-${p2(D)}`;
  const clock = `${p2(H)}:${p2(Mi)}:${p2(S)}${f ? `.${f}` : ""}`;
  const off = zh || zm ? `${zone![0]}${p2(zh)}${p2(zm)}` : "";
  return new GoTime(`${at}T${clock}${off ? zone : "Z"}`, `${at} ${clock} ${off ? `${off} ${off}` : "+0000 UTC"}`);
}

/** Go `strconv.ParseInt(s, 0, 64)`/`ParseUint` after yaml.v3 strips `_`: sign, 0x/0o/0b/0 prefixes. */
function parseGoIntBase0(s: string): number | undefined {
  const m = /^([+-]?)(0[xX][0-9a-fA-F]+|0[oO][0-7]+|0[bB][01]+|0[0-7]*|[1-9][0-9]*)$/.exec(s);
  if (!m) return undefined;
  const body = m[2]!;
  const digits = /^0[0-7]+$/.test(body) ? `0o${body.slice(1)}` : body;
  const n = BigInt(digits) * (m[1] === "-" ? -1n : 1n);
  return n >= -(2n ** 63n) && n < 2n ** 64n ? Number(n) : undefined;
}

const YAML_SPECIALS: Record<string, unknown> = { "": null, "~": null, null: null, Null: null, NULL: null };
for (const s of ["true", "True", "TRUE"]) YAML_SPECIALS[s] = true;
for (const s of ["false", "False", "FALSE"]) YAML_SPECIALS[s] = false;
for (const s of [".nan", ".NaN", ".NAN"]) YAML_SPECIALS[s] = new GoFloat(Number.NaN);
for (const s of [".inf", ".Inf", ".INF"]) YAML_SPECIALS[s] = YAML_SPECIALS[`+${s}`] = new GoFloat(Infinity);
for (const s of [".inf", ".Inf", ".INF"]) YAML_SPECIALS[`-${s}`] = new GoFloat(-Infinity);
const YAML_FLOAT = /^[-+]?(\.[0-9]+|[0-9]+(\.[0-9]*)?)([eE][-+]?[0-9]+)?$/;

/** yaml.v3 resolve.go `resolve` for an untagged plain scalar; returns `s` itself when it stays a string. */
function resolvePlain(s: string): unknown {
  const hint = s === "" ? "N" : /[-+0-9]/.test(s[0]!) ? "D" : /[yYnNtTfFoO~.]/.test(s[0]!) ? "M" : "";
  if (!hint) return s;
  if (Object.hasOwn(YAML_SPECIALS, s)) return YAML_SPECIALS[s];
  if (s[0] === ".") return /^\.[0-9]+([eE][-+]?[0-9]+)?$/.test(s) && Number.isFinite(+s) ? new GoFloat(+s) : s;
  if (hint !== "D") return s;
  const time = parseTimestamp(s);
  if (time) return time;
  const plain = s.replaceAll("_", "");
  const int = parseGoIntBase0(plain);
  if (int !== undefined) return int;
  const float = YAML_FLOAT.test(plain) ? Number(plain) : Number.NaN;
  return Number.isFinite(float) ? new GoFloat(float) : s; // ParseFloat fails on overflow
}

const GO_PLAIN = new yaml.Type("tag:pulumi-cli-model,yaml.v3-plain-scalar", {
  kind: "scalar",
  resolve: (s: string) => resolvePlain(s) !== s,
  construct: (s: string) => resolvePlain(s),
});
/** `<<` merge keys (yaml.v3 decode.go `isMerge`); the tag is the one js-yaml's loader merges on. */
const MERGE = new yaml.Type("tag:yaml.org,2002:merge", { kind: "scalar", resolve: (s: string) => s === "<<" });
const GO_YAML_SCHEMA = yaml.FAILSAFE_SCHEMA.extend({ implicit: [GO_PLAIN, MERGE] });

function parseYaml(text: string): unknown {
  try {
    return yaml.load(text, { schema: GO_YAML_SCHEMA }) ?? null;
  } catch (error) {
    return fail(`invalid YAML file: ${(error as Error).message}`);
  }
}

// ---------- Go values: encoding/json, %T, sort.Strings ----------

type Json = Record<string, unknown>;
const isMap = (v: unknown): v is Json =>
  typeof v === "object" && v !== null && !Array.isArray(v) && !(v instanceof GoFloat) && !(v instanceof GoTime);
const goSort = (xs: string[]) => xs.sort((a, b) => Buffer.compare(Buffer.from(a), Buffer.from(b)));
const goTypeName = (v: unknown) =>
  v === null
    ? "<nil>"
    : Array.isArray(v)
      ? "[]interface {}"
      : v instanceof GoFloat
        ? "float64"
        : v instanceof GoTime
          ? "time.Time"
          : typeof v === "number"
            ? "int"
            : typeof v === "boolean"
              ? "bool"
              : "string";

/** Go `json.Marshal`: sorted keys, HTML-safe escaping, no NaN/Inf. */
function goJson(v: unknown): string {
  if (v === null || v === undefined) return "null";
  if (v instanceof Ciphertext) return `{"secure":${goJson(v.ciphertext)}}`;
  if (v instanceof GoTime) return goJson(v.rfc3339);
  if (typeof v === "number" || v instanceof GoFloat) {
    const n = typeof v === "number" ? v : v.value;
    if (!Number.isFinite(n)) fail(`json: unsupported value: ${Number.isNaN(n) ? "NaN" : n > 0 ? "+Inf" : "-Inf"}`);
    return JSON.stringify(n);
  }
  if (typeof v === "string") {
    return JSON.stringify(v).replace(
      /[<>&\u2028\u2029]/g,
      (c) => `\\u${c.charCodeAt(0).toString(16).padStart(4, "0")}`,
    );
  }
  if (Array.isArray(v)) return `[${v.map(goJson).join(",")}]`;
  if (isMap(v))
    return `{${goSort(Object.keys(v))
      .map((k) => `${goJson(k)}:${goJson(v[k])}`)
      .join(",")}}`;
  return String(v);
}

// ---------- Config values (sdk/go/common/resource/config/value.go, object.go) ----------

class Ciphertext {
  constructor(readonly ciphertext: string) {}
}
/** The in-memory form of a config value (`object.value`). */
type Obj = null | boolean | number | string | Ciphertext | Obj[] | { [key: string]: Obj };
/** `config.Value`: its string form plus the secure/object flags. */
export interface Value {
  readonly value: string;
  readonly secure: boolean;
  readonly object: boolean;
}
const ZERO: Value = { value: "", secure: false, object: false };
const isObjMap = (o: Obj | undefined): o is { [key: string]: Obj } => isMap(o) && !(o instanceof Ciphertext);
const isSecureObj = (o: Obj): boolean =>
  o instanceof Ciphertext ||
  (Array.isArray(o) ? o.some(isSecureObj) : isObjMap(o) && Object.values(o).some(isSecureObj));

/** object.go `unmarshalObject`: raw YAML/JSON data → object (`{secure: string}` is a ciphertext). */
function fromWire(v: unknown): Obj {
  if (v === null || v === undefined) return null;
  if (v instanceof GoFloat) return v.value;
  if (v instanceof GoTime) return v.text;
  if (Array.isArray(v)) return v.map(fromWire);
  if (isMap(v)) {
    const keys = Object.keys(v);
    if (keys.length === 1 && keys[0] === "secure" && typeof v.secure === "string") return new Ciphertext(v.secure);
    return Object.fromEntries(keys.map((k) => [k, fromWire(v[k])]));
  }
  return v as Obj;
}
/** object.go `MarshalString`: scalars become plain text (JSON for bool/number), containers JSON objects. */
function marshalValue(o: Obj): Value {
  if (typeof o === "string") return { value: o, secure: false, object: false };
  if (o instanceof Ciphertext) return { value: o.ciphertext, secure: true, object: false };
  if (typeof o === "boolean" || typeof o === "number") return { value: goJson(o), secure: false, object: false };
  return { value: goJson(o), secure: isSecureObj(o), object: true };
}
/** value.go `unmarshalObject`. */
const unmarshalObject = (v: Value): Obj =>
  v.object ? fromWire(JSON.parse(v.value)) : v.secure ? new Ciphertext(v.value) : v.value;

/** object.go `coerce`: "true"/"false" → bool, base-10 integers without a leading 0 → number. */
function coerceObject(v: Value): Obj {
  if (v.secure || v.object) return unmarshalObject(v);
  const s = v.value;
  if (s === "true" || s === "false") return s === "true";
  if (s.length > 1 && s[0] === "0") return s;
  const n = /^[+-]?\d+$/.test(s) ? BigInt(s) : undefined;
  if (n === undefined) return s;
  const fitsInt64 = n >= -(2n ** 63n) && n < 2n ** 63n;
  const fitsUint64 = /^\d/.test(s) && n < 2n ** 64n;
  return fitsInt64 || fitsUint64 ? Number(n) : s;
}

/** The fixtures' "decrypter": `plain:<text>` → `<text>`. */
function decrypt(o: Obj): Obj {
  if (o instanceof Ciphertext) {
    if (!o.ciphertext.startsWith("plain:")) fail(`[model] cannot decrypt '${o.ciphertext}': use {secure: "plain:…"}`);
    return o.ciphertext.slice("plain:".length);
  }
  if (Array.isArray(o)) return o.map(decrypt);
  return isObjMap(o) ? Object.fromEntries(Object.entries(o).map(([k, x]) => [k, decrypt(x)])) : o;
}
/** value.go `Value(decrypter)` → plaintext.go `marshalText`: strings as is, everything else Go JSON. */
function plaintext(v: Value): string {
  const o = decrypt(unmarshalObject(v));
  return typeof o === "string" ? o : goJson(o);
}

// ---------- Keys and property paths (key.go ParseKey, properties_path.go, map.go Get/Set) ----------

interface Key {
  readonly namespace: string;
  readonly name: string;
}
type Segment = string | number;

/** key.go `ParseKey`: `ns:name`, or the legacy `pkg:config:name`. */
function parseKey(s: string): Key {
  const parts = s.split(":");
  if (parts.length === 2) return { namespace: parts[0]!, name: parts[1]! };
  if (parts.length === 3 && parts[1] === "config") return { namespace: parts[0]!, name: parts[2]! };
  return fail(
    `could not parse ${s} as a configuration key (configuration keys should be of the form \`<namespace>:<name>\`)`,
  );
}
/** pkg/workspace/config.go `parseConfigKey`. */
const parseConfigKey = (project: string, key: string) =>
  key.includes(":") ? parseKey(key) : { namespace: project, name: key };

/** properties_path.go `ParsePropertyPathStrict`. */
function parsePropertyPath(path: string): Segment[] {
  const out: Segment[] = [];
  if (path[0] === ".") fail("expected property path to start with a name or index");
  while (path.length > 0) {
    if (path[0] === ".") {
      path = path.slice(1);
      if (path.length === 0) fail("expected property path to end with a name or index");
      if (path[0] === "[") fail("expected property name after '.'");
    } else if (path[0] === "[" && path[1] === '"') {
      let key = "";
      let i = 2;
      for (; path[i] !== '"'; i++) {
        if (i >= path.length) fail("missing closing quote in property name");
        if (path[i] === "\\" && path[i + 1] === '"') i++;
        key += path[i];
      }
      if (path[i + 1] !== "]") fail("missing closing bracket in property access");
      out.push(key);
      path = path.slice(i + 2);
    } else if (path[0] === "[") {
      const close = path.indexOf("]");
      if (close === -1) fail("missing closing bracket in array index");
      const segment = path.slice(1, close);
      const n = /^[+-]?\d+$/.test(segment) ? BigInt(segment) : undefined;
      if (segment !== "*" && (n === undefined || n < -(2n ** 63n) || n >= 2n ** 63n)) {
        const why = n === undefined ? "invalid syntax" : "value out of range";
        fail(`invalid array index: strconv.ParseInt: parsing ${JSON.stringify(segment)}: ${why}`);
      }
      out.push(segment === "*" ? "*" : Number(n));
      path = path.slice(close + 1);
    } else {
      const end = path.search(/[.[]/);
      out.push(end === -1 ? path : path.slice(0, end));
      path = end === -1 ? "" : path.slice(end);
    }
  }
  return out;
}

/** map.go `parseKeyPath`: the path in the key's name, and the map key of its first segment. */
function parseKeyPath(k: Key): { path: Segment[]; root: string } {
  const path = prefixed("invalid config key path: ", () => parsePropertyPath(k.name));
  if (path.length === 0) fail("empty config key path");
  if (typeof path[0] !== "string") fail("first path segement of config key must be a string");
  if (path[0] === "") fail("config key is empty");
  return { path, root: `${k.namespace}:${path[0]}` };
}

/** properties_path.go `PropertyPath.String`, used in Set's error messages. */
const pathString = (p: Segment[]) =>
  p
    .map((s, i) =>
      typeof s === "number" ? `[${s}]` : /[^A-Za-z0-9_]/.test(s) ? `["${s.replaceAll('"', '\\"')}"]` : i ? `.${s}` : s,
    )
    .join("");

/** The stack's config: `ns:name` → value (config.Map). */
export type ConfigMap = Map<string, Value>;

/** map.go `Map.Get(k, path=true)`: nested lookups only look inside an object root; a flat `ns:a.b` is never seen. */
function mapGet(m: ConfigMap, k: Key): { value: Value; found: boolean } {
  const { path, root } = parseKeyPath(k);
  const rootValue = m.get(root);
  if (path.length === 1) return { value: rootValue ?? ZERO, found: rootValue !== undefined };
  let o: Obj = unmarshalObject(rootValue ?? ZERO);
  for (const s of path.slice(1)) {
    if (Array.isArray(o) && typeof s === "number" && s >= 0 && s < o.length) o = o[s]!;
    else if (isObjMap(o) && typeof s === "string" && Object.hasOwn(o, s)) o = o[s]!;
    else return { value: ZERO, found: false };
  }
  return { value: marshalValue(o), found: true };
}

const newContainer = (s: Segment): Obj => (typeof s === "number" ? Array<Obj>(s + 1).fill(null) : {});

/** object.go `object.Set`: a primitive ROOT is silently replaced by a container (COMPAT); deeper ones are errors. */
function setIn(current: Obj, prefix: Segment[], path: Segment[], value: Obj): Obj {
  const [head, ...rest] = path;
  if (head === undefined) return value;
  let o = current as Obj[] | { [key: string]: Obj };
  if (!Array.isArray(current) && !isObjMap(current)) {
    const expected = typeof head === "number" ? "an array" : "a map";
    if (current !== null && prefix.length > 1) fail(`${pathString(prefix)}: expected ${expected}`);
    o = newContainer(head) as typeof o;
  }
  const at = [...prefix, head];
  if (Array.isArray(o)) {
    if (typeof head !== "number") return fail(`${pathString(at)}: key for an array must be an int`);
    if (head < 0 || head > o.length) fail(`${pathString(at)}: array index out of range`);
    const copy = [...o, ...(head === o.length ? [null] : [])];
    copy[head] = setIn(copy[head]!, at, rest, value);
    return copy;
  }
  if (typeof head !== "string") return fail(`${pathString(at)}: key for a map must be a string`);
  if (rest.length === 0 && Object.keys(o).length === 0 && head === "secure" && typeof value === "string") {
    fail('maps with the single key "secure" are reserved');
  }
  return { ...o, [head]: setIn(Object.hasOwn(o, head) ? o[head]! : null, at, rest, value) };
}

/** map.go `Map.Set(k, v, path=true)`: a nested path writes into (or creates) the object at `ns:<first segment>`. */
function mapSet(m: ConfigMap, k: Key, v: Value): void {
  const { path, root } = parseKeyPath(k);
  if (path.length === 1) return void m.set(root, v);
  const rootValue = m.get(root);
  const start = rootValue ? unmarshalObject(rootValue) : newContainer(path[1]!);
  m.set(root, marshalValue(setIn(start, [path[0]!], path.slice(1), coerceObject(v))));
}

// ---------- Pulumi.yaml (sdk/go/common/workspace/loaders.go, project.go, project.json) ----------

export interface ConfigItems {
  readonly type: string;
  readonly items?: ConfigItems;
}
/** project.go `ProjectConfigType`, after `RewriteShorthandConfigValues`. */
export interface ProjectConfigType {
  readonly type?: string;
  readonly items?: ConfigItems;
  readonly description?: string;
  readonly default?: unknown;
  readonly value?: unknown;
  readonly secret?: boolean;
}
export interface Project {
  readonly name: string;
  readonly config: Readonly<Record<string, ProjectConfigType>>;
}

/** A santhosh-tekuri/jsonschema v5 ValidationError: instance location, message, causes. */
interface SchemaError {
  readonly at: string;
  readonly message: string;
  readonly causes: readonly SchemaError[];
}
const schemaError = (at: string, message: string, causes: readonly SchemaError[] = []): SchemaError => ({
  at,
  message,
  causes,
});
const oneOrAll = (at: string, errors: SchemaError[]) =>
  errors.length > 1 ? schemaError(at, "", errors) : (errors[0] as SchemaError | undefined);
/** `$ref` failures: "doesn't validate with '/$defs/…'" (ValidationError.causes flattens a message-less wrapper). */
const viaRef = (at: string, def: string, e: SchemaError) =>
  schemaError(at, `doesn't validate with '/$defs/${def}'`, e.message ? [e] : e.causes);

function jsonType(v: unknown): string {
  if (v instanceof GoTime) fail("jsonschema: invalid jsonType: time.Time");
  if (v === null) return "null";
  if (typeof v === "number" || v instanceof GoFloat) return "number";
  return Array.isArray(v) ? "array" : isMap(v) ? "object" : typeof v;
}
function typeError(at: string, v: unknown, ...types: string[]): SchemaError | undefined {
  const t = jsonType(v);
  const whole = t === "number" && Number.isInteger(v instanceof GoFloat ? v.value : v);
  if (types.includes(t) || (whole && types.includes("integer"))) return undefined;
  return schemaError(at, `expected ${types.join(" or ")}, but got ${t}`);
}
const SIMPLE_TYPES = ["string", "integer", "boolean", "array", "object"];
function simpleConfigType(at: string, v: unknown): SchemaError | undefined {
  jsonType(v);
  if (SIMPLE_TYPES.includes(v as string)) return undefined;
  return schemaError(at, `value must be one of ${SIMPLE_TYPES.map((t) => `"${t}"`).join(", ")}`);
}
function configItemsType(at: string, v: unknown): SchemaError | undefined {
  const notObject = typeError(at, v, "object");
  if (notObject || !isMap(v)) return notObject;
  const errors: SchemaError[] = [];
  if (!Object.hasOwn(v, "type")) errors.push(schemaError(at, "missing properties: 'type'"));
  else {
    const simple = simpleConfigType(`${at}/type`, v.type);
    const nested = simple && configItemsType(`${at}/type`, v.type);
    if (simple && nested) {
      const causes = [
        viaRef(`${at}/type`, "simpleConfigType", simple),
        viaRef(`${at}/type`, "configItemsType", nested),
      ];
      errors.push(schemaError(`${at}/type`, "oneOf failed", causes));
    }
  }
  const items = Object.hasOwn(v, "items") && configItemsType(`${at}/items`, v.items);
  if (items) errors.push(viaRef(`${at}/items`, "configItemsType", items));
  const isArrayType = !Object.hasOwn(v, "type") || (jsonType(v.type) === "string" && v.type === "array");
  if (isArrayType && !Object.hasOwn(v, "items")) {
    errors.push(schemaError(at, "if-then failed", [schemaError(at, "missing properties: 'items'")]));
  }
  return oneOrAll(at, errors);
}
const DECLARATION_KEYS = ["type", "items", "description", "secret", "default", "value"];
function configTypeDeclaration(at: string, v: unknown): SchemaError | undefined {
  const notObject = typeError(at, v, "object");
  if (notObject || !isMap(v)) return notObject;
  const has = (k: string) => Object.hasOwn(v, k);
  const type = has("type") && simpleConfigType(`${at}/type`, v.type);
  const items = has("items") && configItemsType(`${at}/items`, v.items);
  const extra = Object.keys(v).filter((k) => !DECLARATION_KEYS.includes(k));
  const errors = [
    type && viaRef(`${at}/type`, "simpleConfigType", type),
    items && viaRef(`${at}/items`, "configItemsType", items),
    has("description") && typeError(`${at}/description`, v.description, "string"),
    has("secret") && typeError(`${at}/secret`, v.secret, "boolean"),
    extra.length > 0 && schemaError(at, `additionalProperties ${extra.map((k) => `'${k}'`).join(", ")} not allowed`),
  ];
  return oneOrAll(
    at,
    errors.filter((e): e is SchemaError => !!e),
  );
}
/** project.json `config.additionalProperties.oneOf`: string | integer | boolean | array | configTypeDeclaration. */
function configValueSchema(at: string, v: unknown): SchemaError | undefined {
  const causes: SchemaError[] = [];
  for (const t of ["string", "integer", "boolean", "array"]) {
    const e = typeError(at, v, t);
    if (!e) return undefined;
    causes.push(e);
  }
  const declaration = configTypeDeclaration(at, v);
  if (!declaration) return undefined;
  return schemaError(at, "oneOf failed", [...causes, viaRef(at, "configTypeDeclaration", declaration)]);
}

function levenshtein(a: string, b: string): number {
  let row = Array.from({ length: b.length + 1 }, (_, j) => j);
  for (let i = 1; i <= a.length; i++) {
    const next = [i];
    for (let j = 1; j <= b.length; j++) {
      next[j] = Math.min(row[j]! + 1, next[j - 1]! + 1, row[j - 1]! + (a[i - 1] === b[j - 1] ? 0 : 1));
    }
    row = next;
  }
  return row[b.length]!;
}

/** project.go `ValidateProject`: the name checks, then the JSON schema (only its `config` part is modelled). */
function validateProject(raw: unknown): void {
  if (!isMap(raw)) fail(`expected project to be an object, was '${goTypeName(raw)}'`);
  const project = raw as Json;
  if (!Object.hasOwn(project, "name")) {
    const keys = goSort(Object.keys(project)).map((k) => [k, levenshtein("name", k.toLowerCase())] as const);
    const closest = keys.reduce<readonly [string, number]>((best, kd) => (kd[1] < best[1] ? kd : best), ["", 3]);
    fail(`project is missing a 'name' attribute${closest[0] ? `; found '${closest[0]}' instead` : ""}`);
  }
  if (typeof project.name !== "string" || project.name === "") {
    fail("project is missing a non-empty string 'name' attribute");
  }
  if (!Object.hasOwn(project, "config")) return;
  const config = project.config;
  let error = typeError("/config", config, "object", "string", "null");
  if (!error && isMap(config)) {
    const at = (k: string) => `/config/${k.replaceAll("~", "~0").replaceAll("/", "~1")}`;
    const keys = goSort(Object.keys(config).filter((k) => k !== "secret"));
    const errors = [
      Object.hasOwn(config, "secret") && typeError(at("secret"), config.secret, "boolean"), // `properties`
      ...keys.map((k) => configValueSchema(at(k), config[k])), // then `additionalProperties`
    ];
    error = oneOrAll(
      "/config",
      errors.filter((e): e is SchemaError => !!e),
    );
  }
  if (!error) return;
  const lines: string[] = [];
  const walk = (e: SchemaError) => {
    if (e.at && e.message) lines.push(`#${e.at}: ${e.message}`);
    e.causes.forEach(walk);
  };
  walk(error);
  const count = lines.length === 1 ? "1 error occurred" : `${lines.length} errors occurred`;
  fail(`${count}:\n\t${lines.map((l) => `* ${l}`).join("\n\t")}\n\n`);
}

/** project.go `InferFullTypeName`. */
const fullTypeName = (type: string, items?: ConfigItems): string =>
  items ? `array<${fullTypeName(items.type, items.items)}>` : type;

/** project.go `ValidateConfigValue`. */
function validateConfigValue(type: string, items: ConfigItems | undefined, v: unknown): boolean {
  if (type === "string") return typeof v === "string";
  if (type === "integer") {
    if (typeof v === "number" || v instanceof GoFloat) return Number.isInteger(typeof v === "number" ? v : v.value);
    if (typeof v !== "string" || !/^[+-]?\d+$/.test(v)) return false;
    return BigInt(v) >= -(2n ** 63n) && BigInt(v) < 2n ** 63n;
  }
  if (type === "boolean") return v === "true" || v === "false" || typeof v === "boolean";
  if (type === "object") return isMap(v);
  return Array.isArray(v) && !!items && v.every((x) => validateConfigValue(items.type, items.items, x));
}

const isNamespacedByProject = (project: string, key: string) => !key.includes(":") || key.startsWith(`${project}:`);
const present = (v: unknown) => v !== undefined && v !== null;

/** project.go `Project.Validate` (keys sorted; Go returns the first error of a random map order). */
function validateProjectConfig(name: string, config: Record<string, ProjectConfigType>): void {
  for (const key of goSort(Object.keys(config))) {
    const t = config[key]!;
    if (present(t.default) && present(t.value)) {
      fail(`project config '${key}' cannot have both a 'default' and 'value' attribute`);
    }
    if (isNamespacedByProject(name, key)) {
      if (t.type === "array" && !t.items) {
        fail(
          `The configuration key '${key}' declares an array but does not specify the underlying type via the 'items' attribute`,
        );
      }
      if (t.type !== undefined && present(t.default) && !validateConfigValue(t.type, t.items, t.default)) {
        const expected = fullTypeName(t.type, t.items);
        fail(`The default value specified for configuration key '${key}' is not of the expected type '${expected}'`);
      }
    } else if (t.type !== undefined) {
      fail(`Configuration key '${key}' is not namespaced by the project and should not define a type`);
    } else if (present(t.default)) {
      fail(
        `Configuration key '${key}' is not namespaced by the project and should not define a default value. ` +
          "Did you mean to use the 'value' attribute instead of 'default'?",
      );
    } else if (!present(t.value)) {
      fail(`Configuration key '${key}' is namespaced and must provide an attribute 'value'`);
    }
  }
}

/** project.go `isPrimitiveValue` (Go string, int, bool; a float is not). */
const isPrimitive = (v: unknown) => typeof v === "string" || typeof v === "number" || typeof v === "boolean";

/** The struct decode of a rewritten entry (yaml.v3 into `ProjectConfigType` / `ProjectConfigItemsType`). */
function decodeItems(v: unknown): ConfigItems | undefined {
  if (!isMap(v)) return undefined;
  if (isMap(v.type)) fail("yaml: unmarshal errors: cannot unmarshal !!map into string");
  return { type: v.type as string, items: decodeItems(v.items) };
}

/**
 * loaders.go `LoadProjectBytes`: `ValidateProject` on the raw file, `RewriteConfigPathIntoStackConfigDir`,
 * `RewriteShorthandConfigValues` (`key: v` → `{default: v}` for project keys, `{value: v}` for other namespaces), the
 * struct decode, then `Project.Validate`.
 */
export function loadProject(yamlText: string, path = "Pulumi.yaml"): Project {
  const raw = prefixed(`could not unmarshal '${path}': `, () => parseYaml(yamlText));
  prefixed(`could not validate '${path}': `, () => validateProject(raw));
  const { name, config: rawConfig } = raw as { name: string; config?: unknown };
  const config: Record<string, ProjectConfigType> = {};
  for (const [key, v] of Object.entries(isMap(rawConfig) ? rawConfig : {})) {
    if (isPrimitive(v) || Array.isArray(v)) {
      config[key] = isNamespacedByProject(name, key) ? { default: v } : { value: v };
    } else if (isMap(v)) {
      config[key] = { ...(v as ProjectConfigType), ...(isMap(v.items) && { items: decodeItems(v.items) }) };
    } else {
      const whole = (v as GoFloat).value;
      const g = whole.toExponential().replace(/e([+-])(\d)$/, "e$10$2"); // Go's %g
      const text = Math.abs(whole) < 1e6 ? `!!int \`${whole}\`` : `!!float \`${g}\``;
      fail(`yaml: unmarshal errors: cannot unmarshal ${text} into workspace.ProjectConfigType`);
    }
  }
  prefixed(`could not unmarshal '${path}': `, () => validateProjectConfig(name, config));
  return { name, config };
}

// ---------- Pulumi.<stack>.yaml (loaders.go LoadProjectStackBytes, map.go/value.go UnmarshalYAML) ----------

export interface LoadedStack {
  readonly config: ConfigMap;
  /** `checkForEmptyConfig` warnings (keys whose value is null, which the CLI treats as ""). */
  readonly warnings: readonly string[];
}

/**
 * loaders.go `LoadProjectStackBytes`: keys without ':' get `<project>:` (`stackConfigNamespacedWithProject`), then
 * `config.Map.UnmarshalYAML` parses each key (`ParseKey`) and value (`Value.UnmarshalYAML`: YAML scalars become
 * plain strings, `{secure: …}` a secret, other maps/lists JSON object values, null the empty string).
 */
export function loadStack(yamlText: string, projectName: string): LoadedStack {
  const raw = parseYaml(yamlText);
  if (raw === null) return { config: new Map(), warnings: [] };
  if (!isMap(raw)) fail(`expected project to be an object, was '${goTypeName(raw)}'`);
  const rawConfig = (raw as Json).config ?? {};
  if (!isMap(rawConfig)) {
    const tags: Record<string, string> = { "[]interface {}": "seq", string: "str", int: "int", bool: "bool" };
    const tag = `!!${tags[goTypeName(rawConfig)] ?? "float"}`;
    fail(`invalid YAML file: could not unmarshal map: cannot unmarshal ${tag} into map[string]config.Value`);
  }
  const config = Object.fromEntries(
    Object.entries(rawConfig as Json).map(([k, v]) => [k.includes(":") ? k : `${projectName}:${k}`, v]),
  );
  // checkForEmptyConfig runs on the namespaced keys (stackConfigNamespacedWithProject rewrites the map in place).
  const empty = goSort(Object.keys(config).filter((k) => config[k] === null)).map((k) => `"${k}"`);
  const warnings =
    empty.length === 0
      ? []
      : [
          `No value for configuration key${empty.length > 1 ? "s" : ""} ${empty.length === 2 ? empty.join(" and ") : empty.join(", ")}. ` +
            'This is currently treated as an empty string `""`, but will be treated as `null` in a future version of pulumi.\n' +
            `Set the value${empty.length > 1 ? "s" : ""} to \`""\` to avoid this warning.`,
        ];
  return prefixed("invalid YAML file: could not unmarshal map: ", () => {
    // Every value is decoded before any key is parsed.
    const values = Object.entries(config).map(([k, v]) => [k, v === null ? ZERO : marshalValue(fromWire(v))] as const);
    const keys = values.map(([k, v]) => [parseKey(k), v] as const);
    return { config: new Map(keys.map(([k, v]) => [`${k.namespace}:${k.name}`, v])), warnings };
  });
}

// ---------- Merge and validation (pkg/workspace/config.go) ----------

/** config.go `createConfigValue`: string/int/bool → plain `%v` text; anything else → a JSON object value. */
const createConfigValue = (raw: unknown): Value =>
  isPrimitive(raw)
    ? { value: String(raw), secure: false, object: false }
    : { value: goJson(raw), secure: false, object: true };

const getOrWrap = (stack: ConfigMap, key: Key) =>
  prefixed(`getting stack config value for key '${key.namespace}:${key.name}': `, () => mapGet(stack, key));

/** config.go `validateStackConfigValue`. */
function validateStackConfigValue(stackName: string, key: string, t: ProjectConfigType, v: Value): void {
  if (t.secret && !v.secure)
    fail(`Stack '${stackName}' with configuration key '${key}' must be encrypted as it's secret`);
  const text = plaintext(v);
  const content: unknown = v.object ? JSON.parse(text) : text;
  if (!validateConfigValue(t.type!, t.items, content)) {
    fail(`Stack '${stackName}' with configuration key '${key}' must be of type '${fullTypeName(t.type!, t.items)}'`);
  }
}

/**
 * config.go `mergeConfig(validate=true)`: for each project key (sorted), a key missing on the stack (`Get` with
 * path=true) takes its default/value via `Set` with path=true — or is collected as missing; then the missing-keys
 * error; then `validateStackConfigValues` type-checks every explicitly typed key against the MERGED map.
 */
export function mergeConfig(stackName: string, project: Project, stack: ConfigMap): void {
  const keys = goSort(Object.keys(project.config));
  const missing: string[] = [];
  for (const k of keys) {
    const t = project.config[k]!;
    const key = parseConfigKey(project.name, k);
    if (getOrWrap(stack, key).found) continue;
    if (present(t.default) || present(t.value))
      mapSet(stack, key, createConfigValue(present(t.default) ? t.default : t.value));
    else if (key.namespace === project.name) missing.push(k);
  }
  if (missing.length > 0) {
    const quoted = (missing.length > 1 ? goSort(missing) : missing).map((k) => `'${k}'`);
    const list = quoted.length > 1 ? `${quoted.slice(0, -1).join(", ")} and ${quoted.at(-1)}` : quoted[0];
    fail(`Stack '${stackName}' is missing configuration value${missing.length > 1 ? "s" : ""} ${list}`);
  }
  for (const v of stack.values()) plaintext(v); // validateStackConfigValues: batch decrypt first
  for (const k of keys) {
    const t = project.config[k]!;
    const { value } = getOrWrap(stack, parseConfigKey(project.name, k)); // `ok` is ignored: absent → ""
    if (t.type !== undefined) validateStackConfigValue(stackName, k, t, value);
  }
}

export interface CliConfig {
  /** What the program's `pulumi.runtime.allConfig()` returns: `ns:name` → text (objects as sorted JSON). */
  readonly config: Record<string, string>;
  /** Keys whose value is or contains a secret (`setAllConfig`'s second argument). */
  readonly secretKeys: readonly string[];
  readonly warnings: readonly string[];
}

/**
 * The config `pulumi preview`/`up` hands a Node.js program (see the file comment for the call sequence), or a
 * {@link PulumiCliError} with the text the CLI prints after `error: `.
 */
export function cliConfig(options: {
  readonly projectYaml: string;
  readonly stackYaml?: string;
  readonly stackName: string;
  readonly projectPath?: string;
}): CliConfig {
  const project = loadProject(options.projectYaml, options.projectPath);
  const stack = prefixed("getting stack configuration: ", () => loadStack(options.stackYaml ?? "", project.name));
  prefixed("validating stack config: ", () => mergeConfig(options.stackName, project, stack.config));
  const keys = goSort([...stack.config.keys()]);
  return {
    config: Object.fromEntries(keys.map((k) => [k, plaintext(stack.config.get(k)!)])),
    secretKeys: keys.filter((k) => stack.config.get(k)!.secure),
    warnings: stack.warnings,
  };
}
