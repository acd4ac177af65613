/**
 * `@architect/sandbox` serving the probe handlers: `app.arc` with the `echo` and `broadcast` routes, one folder
 * per route under `src/ws/` whose `index.js` re-exports the probe. Its `@connections` API is on its internal port
 * (`ARC_INTERNAL_PORT`, here PORT + 1) under `/_arc/ws`.
 */
import { mkdirSync, writeFileSync } from "node:fs";
import { join } from "node:path";
import { PROBE_ROUTES, type ProbeConfig, writeProbe } from "./probe-handler";
import { DUMMY_AWS, type TargetSetup } from "./target";

export function architect(dir: string, port: number, probe: Omit<ProbeConfig, "callback">): TargetSetup {
  const callback = `http://127.0.0.1:${port + 1}/_arc/ws`;
  const file = writeProbe(dir, { ...probe, callback });
  // The integration timeout as API Gateway's (the sandbox's default is 5 s).
  writeFileSync(join(dir, "app.arc"), `@app\npeerbench\n@ws\n${PROBE_ROUTES.join("\n")}\n@aws\ntimeout 29\n`);
  const roles: Record<string, string> = { connect: "connect", disconnect: "disconnect", default: "message" };
  for (const route of PROBE_ROUTES) roles[route] = "message";
  for (const [route, role] of Object.entries(roles)) {
    mkdirSync(join(dir, "src", "ws", route), { recursive: true });
    const source = `exports.handler = require(${JSON.stringify(file)}).${role};\n`;
    writeFileSync(join(dir, "src", "ws", route, "index.js"), source);
  }
  return {
    url: `ws://127.0.0.1:${port}`,
    callback,
    command: process.execPath,
    args: [join(dir, "node_modules", ".bin", "sandbox"), "--port", String(port), "--host", "127.0.0.1"],
    cwd: dir,
    env: { ...process.env, ...DUMMY_AWS, ARC_QUIET: "1", ARC_INTERNAL_PORT: String(port + 1) },
  };
}
