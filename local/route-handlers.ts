/**
 * The handlers the gateway invokes, keyed by route key. By default they are exactly what Lambda runs: for each
 * route of the route table, the `handler` exported by its module under `handlers/`, with every store and the
 * in-process fan-out workers registered (app/local-process.ts; a Lambda bundle registers its stack's store only).
 */
import { join } from "node:path";
import "../app/local-process";
import { ROUTES, type RouteDefinition } from "../contract/routes";
import type { HandlerResult, WebSocketEvent } from "../runtime/event";
import { type HandlerModules, loadHandlerModules } from "./handler-modules";

/** One Lambda-style handler. Its result matters only for `$connect` (status code and headers). */
export type RouteHandler = (
  event: WebSocketEvent,
) => Promise<HandlerResult | undefined | undefined> | HandlerResult | undefined | undefined;

/** Route key → handler. The keys are the API's routes: a message can select only these. */
export type RouteHandlers = Readonly<Record<string, RouteHandler>>;

const HANDLERS_DIR = join(__dirname, "..", "handlers");

/**
 * Loads `handlers/<module>.ts`'s exported `handler` for every route. Loading a module runs no handler code
 * beyond its imports; handlers read the environment on their first invocation (app/container.ts),
 * so the environment must be set before the first event, and it is read once per process.
 */
export function loadRouteTableHandlers(routes: readonly RouteDefinition[] = ROUTES): RouteHandlers {
  return Object.fromEntries(loadHandlerModules<RouteHandler>(routeTableModules(routes)));
}

/**
 * What a worker thread loads before the route table's modules: every store and the in-process fan-out stand-in
 * register themselves there, as they do in this thread through the import above.
 */
export const ROUTE_TABLE_PRELOAD: readonly string[] = [join(__dirname, "..", "app", "local-process")];

/** The same handlers as modules a worker thread loads (handler-pool.ts): `handlers/<module>.ts`, export `handler`. */
export function routeTableModules(routes: readonly RouteDefinition[] = ROUTES): HandlerModules {
  const modules: Record<string, { file: string; exportName: string }> = {};
  for (const route of routes)
    modules[route.routeKey] = { file: join(HANDLERS_DIR, route.module), exportName: "handler" };
  return modules;
}
