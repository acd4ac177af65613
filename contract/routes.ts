/**
 * The route table: the one place that says which API Gateway route runs which handler and what that handler
 * may touch. Infra builds routes, Lambdas and IAM from it; the local gateway loads the same handler modules
 * from it; tests iterate it.
 */

/**
 * What a handler may do to the connection store. Infra turns each into the narrowest IAM actions. `meter` is the
 * per-connection message counter of the rate limit (`ConnectionStore.countMessage`). `read` lists every connection
 * (and reads one); `lookup` only reads one connection (`get`, `roomsOf`); `membership` joins and leaves rooms;
 * `listRoom` lists one room's members (on DynamoDB: Query on the room index only); `delete` removes connections
 * with their memberships; `userSlots` claims and frees a user's connection slots (the per-user connection cap).
 */
export type StoreAccess =
  | "read"
  | "lookup"
  | "write"
  | "delete"
  | "meter"
  | "membership"
  | "listRoom"
  /** Reads a room's history and latest seq (`historyAfter`, `historyBefore`, `latestSeq`). */
  | "history"
  /** Appends to a room's history (`appendHistory`). */
  | "append"
  /** Claims and settles idempotent send references (`claimSend`, `settleSend`). */
  | "sendRef"
  /** The heartbeat (`touch`). */
  | "touch"
  /** Claims and frees a user's connection slots (the per-user connection cap). */
  | "userSlots";

export interface RouteDefinition {
  /** API Gateway route key (`$connect`, `$disconnect`, `$default` or a custom action). */
  readonly routeKey: string;
  /** Short, resource-name-safe name (used in Lambda, role and log group names). */
  readonly name: string;
  /** Module under `handlers/` (no extension) that exports `handler`. */
  readonly module: string;
  /** Store operations the handler needs; nothing else is granted. */
  readonly storeAccess: readonly StoreAccess[];
  /** Whether the handler posts to `@connections` (grants `execute-api:ManageConnections` on POST only). */
  readonly manageConnections: boolean;
  /**
   * Whether the handler may close connections through `DELETE @connections` (the rate limit disconnects
   * persistent abusers); grants `execute-api:ManageConnections` on DELETE as well.
   */
  readonly disconnectConnections?: boolean;
  /**
   * Whether the handler hands shards of large broadcasts to the fan-out worker ({@link FANOUT_WORKER}); grants
   * `lambda:InvokeFunction` on that one function and sets FANOUT_WORKER_FUNCTION.
   */
  readonly invokesFanOutWorker?: boolean;
}

/** API Gateway evaluates this against each inbound JSON frame to pick a route. */
export const ROUTE_SELECTION_EXPRESSION = "$request.body.action";

export const ROUTES: readonly RouteDefinition[] = [
  // userSlots: the per-user connection cap, claimed at $connect and freed at $disconnect.
  {
    routeKey: "$connect",
    name: "connect",
    module: "connect",
    storeAccess: ["write", "userSlots"],
    manageConnections: false,
  },
  // Tells the rooms the connection was in that it left.
  {
    routeKey: "$disconnect",
    name: "disconnect",
    module: "disconnect",
    storeAccess: ["delete", "listRoom", "userSlots"],
    manageConnections: true,
    invokesFanOutWorker: true,
  },
  {
    routeKey: "sendmessage",
    name: "sendmessage",
    module: "send-message",
    // write: a sender the store lost is registered again from its message (chat/sender-store.ts). append: a room
    // message goes into the room's history; sendRef: a `ref` is claimed and settled (chat/send-claim.ts).
    storeAccess: ["read", "delete", "meter", "listRoom", "write", "append", "sendRef"],
    manageConnections: true,
    disconnectConnections: true,
    invokesFanOutWorker: true,
  },
  // Rooms (chat/rooms.ts). Every client action is rate-limited (meter) and may close abusers.
  {
    routeKey: "join",
    name: "join",
    module: "join",
    // history: `after` resumes with a page of what the client missed.
    storeAccess: ["meter", "membership", "lookup", "listRoom", "delete", "write", "history"],
    manageConnections: true,
    disconnectConnections: true,
    invokesFanOutWorker: true,
  },
  {
    routeKey: "leave",
    name: "leave",
    module: "leave",
    storeAccess: ["meter", "membership", "lookup", "listRoom", "delete", "write"],
    manageConnections: true,
    disconnectConnections: true,
    invokesFanOutWorker: true,
  },
  {
    routeKey: "whoami",
    name: "whoami",
    module: "whoami",
    storeAccess: ["meter", "lookup", "write"],
    manageConnections: true,
    disconnectConnections: true,
  },
  // Removes a gone recipient and tells its rooms (delete, listRoom).
  {
    routeKey: "sendto",
    name: "sendto",
    module: "send-to",
    storeAccess: ["meter", "lookup", "delete", "listRoom", "write", "sendRef"],
    manageConnections: true,
    disconnectConnections: true,
    // The gone recipient's `left` goes to its rooms, which may be large: same fan-out as every presence event.
    invokesFanOutWorker: true,
  },
  // A page of a room's history, for its members (lookup: the asker's rooms).
  {
    routeKey: "history",
    name: "history",
    module: "history",
    storeAccess: ["meter", "lookup", "history", "write"],
    manageConnections: true,
    disconnectConnections: true,
  },
  // The heartbeat: touch, and write to re-add a record the store lost.
  {
    routeKey: "ping",
    name: "ping",
    module: "ping",
    storeAccess: ["meter", "lookup", "touch", "write"],
    manageConnections: true,
    disconnectConnections: true,
  },
  // Rate-limited like sendmessage: a flood of garbage costs invocations and error-frame posts too.
  {
    routeKey: "$default",
    name: "default",
    module: "default",
    storeAccess: ["meter"],
    manageConnections: true,
    disconnectConnections: true,
  },
];

/** Actions a client may name in `{"action": …}`: every route that is not one of API Gateway's `$` routes. */
export const CLIENT_ACTIONS: readonly string[] = ROUTES.filter((r) => !r.routeKey.startsWith("$")).map(
  (r) => r.routeKey,
);

export function findRoute(routeKey: string): RouteDefinition | undefined {
  return ROUTES.find((r) => r.routeKey === routeKey);
}

/**
 * The Lambda REQUEST authorizer that guards `$connect` when the stack's `auth` is `jwt` (API Gateway allows
 * authorizers on `$connect` only, and for WebSocket APIs only Lambda REQUEST or IAM ones). Defined once, next to
 * the routes, so infra (which deploys it) and the local gateway (which runs it) agree.
 */
export interface AuthorizerDefinition {
  /** Short, resource-name-safe name (Lambda, role and log group names). */
  readonly name: string;
  /** Module under `handlers/` (no extension) that exports `handler`. */
  readonly module: string;
  /** The only route it guards. */
  readonly routeKey: "$connect";
}

export const AUTHORIZER: AuthorizerDefinition = { name: "authorizer", module: "authorizer", routeKey: "$connect" };

/**
 * The `outcome` of the one JSON line the authorizer logs per invocation (handlers/authorizer.ts). Stable: infra's
 * metric filter counts the `unauthorized` lines (infra/authorizer.ts), because every rejection is also a Lambda
 * function error (it throws `Error("Unauthorized")`) and the authorizer's alarm must not page on bad tokens.
 */
export const AUTHORIZER_OUTCOMES = {
  /** A valid token: the connect goes on. */
  allow: "allow",
  /** No token, or one that fails a check: 401. The client's doing. */
  unauthorized: "unauthorized",
  /** Anything else (the key set unreachable, a malformed event, a bug): 500. Ours. */
  fault: "fault",
} as const;

/**
 * Where API Gateway looks for the token before it calls the authorizer. API Gateway answers 401 without calling
 * the authorizer when ANY configured identity source is missing or empty, so exactly one is configured: the
 * query-string parameter (browsers cannot set headers on a WebSocket) or, when chosen, a header.
 */
export type TokenSource =
  | { readonly kind: "query"; readonly name: string }
  | { readonly kind: "header"; readonly name: string };

/** API Gateway identity-source expressions for a token source (`route.request.querystring.token`). */
export function identitySources(source: TokenSource): string[] {
  return [source.kind === "query" ? `route.request.querystring.${source.name}` : `route.request.header.${source.name}`];
}

/**
 * A function no API Gateway route invokes. `sendmessage` invokes the fan-out worker asynchronously (Lambda `Event`
 * invocations) with shards of a broadcast too large for one invocation (broadcast/broadcast.ts); infra deploys
 * it next to the route functions, the local gateway runs it in-process.
 */
export interface WorkerDefinition {
  /** Short, resource-name-safe name (Lambda, role and log group names). */
  readonly name: string;
  /** Module under `handlers/` (no extension) that exports `handler`. */
  readonly module: string;
  readonly storeAccess: readonly StoreAccess[];
  readonly manageConnections: boolean;
  /** Lambda timeout: no API Gateway integration waits for a worker, so it may exceed 29 s. */
  readonly timeoutSeconds: number;
}

/** Posts a shard and removes its stale ids (so `delete`); never lists the store. */
export const FANOUT_WORKER: WorkerDefinition = {
  name: "fanout-worker",
  module: "fan-out-worker",
  // listRoom: members it finds gone are announced (`left`) to their rooms.
  storeAccess: ["delete", "listRoom"],
  manageConnections: true,
  timeoutSeconds: 120,
};

/**
 * Closes connections whose token has expired and that send nothing (chat/token-expiry.ts), run on a schedule
 * (infra/token-sweeper.ts; the local gateway's timer). Deployed only with `auth: jwt`: without tokens nothing
 * expires. Reads every connection (`read`), tells each expired one why (POST) and closes it (DELETE).
 */
export const TOKEN_SWEEPER: WorkerDefinition & { readonly disconnectConnections: true } = {
  name: "token-sweeper",
  module: "token-sweeper",
  storeAccess: ["read"],
  manageConnections: true,
  disconnectConnections: true,
  timeoutSeconds: 60,
};

/** What IAM needs to know of any function: a route's, or a worker's. */
export type FunctionDefinition = Pick<
  RouteDefinition,
  "name" | "module" | "storeAccess" | "manageConnections" | "disconnectConnections" | "invokesFanOutWorker"
> & { readonly routeKey?: string };
