/** `whoami`: `{"action":"whoami"}` answers `{"type":"whoami","connectionId",…,"rooms":[…]}` to the sender. */
import { containerDeps } from "../app/container";
import { requireConnections, type HandlerDeps } from "../chat/deps";
import { invocationLogger, type HandlerResult, type WebSocketEvent } from "../runtime/event";
import { whoamiFrame } from "../contract/frames";
import { enforceRateLimit } from "../chat/rate-limit";
import { lookupWho } from "../chat/rooms";

export async function whoami(event: WebSocketEvent, deps: HandlerDeps): Promise<HandlerResult> {
  const log = invocationLogger(deps.log, event);
  const rate = await enforceRateLimit(event, deps, log);
  if (rate.kind !== "allowed") return rate.result;
  const connectionId = event.requestContext.connectionId;
  const [who, rooms] = await Promise.all([lookupWho(deps, connectionId), deps.store.roomsOf(connectionId)]);
  const outcome = await requireConnections(deps).post(connectionId, whoamiFrame(who, rooms));
  log.info("whoami", { outcome: outcome.kind, rooms: rooms.length });
  return { statusCode: 200 };
}

export const handler = async (event: WebSocketEvent): Promise<HandlerResult> => whoami(event, await containerDeps());
