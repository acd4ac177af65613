/**
 * The gateway under test of `npm run bench:faults`, in a process of its own (forked by bench/faults.ts): the local
 * gateway with the route table's exported Lambda handlers, exactly as `npm start` runs them (local/handler-env.ts,
 * local/route-handlers.ts), except that CALLBACK_URL is the bench's `@connections` fault proxy, which forwards to
 * this gateway. The handlers' JSON log lines go to stdout, which the bench reads.
 *
 * IPC: `{type: "start", env, callbackUrl, stage}` → `{type: "listening", port, url}`; `{type: "tracked"}` → the
 * gateway's open connections and running invocations; `{type: "stop"}` stops the gateway (every client closed,
 * `$disconnect` run) and exits. The process exits when the bench goes away.
 */
import { monitorEventLoopDelay } from "node:perf_hooks";
import { startLocalGateway } from "../local/gateway";
import { installHandlerEnv, lambdaEnv, sdkDefaults } from "../local/handler-env";
import { loadRouteTableHandlers } from "../local/route-handlers";

export interface GatewayStart {
  readonly type: "start";
  /** The handlers' environment: the store's part, limits, fan-out settings. */
  readonly env: Readonly<Record<string, string>>;
  /** Where the handlers post (the fault proxy in front of this gateway). */
  readonly callbackUrl: string;
  readonly stage: string;
}

const STOP_TIMEOUT_MS = 10_000;

if (require.main === module) {
  let gateway: Awaited<ReturnType<typeof startLocalGateway>> | undefined;
  const send = (message: unknown) => process.send?.(message);
  // How long this process's event loop stalled: a stalled gateway delays every post and frame.
  const lag = monitorEventLoopDelay({ resolution: 20 });
  lag.enable();
  process.on("message", (message: GatewayStart | { type: "stop" } | { type: "tracked" }) => {
    if (message.type === "tracked") {
      const maxLagMs = lag.max / 1e6;
      lag.reset();
      send({ type: "tracked", maxLagMs, ...(gateway?.tracked ?? { connections: 0, invocations: 0, handshakes: 0 }) });
      return;
    }
    if (message.type === "start") {
      // As `npm start`: the SDK's region and dummy credentials before anything signs.
      installHandlerEnv(sdkDefaults(process.env));
      startLocalGateway({
        port: 0,
        stage: message.stage,
        log: () => {},
        // The handlers' posts reach it through the fault proxy, which rewrites `Host` (fault-proxies.ts): their
        // signatures, made for the proxy, cannot verify here. Everything else is as `npm start` runs it.
        signingSecrets: false,
        handlers: () => {
          installHandlerEnv(lambdaEnv(message.env, message.callbackUrl));
          return loadRouteTableHandlers();
        },
      }).then(
        (started) => {
          gateway = started;
          send({ type: "listening", port: started.port, url: started.url });
        },
        (error: unknown) => {
          console.error(error);
          process.exit(1);
        },
      );
      return;
    }
    if (message.type === "stop") {
      setTimeout(() => process.exit(0), STOP_TIMEOUT_MS).unref();
      void (gateway?.stop() ?? Promise.resolve()).finally(() => process.exit(0));
    }
  });
  process.on("disconnect", () => process.exit(0));
}
