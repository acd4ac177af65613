/**
 * Route selection as API Gateway does it for WebSocket messages (docs/local-gateway.md): evaluate
 * the API's route selection expression (`$request.body.action`) against the frame's JSON, stringify the result,
 * pick the route whose key matches exactly (case-sensitive), else `$default`, else nothing (the caller sends the
 * `Forbidden` frame).
 */

export const CONNECT_ROUTE = "$connect";
export const DISCONNECT_ROUTE = "$disconnect";
export const DEFAULT_ROUTE = "$default";

/** One `$request.body.<path>` reference inside an expression. */
const BODY_REFERENCE = /\$\{request\.body\.([^}]+)\}|\$request\.body\.([A-Za-z0-9_$.[\]-]+)/g;

/**
 * Evaluates a selection expression against a message body. Supports the documented forms: a bare
 * `$request.body.a.b`, wrapped `${request.body.a}`, several references mixed with static text
 * (`${request.body.service}/${request.body.action}`), `\$` escapes and purely static text. A reference whose
 * path is missing evaluates to `""`. Returns `undefined` when the body is not a JSON object, i.e. when the
 * expression "cannot be evaluated against the message" (such messages go to `$default`).
 */
export function evaluateSelectionExpression(expression: string, body: string): string | undefined {
  const references = [...expression.matchAll(BODY_REFERENCE)];
  if (references.length === 0) return unescapeDollar(expression); // static: no need for a JSON body
  let json: unknown;
  try {
    json = JSON.parse(body);
  } catch {
    return undefined;
  }
  if (typeof json !== "object" || json === null || Array.isArray(json)) return undefined;
  let out = "";
  let last = 0;
  for (const match of references) {
    out += unescapeDollar(expression.slice(last, match.index));
    try {
      out += stringify(lookup(json, (match[1] ?? match[2])!));
    } catch {
      // A value nested too deeply to stringify (e.g. a 10,000-deep array as `action`) cannot be evaluated: such
      // a message goes to `$default`, like any the expression cannot be evaluated against.
      return undefined;
    }
    last = match.index! + match[0].length;
  }
  return out + unescapeDollar(expression.slice(last));
}

/**
 * The route key a message selects, or `undefined` when nothing matches and there is no `$default` route.
 * `routeKeys` is every route the API has; `$connect` and `$disconnect` are never selected by a message.
 */
export function selectRoute(expression: string, body: string, routeKeys: Iterable<string>): string | undefined {
  const keys = new Set(routeKeys);
  const value = evaluateSelectionExpression(expression, body);
  if (value !== undefined && value !== CONNECT_ROUTE && value !== DISCONNECT_ROUTE && keys.has(value)) return value;
  return keys.has(DEFAULT_ROUTE) ? DEFAULT_ROUTE : undefined;
}

function unescapeDollar(text: string): string {
  return text.replace(/\\\$/g, "$");
}

/** Follows a dotted path (`a.b`, `a[0]`, `a.0`) into parsed JSON; `undefined` when any step is missing. */
function lookup(root: unknown, path: string): unknown {
  const steps = path
    .replace(/\[(\d+)\]/g, ".$1")
    .split(".")
    .filter((s) => s !== "");
  let node: unknown = root;
  for (const step of steps) {
    if (typeof node !== "object" || node === null) return undefined;
    if (!Object.hasOwn(node, step)) return undefined;
    node = (node as Record<string, unknown>)[step];
  }
  return node;
}

/**
 * API Gateway "stringifies" the JSONPath result: a string as is, a number or boolean as its text, an array as
 * `[item1, item2]` (the documented example). A missing value is `""`. Two cases are not documented and are
 * treated as no value: `null` gives `""`; an object gives its JSON text (which matches no valid route key).
 */
function stringify(value: unknown): string {
  if (value === undefined || value === null) return "";
  if (typeof value === "string") return value;
  if (typeof value === "number" || typeof value === "boolean") return String(value);
  if (Array.isArray(value)) return `[${value.map(stringify).join(", ")}]`;
  return JSON.stringify(value);
}
