/**
 * The route table: the one place that says which API Gateway route runs which handler and what that handler
 * may touch. Infra builds routes, Lambdas and IAM from it; the local gateway loads the same handler modules
 * from it; tests iterate it.
 */

/** What a handler may do to the connection store. Infra turns each into the narrowest IAM actions. */
export type StoreAccess = "read" | "write" | "delete";

export interface RouteDefinition {
  /** API Gateway route key (`$connect`, `$disconnect`, `$default` or a custom action). */
  readonly routeKey: string;
  /** Short, resource-name-safe name (used in Lambda, role and log group names). */
  readonly name: string;
  /** Module under `functions/` (no extension) that exports `handler`. */
  readonly module: string;
  /** Store operations the handler needs; nothing else is granted. */
  readonly storeAccess: readonly StoreAccess[];
  /** Whether the handler posts to `@connections` (grants `execute-api:ManageConnections` on POST only). */
  readonly manageConnections: boolean;
}

/** API Gateway evaluates this against each inbound JSON frame to pick a route. */
export const ROUTE_SELECTION_EXPRESSION = "$request.body.action";

export const ROUTES: readonly RouteDefinition[] = [
  { routeKey: "$connect", name: "connect", module: "connect", storeAccess: ["write"], manageConnections: false },
  { routeKey: "$disconnect", name: "disconnect", module: "disconnect", storeAccess: ["delete"], manageConnections: false },
  {
    routeKey: "sendmessage",
    name: "sendmessage",
    module: "send-message",
    storeAccess: ["read", "delete"],
    manageConnections: true,
  },
  { routeKey: "$default", name: "default", module: "default", storeAccess: [], manageConnections: true },
];

/** Actions a client may name in `{"action": …}`: every route that is not one of API Gateway's `$` routes. */
export const CLIENT_ACTIONS: readonly string[] = ROUTES.filter((r) => !r.routeKey.startsWith("$")).map(
  (r) => r.routeKey,
);

export function findRoute(routeKey: string): RouteDefinition | undefined {
  return ROUTES.find((r) => r.routeKey === routeKey);
}
