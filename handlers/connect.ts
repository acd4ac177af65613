/** `$connect`: records the new connection. A non-2xx answer makes API Gateway refuse the handshake. */

import { containerDeps } from "../app/container";
import { lambdaHandler } from "../app/lambda-handler";
import { connectionRecord } from "../chat/connection-record";
import { plainRoute } from "../chat/pipeline";

export const connect = plainRoute(async ({ event, deps, log }) => {
  const started = Date.now();
  try {
    await deps.store.add(connectionRecord(event, deps.env.connectionTtlSeconds));
    log.info("connected", { outcome: "ok", durationMs: Date.now() - started });
    return { statusCode: 200 };
  } catch (error) {
    // The client only learns the handshake failed; the cause stays in our logs.
    log.error("connect failed: store write", { outcome: "error", error, durationMs: Date.now() - started });
    return { statusCode: 500, body: "Failed to connect." };
  }
});

export const handler = lambdaHandler(connect, containerDeps);
