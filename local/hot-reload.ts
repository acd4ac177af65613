/**
 * Hot reload for `npm start`: editing a handler, a store or a shared module loads the new code for the next
 * events, the way deploying new Lambda code does, and like that deployment it closes no connection (they live in
 * the gateway, which is not reloaded). Only what changed and what imports it is evaluated again
 * (module-graph.ts); everything else, the store's client included, stays as it is unless it imports a changed
 * file. One console line says what reloaded. A file that does not compile, or a module that throws while loading,
 * keeps the previous code running and prints where the error is.
 *
 * Watching: `fs.watch` with `recursive` (Linux needs Node 20 or later) on the reloadable floors; a burst of events
 * (an editor's save is several) is handled once, 100 ms after the last one.
 */
import { existsSync, type FSWatcher, readFileSync, watch } from "node:fs";
import { join, relative } from "node:path";
import { transformSync } from "esbuild";
import {
  type CacheSnapshot,
  dependentsOf,
  dropModules,
  isLoaded,
  loadedModules,
  type ReloadableScope,
  restoreModules,
} from "./module-graph";

/** Floors whose modules the route table's handlers are built from; local/ (the gateway) is not among them. */
export const RELOADABLE_FLOORS = ["contract", "stores", "runtime", "broadcast", "chat", "app", "handlers"];

const DEBOUNCE_MS = 100;

export interface HotReloadHost {
  readonly scope: ReloadableScope;
  /**
   * Loads the handlers again (the modules in `reloading` are out of the cache, so `require` evaluates them
   * afresh) and starts using them. `previous` holds the modules as they were. Throws what loading threw.
   */
  reload(reloading: ReadonlySet<string>, previous: CacheSnapshot): Promise<void>;
  /**
   * Modules that must be reloaded with `reloading` although they do not import it (a dependency through a
   * registry, say); their importers are reloaded too.
   */
  alsoReload?(reloading: ReadonlySet<string>): readonly string[];
  /** One console line. */
  log(line: string): void;
}

export type ReloadOutcome =
  | { readonly kind: "reloaded"; readonly changed: readonly string[]; readonly modules: number; readonly ms: number }
  | { readonly kind: "failed"; readonly where: string; readonly message: string }
  | { readonly kind: "ignored" };

/** The project directory holding the floors. */
export function reloadableScope(root: string): ReloadableScope {
  return { root, dirs: RELOADABLE_FLOORS.map((floor) => join(root, floor)) };
}

export class HotReload {
  private readonly watchers: FSWatcher[] = [];
  private pending = new Set<string>();
  private timer: NodeJS.Timeout | undefined;
  /** Reloads run one at a time; changes arriving meanwhile wait for the next. */
  private running: Promise<unknown> = Promise.resolve();
  private closed = false;

  constructor(private readonly host: HotReloadHost) {}

  /** Starts watching the floors. */
  watch(): this {
    for (const dir of this.host.scope.dirs) {
      if (!existsSync(dir)) continue;
      const watcher = watch(dir, { recursive: true }, (_event, name) => {
        if (name && /\.[cm]?ts$/.test(name)) this.changed(join(dir, name.toString()));
      });
      watcher.on("error", () => watcher.close());
      this.watchers.push(watcher);
    }
    return this;
  }

  close(): void {
    this.closed = true;
    clearTimeout(this.timer);
    for (const watcher of this.watchers.splice(0)) watcher.close();
  }

  /** Resolves once the reloads started so far are done (tests, and the gateway's stop). */
  settled(): Promise<void> {
    return this.running.then(() => undefined);
  }

  private changed(file: string): void {
    if (this.closed) return;
    this.pending.add(file);
    clearTimeout(this.timer);
    this.timer = setTimeout(() => {
      const files = [...this.pending];
      this.pending = new Set();
      this.running = this.running.then(() => this.reload(files));
    }, DEBOUNCE_MS);
  }

  /** Reloads what `files` (absolute paths) affect; never throws. */
  async reload(files: readonly string[]): Promise<ReloadOutcome> {
    const { scope } = this.host;
    const changed = [...new Set(files)].filter((file) => isLoaded(scope, file));
    if (changed.length === 0 || this.closed) return { kind: "ignored" };
    const started = Date.now();
    const names = changed.map((file) => relative(scope.root, file)).join(", ");
    for (const file of changed) {
      const problem = compileProblem(scope.root, file);
      if (problem) return this.failed(names, problem);
    }
    let reloading = dependentsOf(scope, changed);
    const hidden = this.host.alsoReload?.(reloading) ?? [];
    if (hidden.length > 0) reloading = dependentsOf(scope, [...reloading, ...hidden]);
    const before = loadedModules(scope);
    const previous = dropModules(reloading);
    try {
      await this.host.reload(reloading, previous);
    } catch (error) {
      restoreModules(scope, before, previous);
      const thrown = wrappedError(error);
      return this.failed(names, { where: whereThrown(scope.root, thrown), message: firstLine(thrown) });
    }
    const outcome: ReloadOutcome = {
      kind: "reloaded",
      changed: changed.map((file) => relative(scope.root, file)),
      modules: reloading.size - changed.length,
      ms: Date.now() - started,
    };
    this.host.log(`reloaded ${names} (+${outcome.modules} modules) in ${outcome.ms} ms`);
    return outcome;
  }

  private failed(names: string, problem: { where: string; message: string }): ReloadOutcome {
    this.host.log(`reload of ${names} failed: ${problem.where}: ${problem.message} (the previous code keeps running)`);
    return { kind: "failed", ...problem };
  }
}

/** A syntax error in `file` as `path:line:column` and esbuild's message, or nothing when it compiles. */
function compileProblem(root: string, file: string): { where: string; message: string } | undefined {
  if (!existsSync(file)) return { where: relative(root, file), message: "the file was deleted" };
  try {
    transformSync(readFileSync(file, "utf8"), { loader: "ts", sourcefile: file, logLevel: "silent" });
    return undefined;
  } catch (error) {
    const first = (error as { errors?: { text: string; location?: { line: number; column: number } }[] }).errors?.[0];
    if (!first) return { where: relative(root, file), message: firstLine(error) };
    const at = first.location ? `:${first.location.line}:${first.location.column + 1}` : "";
    return { where: `${relative(root, file)}${at}`, message: first.text };
  }
}

/**
 * What a module threw: a worker thread's load failure (handler-pool.ts) wraps it as its `cause`, and the developer
 * wants the module's own error and place, as when the code loads in the gateway's thread.
 */
function wrappedError(error: unknown): unknown {
  return error instanceof Error && error.name === "HandlerLoadError" && error.cause instanceof Error
    ? error.cause
    : error;
}

/** The first stack frame in the project (`handlers/x.ts:12:5`), else `-`. */
function whereThrown(root: string, error: unknown): string {
  const stack = error instanceof Error ? (error.stack ?? "") : "";
  for (const line of stack.split("\n").slice(1)) {
    const m = /\(?((?:\/|[A-Za-z]:\\)[^():]+):(\d+):(\d+)\)?$/.exec(line.trim());
    if (m && m[1]!.startsWith(root) && !m[1]!.includes("node_modules"))
      return `${relative(root, m[1]!)}:${m[2]}:${m[3]}`;
  }
  return "while loading";
}

function firstLine(error: unknown): string {
  return (error instanceof Error ? `${error.name}: ${error.message}` : String(error)).split("\n")[0]!;
}
