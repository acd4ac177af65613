/** Reads this project's keys from the Pulumi runtime (what the CLI hands a program) and parses them. */
import * as pulumi from "@pulumi/pulumi";
import { parseConfig } from "./parse";
import { PROJECT_NAME } from "./schema";
import type { ChatConfig } from "./types";

/** The stack's validated configuration; throws a ConfigError listing every bad key. */
export function loadConfig(): ChatConfig {
  const prefix = `${PROJECT_NAME}:`;
  const all = pulumi.runtime.allConfig();
  const raw: Record<string, string> = {};
  for (const [key, value] of Object.entries(all)) {
    if (key.startsWith(prefix)) raw[key.slice(prefix.length)] = value;
  }
  // `isConfigSecret` is exported by the runtime but not declared in its types; without it the check is skipped.
  const runtime = pulumi.runtime as unknown as { isConfigSecret?: (key: string) => boolean };
  const isSecret = runtime.isConfigSecret
    ? (key: string) => runtime.isConfigSecret!(`${PROJECT_NAME}:${key}`)
    : undefined;
  return parseConfig(raw, pulumi.getStack(), {
    region: all["aws:region"] || undefined,
    ...(isSecret ? { isSecret } : {}),
  });
}
