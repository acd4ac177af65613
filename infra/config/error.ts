/** The one error invalid stack configuration raises. */
import * as pulumi from "@pulumi/pulumi";

/**
 * Thrown for invalid configuration; `problems` holds one message per bad key. A RunError, so Pulumi prints the
 * message alone instead of a stack trace and program source.
 */
export class ConfigError extends pulumi.RunError {
  override readonly name = "ConfigError";
  constructor(readonly problems: readonly string[]) {
    super(problems.join("\n"));
  }
}
