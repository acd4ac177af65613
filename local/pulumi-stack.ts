/**
 * Reads the few settings of a Pulumi stack file (`Pulumi.<stack>.yaml`) that a local run mirrors: the stage
 * name and the store the deployed stack uses.
 */
import { existsSync, readFileSync } from "node:fs";
import { join } from "node:path";
import { load } from "js-yaml";
import { PROJECT_NAME } from "../infra/config/schema";

export interface StackSettings {
  /** The file read, or `undefined` when there is none. */
  readonly file?: string;
  /** `websocket-chat:store`, when set. */
  readonly store?: string;
  /** `websocket-chat:stage`, when set and not empty. */
  readonly stage?: string;
}

/** Thrown when the stack file exists but cannot be read as YAML. */
export class StackFileError extends Error {
  override readonly name = "StackFileError";
}

export function readStackSettings(projectDir: string, stack: string): StackSettings {
  const file = join(projectDir, `Pulumi.${stack}.yaml`);
  if (!existsSync(file)) return {};
  let doc: unknown;
  try {
    doc = load(readFileSync(file, "utf8"));
  } catch (error) {
    throw new StackFileError(`cannot read ${file}: ${(error as Error).message.split("\n")[0]}`);
  }
  const config = (doc as { config?: Record<string, unknown> } | null)?.config ?? {};
  const text = (key: string): string | undefined => {
    const value = config[`${PROJECT_NAME}:${key}`];
    return typeof value === "string" && value.trim() !== "" ? value.trim() : undefined;
  };
  return { file, store: text("store"), stage: text("stage") };
}
