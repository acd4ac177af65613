/**
 * The local stand-in for the deployed token sweeper's schedule (infra/token-sweeper.ts): runs the same sweep
 * (handlers/token-sweeper.ts) every `intervalMs`, one at a time, so idle connections whose token has expired are
 * closed locally as they are on AWS. A sweep that fails is logged and the next one runs as scheduled.
 */
import { join } from "node:path";
import { TOKEN_SWEEPER } from "../contract/routes";

export interface TokenSweepOptions {
  /** Time between sweeps, ms (the CLI's `--token-sweep`, default 60 s as deployed; 0 or absent: no sweeps). */
  readonly intervalMs: number;
  /**
   * One sweep. Default: the deployed function's exported `handler` (handlers/token-sweeper.ts), which reads the
   * environment like the route table's handlers; gateways given their own handlers give their own sweep.
   */
  readonly run?: () => Promise<unknown>;
}

/** The deployed sweeper's handler, loaded the way the route table's handlers are (route-handlers.ts). */
export function deployedSweep(): () => Promise<unknown> {
  const mod = require(join(__dirname, "..", "handlers", TOKEN_SWEEPER.module)) as { handler?: unknown };
  if (typeof mod.handler !== "function") throw new Error(`handlers/${TOKEN_SWEEPER.module} exports no handler`);
  const handler = mod.handler as (event: unknown) => Promise<unknown>;
  return () => handler({ source: "local.token-sweep" });
}

export class TokenSweepTimer {
  private timer: NodeJS.Timeout | undefined;
  private running: Promise<void> | undefined;

  constructor(
    private readonly intervalMs: number,
    private readonly run: () => Promise<unknown>,
    private readonly log: (line: string) => void,
  ) {}

  start(): void {
    if (this.intervalMs <= 0 || this.timer) return;
    this.timer = setInterval(() => {
      // One sweep at a time: a slow one is not stacked on.
      this.running ??= this.run()
        .then(
          () => undefined,
          (error: unknown) => this.log(`token sweep failed: ${error instanceof Error ? error.message : String(error)}`),
        )
        .finally(() => {
          this.running = undefined;
        });
    }, this.intervalMs);
    this.timer.unref();
  }

  /** Stops the schedule and waits for a sweep under way. */
  async stop(): Promise<void> {
    if (this.timer) clearInterval(this.timer);
    this.timer = undefined;
    await this.running;
  }
}
