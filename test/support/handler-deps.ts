/**
 * Builds handler dependencies around real servers, with a logger whose lines the test can read, and fan-out
 * shards run in-process (chat/in-process-workers.ts: `inProcessWorkers(deps).idle()` waits for them).
 */

import type { HandlerDeps } from "../../chat/deps";
import { withInProcessWorkers } from "../../chat/in-process-workers";
import type { ConnectionStore } from "../../contract/connection-store";
import { ConnectionsApi, type PostOptions } from "../../runtime/connections-api";
import { Logger } from "../../runtime/logger";
import { useDummyAwsCredentials } from "./aws-env";

export interface TestDeps extends HandlerDeps {
  /** Every log line, parsed. */
  readonly logs: Record<string, unknown>[];
}

export function testDeps(store: ConnectionStore, callbackUrl: string, post: PostOptions = {}): TestDeps {
  useDummyAwsCredentials();
  const logs: Record<string, unknown>[] = [];
  return withInProcessWorkers({
    env: { store: store.kind, callbackUrl, connectionTtlSeconds: 7500 },
    store,
    connections: ConnectionsApi.forEndpoint(callbackUrl, {
      timeoutMs: 500,
      backoffBaseMs: 1,
      backoffCapMs: 5,
      ...post,
    }),
    log: new Logger({}, "debug", (line) => logs.push(JSON.parse(line) as Record<string, unknown>)),
    logs,
  });
}
