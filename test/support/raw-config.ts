/**
 * Raw config the way the Pulumi runtime holds it, from settings named as `pulumi config set --path` names them:
 * `{ store: "redis", "redis.replicas": 1 }` → `{ store: "redis", redis: '{"replicas":1}' }`. Top-level values become
 * text (the CLI hands every scalar over as text), fields of an object key keep their JSON type.
 */
import type { RawConfig } from "../../infra/config";

export type Settings = Readonly<Record<string, string | number | boolean | readonly string[] | null>>;

export function rawConfig(settings: Settings): RawConfig {
  const top: Record<string, string> = {};
  const groups: Record<string, Record<string, unknown>> = {};
  for (const [path, value] of Object.entries(settings)) {
    const dot = path.indexOf(".");
    if (dot === -1) {
      top[path] = Array.isArray(value) ? JSON.stringify(value) : String(value);
    } else {
      const group = path.slice(0, dot);
      groups[group] = { ...groups[group], [path.slice(dot + 1)]: value };
    }
  }
  for (const [group, fields] of Object.entries(groups)) top[group] = JSON.stringify(fields);
  return top;
}
