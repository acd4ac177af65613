/** The functions' logger: its level follows Lambda's configured log level (stack config `logLevel`) first. */
import { expect } from "chai";
import { Logger, levelFromEnv } from "../runtime/logger";

describe("logger: level", () => {
  it("follows Lambda's AWS_LAMBDA_LOG_LEVEL before LOG_LEVEL", () => {
    expect(levelFromEnv({ AWS_LAMBDA_LOG_LEVEL: "WARN", LOG_LEVEL: "debug" })).to.equal("warn");
    expect(levelFromEnv({ AWS_LAMBDA_LOG_LEVEL: "DEBUG", LOG_LEVEL: "error" })).to.equal("debug");
    expect(levelFromEnv({ AWS_LAMBDA_LOG_LEVEL: "ERROR" })).to.equal("error");
    expect(levelFromEnv({ AWS_LAMBDA_LOG_LEVEL: "INFO" })).to.equal("info");
  });

  it("maps Lambda's TRACE and FATAL onto the nearest level it has", () => {
    expect(levelFromEnv({ AWS_LAMBDA_LOG_LEVEL: "TRACE" })).to.equal("debug");
    expect(levelFromEnv({ AWS_LAMBDA_LOG_LEVEL: "FATAL" })).to.equal("error");
  });

  it("falls back to LOG_LEVEL (local runs), then info, ignoring values it does not know", () => {
    expect(levelFromEnv({ LOG_LEVEL: "warn" })).to.equal("warn");
    expect(levelFromEnv({ LOG_LEVEL: "DEBUG" })).to.equal("debug");
    expect(levelFromEnv({ AWS_LAMBDA_LOG_LEVEL: "LOUD", LOG_LEVEL: "error" })).to.equal("error");
    expect(levelFromEnv({ LOG_LEVEL: "verbose" })).to.equal("info");
    expect(levelFromEnv({})).to.equal("info");
  });

  it("is what a logger built without a level uses, and it drops lines below it", () => {
    const saved = { lambda: process.env.AWS_LAMBDA_LOG_LEVEL, local: process.env.LOG_LEVEL };
    const lines: Record<string, unknown>[] = [];
    try {
      process.env.AWS_LAMBDA_LOG_LEVEL = "WARN";
      process.env.LOG_LEVEL = "debug";
      const log = new Logger({ route: "$connect" }, undefined, (line) => lines.push(JSON.parse(line)));
      log.debug("d");
      log.info("i");
      log.child({ connectionId: "c1" }).warn("w");
      log.error("e");
    } finally {
      for (const [key, value] of [
        ["AWS_LAMBDA_LOG_LEVEL", saved.lambda],
        ["LOG_LEVEL", saved.local],
      ] as const) {
        if (value === undefined) delete process.env[key];
        else process.env[key] = value;
      }
    }
    expect(lines.map((l) => l.message)).to.deep.equal(["w", "e"]);
    expect(lines[0]).to.include({ level: "warn", route: "$connect", connectionId: "c1" });
  });
});
