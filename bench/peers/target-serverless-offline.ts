/**
 * serverless-offline (with serverless 3) serving the probe handlers: `serverless.yml` with one function per route,
 * all in `probe-handler.js`. Its `@connections` API is on the WebSocket port, without a stage.
 */
import { writeFileSync } from "node:fs";
import { join } from "node:path";
import { PROBE_ROUTES, type ProbeConfig, writeProbe } from "./probe-handler";
import { DUMMY_AWS, type TargetSetup } from "./target";

export function serverlessOffline(dir: string, port: number, probe: Omit<ProbeConfig, "callback">): TargetSetup {
  const callback = `http://127.0.0.1:${port}`;
  writeProbe(dir, { ...probe, callback });
  const routes: [string, string][] = [
    ["$connect", "connect"],
    ["$disconnect", "disconnect"],
    ["$default", "message"],
    ...PROBE_ROUTES.map((route): [string, string] => [route, "message"]),
  ];
  const functions = routes
    .map(
      ([route, role], i) => `  r${i}:\n    handler: probe-handler.${role}\n    events:\n      - websocket: ${route}\n`,
    )
    .join("");
  // The integration timeout as API Gateway's (serverless's default is 6 s).
  const provider = "provider:\n  name: aws\n  runtime: nodejs20.x\n  region: us-east-1\n  timeout: 29\n";
  const yml = `service: peerbench\nframeworkVersion: '3'\n${provider}plugins:\n  - serverless-offline\nfunctions:\n${functions}`;
  writeFileSync(join(dir, "serverless.yml"), yml);
  const args = [join(dir, "node_modules", ".bin", "serverless"), "offline", "--host", "127.0.0.1"];
  args.push("--websocketPort", String(port), "--httpPort", String(port + 1), "--lambdaPort", String(port + 2));
  return {
    url: `ws://127.0.0.1:${port}`,
    callback,
    command: process.execPath,
    args,
    cwd: dir,
    env: { ...process.env, ...DUMMY_AWS, SLS_TELEMETRY_DISABLED: "1", SLS_NOTIFICATIONS_MODE: "off" },
  };
}
