/**
 * The SDK end to end against the local gateway running the real handlers: it comes back on its own after a
 * server-side close, an idle timeout and a stopped gateway, renews before the maximum duration, rejoins its rooms,
 * and gives up only when told to.
 */
import { expect } from "chai";
import { WebSocket } from "ws";
import { ChatClient, type ChatClientOptions } from "../sdk";
import type { ConnectionState } from "../sdk/connection-state";
import { MemoryConnectionStore } from "../stores/memory";
import { type ChatGateway, openClient, startChatGateway, waitFor } from "./support/gateway";

function sdkClient(url: string, options: Partial<ChatClientOptions> = {}) {
  const client = new ChatClient({ url, WebSocket, reconnect: { baseMs: 20, capMs: 200 }, ...options });
  const states: ConnectionState[] = [];
  const identities: string[] = [];
  const errors: string[] = [];
  const messages: unknown[] = [];
  client.on("state", (s) => states.push(s));
  client.on("identity", (who) => identities.push(who.connectionId));
  client.on("error", (e) => errors.push(e.code));
  client.on("message", (m) => messages.push(m.data));
  return { client, states, identities, errors, messages };
}

describe("SDK against the local gateway", function () {
  this.timeout(20_000);
  let chat: ChatGateway;
  const open: ChatClient[] = [];

  afterEach(async () => {
    for (const client of open.splice(0)) client.close();
    await chat?.stop();
  });

  it("reconnects after the server closes the connection, as a new connection, and rejoins its rooms", async () => {
    chat = await startChatGateway(new MemoryConnectionStore());
    const sdk = sdkClient(chat.gateway.url, { name: "alice" });
    open.push(sdk.client);
    sdk.client.connect();
    await sdk.client.join("lobby");
    const first = await waitFor(() => sdk.identities[0], 3_000, "whoami");

    const closed = await fetch(`${chat.gateway.callbackUrl}/@connections/${encodeURIComponent(first)}`, {
      method: "DELETE",
    });
    expect(closed.status).to.be.oneOf([204, 403]);
    if (closed.status === 403) await chat.deps.connections!.disconnect(first);

    const second = await waitFor(() => sdk.identities[1], 5_000, "a second whoami");
    expect(second).to.not.equal(first);
    expect(sdk.states).to.include.ordered.members(["connecting", "open", "reconnecting", "connecting", "open"]);

    const peer = await openClient(chat.gateway.url);
    await peer.send(JSON.stringify({ action: "join", room: "lobby" }));
    await peer.nextJson();
    await peer.send(JSON.stringify({ action: "sendmessage", room: "lobby", data: "after the reconnect" }));
    await waitFor(() => (sdk.messages.includes("after the reconnect") ? true : undefined), 3_000, "the message");
    await peer.close();
  });

  it("stays on one connection across the idle timeout with its heartbeat, and comes back without one", async () => {
    chat = await startChatGateway(new MemoryConnectionStore(), { limits: { idleTimeoutMs: 400 } });
    const beating = sdkClient(chat.gateway.url, { heartbeatMs: 120 });
    const silent = sdkClient(chat.gateway.url, { heartbeatMs: 60_000 });
    open.push(beating.client, silent.client);
    beating.client.connect();
    silent.client.connect();
    await new Promise((resolve) => setTimeout(resolve, 1_500));
    expect(beating.states).to.deep.equal(["connecting", "open"]);
    expect(new Set(beating.identities).size).to.equal(1);
    expect(silent.states.filter((s) => s === "reconnecting").length).to.be.greaterThan(0);
    expect(silent.client.state).to.be.oneOf(["open", "connecting", "reconnecting"]);
  });

  it("renews its connection before the maximum duration closes it", async () => {
    chat = await startChatGateway(new MemoryConnectionStore(), { limits: { maxConnectionMs: 800 } });
    const sdk = sdkClient(chat.gateway.url, { renewAfterMs: 300 });
    open.push(sdk.client);
    sdk.client.connect();
    await waitFor(() => sdk.identities[2], 5_000, "two renewals");
    const codes = chat.disconnects().map((e) => e.requestContext.disconnectStatusCode);
    expect(codes).to.not.include(1001);
    expect(codes).to.include(1000);
  });

  it("gives up after its attempt limit once the gateway is gone, and says so", async () => {
    chat = await startChatGateway(new MemoryConnectionStore());
    const sdk = sdkClient(chat.gateway.url, { reconnect: { baseMs: 10, capMs: 20, maxAttempts: 2 } });
    open.push(sdk.client);
    sdk.client.connect();
    await waitFor(() => (sdk.client.state === "open" ? true : undefined), 3_000, "open");
    await chat.stop();
    await waitFor(() => (sdk.client.state === "closed" ? true : undefined), 5_000, "closed");
    expect(sdk.errors).to.include("ConnectFailed");
    const pending = await sdk.client.send("lobby", "late").catch((e: { code: string }) => e.code);
    expect(pending).to.equal("Closed");
  });
});
