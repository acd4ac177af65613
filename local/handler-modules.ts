/**
 * Handlers named by module rather than passed as functions, so a worker thread can load them (handler-pool.ts):
 * a function cannot cross a thread, a file name can.
 */

/** A handler as a module file and the name of the function it exports. */
export interface HandlerModule {
  readonly file: string;
  readonly exportName: string;
}

/** Route key → the handler module of that route. */
export type HandlerModules = Readonly<Record<string, HandlerModule>>;

/** Loads every module of `modules` in this thread: route key → its exported function. */
export function loadHandlerModules<H>(modules: HandlerModules): Map<string, H> {
  const handlers = new Map<string, H>();
  for (const [routeKey, { file, exportName }] of Object.entries(modules)) {
    const handler = (require(file) as Record<string, unknown>)[exportName];
    if (typeof handler !== "function") {
      throw new Error(`${file} does not export a function ${exportName} (route ${routeKey})`);
    }
    handlers.set(routeKey, handler as H);
  }
  return handlers;
}
