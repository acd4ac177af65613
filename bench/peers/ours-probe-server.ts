/**
 * The local gateway serving the probe handlers (probe-handler.ts) instead of the route table's: the child process
 * of the `ours` target. Everything else is `npm start`'s default: 127.0.0.1, SigV4 on `@connections`, origin
 * checks, the handlers in one worker thread (`--workers`), the event lines on stdout (the harness discards them,
 * as it does the peers' output).
 *
 *   node --require tsx/cjs bench/peers/ours-probe-server.ts <port> <folder with probe-handler.js> [workers]
 */
import { join } from "node:path";
import { DEFAULT_HANDLER_WORKERS } from "../../local/cli-args";
import { startLocalGateway } from "../../local/gateway";
import { PROBE_FILE } from "./probe-handler";

async function main(): Promise<void> {
  const [port, dir, workers] = process.argv.slice(2);
  if (!port || !dir) throw new Error("usage: ours-probe-server.ts <port> <probe folder> [workers]");
  const file = join(dir, PROBE_FILE);
  const probe = (exportName: string) => ({ file, exportName });
  const gateway = await startLocalGateway({
    port: Number(port),
    handlerModules: {
      $connect: probe("connect"),
      $disconnect: probe("disconnect"),
      $default: probe("message"),
      echo: probe("message"),
      broadcast: probe("message"),
    },
    handlerWorkers: workers === undefined ? DEFAULT_HANDLER_WORKERS : Number(workers),
  });
  const stop = () => void gateway.stop().then(() => process.exit(0));
  process.once("SIGTERM", stop);
  process.once("SIGINT", stop);
}

main().catch((error: unknown) => {
  console.error(error);
  process.exit(1);
});
