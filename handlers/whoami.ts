/** `whoami`: `{"action":"whoami"}` answers `{"type":"whoami","connectionId",…,"rooms":[…]}` to the sender. */
import { containerDeps } from "../app/container";
import { lambdaHandler } from "../app/lambda-handler";
import { requireConnections } from "../chat/deps";
import { rateLimitedRoute } from "../chat/pipeline";
import { lookupWho } from "../chat/rooms";
import { whoamiFrame } from "../contract/frames";

export const whoami = rateLimitedRoute(async ({ event, deps, log }) => {
  const connectionId = event.requestContext.connectionId;
  const [who, rooms] = await Promise.all([lookupWho(deps, connectionId), deps.store.roomsOf(connectionId)]);
  const outcome = await requireConnections(deps).post(connectionId, whoamiFrame(who, rooms));
  log.info("whoami", { outcome: outcome.kind, rooms: rooms.length });
  return { statusCode: 200 };
});

export const handler = lambdaHandler(whoami, containerDeps);
