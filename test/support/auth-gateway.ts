/**
 * A local gateway with the real JWT authorizer on `$connect` (tokens from the loopback identity provider of
 * jwks.ts), the route table's real handlers with chosen limits, and optionally the token sweep on a timer.
 */
import type { ConnectionStore } from "../../contract/connection-store";
import { DEFAULT_MESSAGE_LIMITS, type MessageLimits } from "../../contract/message-limits";
import { authorize, createVerifier } from "../../handlers/authorizer";
import { type LocalGateway, startLocalGateway } from "../../local/gateway";
import { Logger } from "../../runtime/logger";
import { openClient, recording, routeTableHandlersWith, type TestClient } from "./gateway";
import { type TestDeps, testDeps } from "./handler-deps";
import type { TestIdp } from "./jwks";

export interface AuthGateway {
  readonly gateway: LocalGateway;
  readonly deps: TestDeps;
  readonly events: ReturnType<typeof recording>["events"];
  /** Opens a client as `sub` (a fresh token each time). */
  connect(sub: string, expiresIn?: number): Promise<TestClient>;
  stop(): Promise<void>;
}

/** A gateway with the JWT authorizer on `$connect` and the route table's handlers, with `limits`. */
export async function startAuthGateway(
  store: ConnectionStore,
  idp: TestIdp,
  limits: Partial<MessageLimits>,
  options: { tokenSweepMs?: number; sweep?: (deps: TestDeps) => Promise<unknown> } = {},
): Promise<AuthGateway> {
  let deps: TestDeps | undefined;
  let events: ReturnType<typeof recording>["events"] = [];
  const verifier = createVerifier(idp.settings());
  const quiet = new Logger({}, "error", () => {});
  const gateway = await startLocalGateway({
    port: 0,
    log: () => {},
    handlers: ({ callbackUrl }) => {
      const base = testDeps(store, callbackUrl);
      deps = { ...base, env: { ...base.env, limits: { ...DEFAULT_MESSAGE_LIMITS, ...limits } } };
      const recorded = recording(routeTableHandlersWith(deps));
      events = recorded.events;
      return recorded.handlers;
    },
    authorizer: {
      identitySources: ["route.request.querystring.token"],
      handler: (event) => authorize(event as never, verifier, quiet),
    },
    ...(options.tokenSweepMs
      ? { tokenSweep: { intervalMs: options.tokenSweepMs, run: () => options.sweep!(deps!) } }
      : {}),
  });
  return {
    gateway,
    deps: deps!,
    get events() {
      return events;
    },
    async connect(sub, expiresIn) {
      const token = await idp.token({ sub }, expiresIn === undefined ? {} : { expiresIn });
      const client = await openClient(`${gateway.url}?token=${token}`);
      const connect = events.filter((e) => e.routeKey === "$connect").at(-1);
      client.connectionId = connect?.event.requestContext.connectionId;
      return client;
    },
    stop: () => gateway.stop(),
  };
}
