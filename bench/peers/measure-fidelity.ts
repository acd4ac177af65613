/**
 * `--measure fidelity`: nine behaviours of API Gateway's WebSocket APIs, each checked the way a client or a handler
 * would notice it, with the AWS documentation that states it. `@connections` is called with the real AWS SDK
 * client (signed with the secret every local tool accepts). Prints one line per check and a pass/fail table.
 */
import {
  ApiGatewayManagementApiClient,
  DeleteConnectionCommand,
  GetConnectionCommand,
  PostToConnectionCommand,
} from "@aws-sdk/client-apigatewaymanagementapi";
import { WebSocket } from "ws";
import { closeCode, echoedContext, nextFrame, openAll, terminateAll } from "./clients";
import type { MeasureContext } from "./measure-context";

interface Verdict {
  readonly pass: boolean;
  readonly detail: string;
}

interface Check {
  readonly name: string;
  readonly run: (f: Fixture) => Promise<Verdict>;
}

interface Fixture {
  readonly m: MeasureContext;
  readonly sdk: ApiGatewayManagementApiClient;
  /** An open socket and its connection id (from the probe's echo). */
  open(query?: string): Promise<{ ws: WebSocket; id: string }>;
}

const WAIT_MS = 15_000;

async function echo(ws: WebSocket, frame: string) {
  const reply = nextFrame(ws, echoedContext, WAIT_MS);
  ws.send(frame);
  return reply;
}

const verdict = (pass: boolean, detail: string): Verdict => ({ pass, detail });

const CHECKS: readonly Check[] = [
  {
    // https://docs.aws.amazon.com/apigateway/latest/developerguide/websocket-api-develop-routes.html: the route
    // whose key equals `$request.body.action` is selected, else `$default`; a non-JSON message goes to `$default`.
    name: "route selection on $request.body.action, $default fallback",
    run: async ({ open }) => {
      const { ws } = await open();
      const keys = [
        (await echo(ws, JSON.stringify({ action: "echo" })))?.routeKey,
        (await echo(ws, JSON.stringify({ action: "nosuchroute" })))?.routeKey,
        (await echo(ws, "not json"))?.routeKey,
      ];
      ws.close();
      const pass = keys[0] === "echo" && keys[1] === "$default" && keys[2] === "$default";
      return verdict(pass, `routeKeys ${JSON.stringify(keys)} (want ["echo","$default","$default"])`);
    },
  },
  {
    // https://docs.aws.amazon.com/apigateway/latest/developerguide/apigateway-websocket-api-route-keys-connect-disconnect.html
    // and .../websocket-connect-route-subprotocol.html: a `$connect` integration that returns a non-2xx status
    // refuses the connection with that status.
    name: "$connect non-2xx refuses the handshake with that status",
    run: async ({ m }) => {
      const status = await new Promise<number | string>((resolve) => {
        const ws = new WebSocket(`${m.target.setup.url}?status=403`);
        const timer = setTimeout(() => resolve("no answer"), WAIT_MS);
        ws.once("unexpected-response", (_req, res) => {
          clearTimeout(timer);
          resolve(res.statusCode ?? "none");
          ws.terminate();
        });
        ws.once("open", () => {
          clearTimeout(timer);
          resolve("opened");
          ws.terminate();
        });
        ws.once("error", (e) => {
          clearTimeout(timer);
          resolve(`error ${e.message}`);
        });
      });
      return verdict(status === 403, `handshake answered ${status} (want 403)`);
    },
  },
  {
    // https://docs.aws.amazon.com/apigateway/latest/developerguide/apigateway-websocket-api-mapping-template-reference.html:
    // `$context` variables of a MESSAGE event.
    name: "requestContext fields of a MESSAGE event",
    run: async ({ open }) => {
      const { ws, id } = await open();
      const ctx = (await echo(ws, JSON.stringify({ action: "echo" }))) ?? {};
      ws.close();
      const want: [string, boolean][] = [
        ["connectionId", ctx.connectionId === id],
        ["routeKey", ctx.routeKey === "echo"],
        ["eventType", ctx.eventType === "MESSAGE"],
        ["connectedAt", typeof ctx.connectedAt === "number"],
        ["requestTimeEpoch", typeof ctx.requestTimeEpoch === "number"],
        ["requestId", typeof ctx.requestId === "string" && ctx.requestId !== ""],
        ["messageId", typeof ctx.messageId === "string" && ctx.messageId !== ""],
        ["domainName", typeof ctx.domainName === "string" && ctx.domainName !== ""],
        ["stage", typeof ctx.stage === "string" && ctx.stage !== ""],
        ["apiId", typeof ctx.apiId === "string" && ctx.apiId !== ""],
      ];
      const wrong = want.filter(([, ok]) => !ok).map(([field]) => field);
      return verdict(
        wrong.length === 0,
        wrong.length === 0 ? "all 10 fields" : `wrong or missing: ${wrong.join(", ")}`,
      );
    },
  },
  {
    // https://docs.aws.amazon.com/apigateway/latest/developerguide/apigateway-how-to-call-websocket-api-connections.html:
    // `POST @connections/{id}` sends the body to the client.
    name: "@connections POST delivers the body",
    run: async ({ open, sdk }) => {
      const { ws, id } = await open();
      const got = nextFrame(ws, (f) => (f === "probe-post-body" ? f : undefined), WAIT_MS);
      const sent = await sdk.send(new PostToConnectionCommand({ ConnectionId: id, Data: "probe-post-body" })).then(
        () => "200",
        (e: Error) => e.name,
      );
      const frame = await got;
      ws.close();
      return verdict(
        frame !== undefined && sent === "200",
        `post ${sent}, frame ${frame === undefined ? "none" : "ok"}`,
      );
    },
  },
  {
    // Same page: `GET @connections/{id}` returns the connection's `connectedAt`, `identity` and `lastActiveAt`.
    name: "@connections GET returns the connection",
    run: async ({ open, sdk }) => {
      const { ws, id } = await open();
      const out = await sdk.send(new GetConnectionCommand({ ConnectionId: id })).catch((e: Error) => e);
      ws.close();
      if (out instanceof Error) return verdict(false, `GetConnection threw ${out.name}`);
      const recent = out.ConnectedAt instanceof Date && Math.abs(Date.now() - out.ConnectedAt.getTime()) < 120_000;
      const ip = typeof out.Identity?.SourceIp === "string";
      const active = out.LastActiveAt instanceof Date;
      return verdict(
        recent && ip && active,
        `ConnectedAt ${recent ? "ok" : "bad"}, SourceIp ${ip ? "ok" : "missing"}, LastActiveAt ${active ? "ok" : "missing"}`,
      );
    },
  },
  {
    // Same page: `DELETE @connections/{id}` disconnects the client.
    name: "@connections DELETE closes the socket",
    run: async ({ open, sdk }) => {
      const { ws, id } = await open();
      const closed = closeCode(ws, WAIT_MS);
      const out = await sdk.send(new DeleteConnectionCommand({ ConnectionId: id })).then(
        () => "ok",
        (e: Error) => e.name,
      );
      const code = await closed;
      ws.terminate();
      return verdict(out === "ok" && code !== undefined, `DeleteConnection ${out}, close code ${code ?? "none"}`);
    },
  },
  {
    // https://repost.aws/knowledge-center/410-gone-api-gateway and the SDK model's GoneException (HTTP 410): a
    // POST to a connection that is gone.
    name: "@connections POST to a gone connection: 410 GoneException",
    run: async ({ open, sdk }) => {
      const { ws, id } = await open();
      const closed = closeCode(ws, WAIT_MS);
      ws.close(1000);
      await closed;
      await new Promise((resolve) => setTimeout(resolve, 500));
      const out = await sdk.send(new PostToConnectionCommand({ ConnectionId: id, Data: "late" })).then(
        () => "200",
        (e: Error & { $metadata?: { httpStatusCode?: number } }) => `${e.name} ${e.$metadata?.httpStatusCode}`,
      );
      return verdict(out === "GoneException 410", `answered ${out}`);
    },
  },
  {
    // https://docs.aws.amazon.com/apigateway/latest/developerguide/apigateway-execution-service-websocket-limits-table.html:
    // a message over 128 KB (a frame over 32 KB) closes the connection with 1009.
    name: "a 129 KB frame closes the connection with 1009",
    run: async ({ open }) => {
      const { ws } = await open();
      const closed = closeCode(ws, WAIT_MS);
      ws.send(JSON.stringify({ action: "echo", pad: "x".repeat(129 * 1024) }));
      const code = await closed;
      ws.terminate();
      return verdict(code === 1009, `close code ${code ?? "none (still open)"}`);
    },
  },
  {
    // https://docs.aws.amazon.com/apigateway/latest/developerguide/apigateway-websocket-api-route-keys-connect-disconnect.html:
    // `$disconnect` runs after the connection is closed.
    name: "$disconnect runs when the client closes",
    run: async ({ m, open }) => {
      const { ws, id } = await open();
      ws.close(1000);
      const report = await m.registry.until(() => m.registry.disconnects.find((d) => d.connectionId === id), WAIT_MS);
      const pass = report?.eventType === "DISCONNECT" && report.routeKey === "$disconnect";
      return verdict(
        pass,
        report
          ? `eventType ${report.eventType}, routeKey ${report.routeKey}, code ${report.disconnectStatusCode}`
          : "no $disconnect",
      );
    },
  },
];

export async function measureFidelity(m: MeasureContext): Promise<{ name: string; pass: boolean }[]> {
  const callback = m.target.setup.callback;
  if (callback === undefined) throw new Error(`${m.targetName} does not serve the probe handlers: no fidelity checks`);
  const sdk = new ApiGatewayManagementApiClient({
    endpoint: callback,
    region: "us-east-1",
    credentials: { accessKeyId: "probe", secretAccessKey: "local" },
    maxAttempts: 1,
  });
  const sockets: WebSocket[] = [];
  const fixture: Fixture = {
    m,
    sdk,
    open: async (query = "") => {
      const opened = await openAll(`${m.target.setup.url}${query}`, 1, 1, WAIT_MS);
      const ws = opened.sockets[0];
      if (!ws) throw new Error("could not open a connection");
      sockets.push(ws);
      const id = (await echo(ws, JSON.stringify({ action: "echo" })))?.connectionId;
      if (id === undefined) throw new Error("the probe's echo did not come back");
      return { ws, id };
    },
  };
  const results: { name: string; pass: boolean }[] = [];
  try {
    for (const check of CHECKS) {
      const out = await check.run(fixture).catch((e: Error) => verdict(false, `error: ${e.message}`));
      m.print({ measure: "fidelity", check: check.name, pass: out.pass, detail: out.detail });
      results.push({ name: check.name, pass: out.pass });
    }
  } finally {
    terminateAll(sockets);
    sdk.destroy();
  }
  console.log(`\n| check | ${m.targetName} |\n| --- | --- |`);
  for (const r of results) console.log(`| ${r.name} | ${r.pass ? "pass" : "FAIL"} |`);
  console.log(`| passed | ${results.filter((r) => r.pass).length} of ${results.length} |`);
  return results;
}
