/**
 * `ping`: `{"action":"ping"}` answers `{"type":"pong","ts"}`, the heartbeat. It reads no body (rate limit only)
 * and keeps the store's record of the connection fresh (`touch` sets `lastSeenAt`); a store that has lost the
 * record gets it back from the message (chat/sender-store.ts).
 */
import { containerDeps } from "../app/container";
import { lambdaHandler } from "../app/lambda-handler";
import { requireConnections } from "../chat/deps";
import { rateLimitedRoute } from "../chat/pipeline";
import { pongFrame } from "../contract/frames";

export const ping = rateLimitedRoute(async ({ event, deps, log }) => {
  const connectionId = event.requestContext.connectionId;
  const now = Date.now();
  const known = await deps.store.touch(connectionId, now);
  const outcome = await requireConnections(deps).post(connectionId, pongFrame(now));
  log.info("ping", { outcome: outcome.kind, known });
  return { statusCode: 200 };
});

export const handler = lambdaHandler(ping, containerDeps);
