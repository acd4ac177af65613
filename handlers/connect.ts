/**
 * `$connect`: records the new connection. A non-2xx answer makes API Gateway refuse the handshake.
 *
 * Subprotocol: a client that offers {@link CHAT_PROTOCOL} in `Sec-WebSocket-Protocol` is a typed client; the
 * answer carries the header with exactly that protocol (API Gateway puts `$connect`'s response headers on the 101:
 * developer guide, "Set up a $connect route that requires a WebSocket subprotocol"), and the record keeps it
 * (attribute {@link PROTOCOL_ATTRIBUTE}) so every broadcast gives it envelopes only. The header names only a
 * protocol the client offered: RFC 6455 section 4.1 has a client fail a handshake whose answer names another.
 * A client that offers none, or only others, is a plain client and is answered without the header, as before
 * (browsers and `ws` then fail the connection themselves, per the WHATWG WebSocket standard: websockets/ws #2314).
 */

import { containerDeps } from "../app/container";
import { lambdaHandler } from "../app/lambda-handler";
import { connectionRecord } from "../chat/connection-record";
import { plainRoute } from "../chat/pipeline";
import { userIdOf } from "../chat/rate-limit";
import { claimConnectionSlot, releaseConnectionSlot } from "../chat/user-connections";
import { PROTOCOL_ATTRIBUTE } from "../contract/connection-store";

export const connect = plainRoute(async ({ event, deps, log }) => {
  const started = Date.now();
  const record = connectionRecord(event, deps.env.connectionTtlSeconds);
  // The per-user cap: a slot first, so that concurrent connects of one user cannot all get in.
  const refused = await claimConnectionSlot(event, deps, log, record.expiresAt);
  if (refused) return refused;
  try {
    await deps.store.add(record);
    const protocol = record.attributes?.[PROTOCOL_ATTRIBUTE];
    log.info("connected", { outcome: "ok", durationMs: Date.now() - started, protocol: protocol ?? "plain" });
    return protocol !== undefined
      ? { statusCode: 200, headers: { "Sec-WebSocket-Protocol": protocol } }
      : { statusCode: 200 };
  } catch (error) {
    // The client only learns the handshake failed; the cause stays in our logs.
    log.error("connect failed: store write", { outcome: "error", error, durationMs: Date.now() - started });
    await releaseConnectionSlot(deps, log, userIdOf(event), record.connectionId);
    return { statusCode: 500, body: "Failed to connect." };
  }
});

export const handler = lambdaHandler(connect, containerDeps);
