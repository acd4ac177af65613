/**
 * Ctrl-C and SIGTERM for `npm start`: the first closes every connection (each fires `$disconnect`), waits for
 * the handlers and stops the store, then exits 0; a second one exits at once with 1.
 */
import type { LocalGateway } from "./gateway";
import { oneLine, type PreparedStore } from "./store-setup";

/** Prints `local gateway: message` on stderr and exits. */
export function fail(message: string, exitCode: number): never {
  process.stderr.write(`local gateway: ${message}\n`);
  process.exit(exitCode);
}

export function stopOnSignals(gateway: LocalGateway, store: PreparedStore): void {
  let stopping = false;
  const shutdown = (signal: NodeJS.Signals) => {
    if (stopping) {
      process.stderr.write(`local gateway: ${signal} again, exiting without waiting\n`);
      process.exit(1);
    }
    stopping = true;
    console.log(`${signal}: closing ${gateway.openConnectionIds().length} connection(s)...`);
    gateway
      .stop()
      .then(() => store.stop())
      .then(
        () => {
          console.log("stopped");
          process.exit(0);
        },
        (error: unknown) => fail(`error while stopping: ${oneLine(error)}`, 1),
      );
  };
  process.on("SIGINT", shutdown);
  process.on("SIGTERM", shutdown);
}
