/**
 * The SDK end to end against the local gateway running the real handlers: it comes back on its own after a
 * server-side close, an idle timeout and a stopped gateway, renews before the maximum duration, rejoins its rooms,
 * and gives up only when told to.
 */
import { expect } from "chai";
import { WebSocket } from "ws";
import { CHAT_PROTOCOL } from "../contract/frames";
import { DEFAULT_MESSAGE_LIMITS } from "../contract/message-limits";
import { ChatClient, type ChatClientOptions, type MessageEvent, ChatClient as SdkClient } from "../sdk";
import type { ConnectionState } from "../sdk/connection-state";
import { CHAT_SUBPROTOCOL } from "../sdk/protocol";
import { MemoryConnectionStore } from "../stores/memory";
import {
  type ChatGateway,
  openClient,
  signedHeaders,
  startChatGateway,
  type TestClient,
  waitFor,
} from "./support/gateway";
import { gatedSocket } from "./support/sdk-socket";

/** A raw client in `room` that keeps itself alive and sends `data` to the room. */
async function peerIn(chat: ChatGateway, room: string): Promise<TestClient> {
  const peer = await openClient(chat.gateway.url);
  await peer.send(JSON.stringify({ action: "join", room }));
  await peer.nextJson();
  return peer;
}

const say = (peer: TestClient, room: string, data: unknown) =>
  peer.send(JSON.stringify({ action: "sendmessage", room, data }));

/** Room messages as the SDK showed them: each seq once and in order, nothing missing. */
function expectOnceInOrder(shown: MessageEvent[], expectedData: unknown[]): void {
  const seqs = shown.map((m) => (m.type === "message" ? m.seq : -1));
  expect(seqs, "shown in seq order without a gap").to.deep.equal(seqs.map((_, i) => i + 1));
  expect(shown.map((m) => m.data)).to.deep.equal(expectedData);
}

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

  /** An SDK client of `chat`, recording what it shows and who it is, joined to "lobby". */
  async function inLobby(options: Partial<ChatClientOptions> = {}) {
    const shown: MessageEvent[] = [];
    const identities: string[] = [];
    const client = new SdkClient({
      url: chat.gateway.url,
      WebSocket,
      reconnect: { baseMs: 10, capMs: 50 },
      ...options,
    });
    open.push(client);
    client.on("message", (m) => shown.push(m));
    client.on("identity", (who) => identities.push(who.connectionId));
    client.connect();
    await client.join("lobby");
    return { client, shown, identities };
  }

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

  it("shows what was sent while it was away (closed by the server) once and in order, and delivers its queued sends once", async () => {
    chat = await startChatGateway(new MemoryConnectionStore());
    const gate = { offline: false };
    const shown: MessageEvent[] = [];
    const client = new SdkClient({
      url: chat.gateway.url,
      WebSocket: gatedSocket(gate),
      reconnect: { baseMs: 20, capMs: 100 },
    });
    open.push(client);
    const identities: string[] = [];
    client.on("identity", (who) => identities.push(who.connectionId));
    client.on("message", (m) => shown.push(m));
    client.connect();
    await client.join("lobby");
    const peer = await peerIn(chat, "lobby");
    for (const data of ["m1", "m2"]) await say(peer, "lobby", data);
    await waitFor(() => (shown.length === 2 ? true : undefined), 3_000, "m1 and m2");

    gate.offline = true;
    const first = await waitFor(() => identities[0], 3_000, "whoami");
    await chat.deps.connections!.disconnect(first);
    await waitFor(() => (client.state !== "open" ? true : undefined), 3_000, "the SDK to notice");
    for (const data of ["m3", "m4", "m5"]) await say(peer, "lobby", data);
    const acks = [client.send("lobby", "queued-1"), client.send("lobby", "queued-2")];
    await new Promise((resolve) => setTimeout(resolve, 200));
    expect(client.state).to.not.equal("open");

    const back = Date.now();
    gate.offline = false;
    const results = await Promise.all(acks);
    const ack1 = results[0]!;
    const ack2 = results[1]!;
    await waitFor(() => (shown.length === 7 ? true : undefined), 5_000, "all seven");
    const resumeMs = Date.now() - back;
    expectOnceInOrder(shown, ["m1", "m2", "m3", "m4", "m5", "queued-1", "queued-2"]);
    expect(ack1).to.include({ seq: 6, room: "lobby" });
    expect(ack2).to.include({ seq: 7, room: "lobby" });
    expect(ack1.duplicate).to.equal(undefined);
    // The peer got each queued send once.
    const peerData = peer.received
      .map((t) => JSON.parse(t))
      .filter((f) => f.type === "message")
      .map((f) => f.data);
    await waitFor(() => (peer.received.length >= 7 ? true : undefined), 3_000, "the peer's copies");
    expect(peer.received.map((t) => JSON.parse(t)).filter((f) => f.data === "queued-1")).to.have.length(1);
    expect(await client.send("lobby", "live")).to.include({ seq: 8 });
    await waitFor(() => (shown.length === 8 ? true : undefined), 3_000, "the live one");
    expect(peerData.length).to.be.at.least(5);
    expect(resumeMs).to.be.below(3_000);
    await peer.close();
  });

  it("shows what was sent while an idle timeout had dropped it, once and in order", async () => {
    chat = await startChatGateway(new MemoryConnectionStore(), { limits: { idleTimeoutMs: 400 } });
    const gate = { offline: false };
    const shown: MessageEvent[] = [];
    const states: string[] = [];
    const client = new SdkClient({
      url: chat.gateway.url,
      WebSocket: gatedSocket(gate),
      reconnect: { baseMs: 20, capMs: 100 },
      heartbeatMs: 60_000,
    });
    open.push(client);
    client.on("message", (m) => shown.push(m));
    client.on("state", (s) => states.push(s));
    client.connect();
    await client.join("lobby");
    const peer = await peerIn(chat, "lobby");
    // The peer's heartbeat keeps it past the idle timeout.
    const beat = setInterval(() => void peer.send(JSON.stringify({ action: "ping" })).catch(() => {}), 100);
    await say(peer, "lobby", "before");
    await waitFor(() => (shown.length === 1 ? true : undefined), 3_000, "the first");
    gate.offline = true;
    // Silent for longer than the idle timeout: the gateway drops it; the peer keeps talking (and so alive).
    await waitFor(() => (states.includes("reconnecting") ? true : undefined), 3_000, "the idle drop");
    for (const data of ["away-1", "away-2", "away-3"]) await say(peer, "lobby", data);
    gate.offline = false;
    await waitFor(() => (shown.length === 4 ? true : undefined), 5_000, "what it missed");
    await say(peer, "lobby", "after");
    await waitFor(() => (shown.length === 5 ? true : undefined), 3_000, "the live one");
    expectOnceInOrder(shown, ["before", "away-1", "away-2", "away-3", "after"]);
    clearInterval(beat);
    await peer.close();
  });

  it("loses and repeats nothing across forced reconnects while a peer keeps sending", async () => {
    chat = await startChatGateway(new MemoryConnectionStore());
    (chat.deps.env as { limits?: unknown }).limits = { ...DEFAULT_MESSAGE_LIMITS, messages: 10_000 };
    const { shown, identities } = await inLobby();
    const peer = await peerIn(chat, "lobby");
    const reconnects = 5;
    let sent = 0;
    let sending = true;
    const chatter = (async () => {
      while (sending) {
        await say(peer, "lobby", ++sent);
        await new Promise((resolve) => setTimeout(resolve, 5));
      }
    })();
    for (let i = 0; i < reconnects; i++) {
      const id = await waitFor(() => identities[i], 5_000, `connection ${i + 1}`);
      await new Promise((resolve) => setTimeout(resolve, 60));
      await chat.deps.connections!.disconnect(id);
    }
    await waitFor(() => identities[reconnects], 5_000, "the last connection");
    sending = false;
    await chatter;
    await waitFor(() => (shown.length >= sent ? true : undefined), 5_000, "every message");
    await new Promise((resolve) => setTimeout(resolve, 100));
    const data = shown.map((m) => m.data);
    const lost = Array.from({ length: sent }, (_, i) => i + 1).filter((n) => !data.includes(n)).length;
    const duplicated = data.length - new Set(data).size;
    console.log(`      ${reconnects} forced reconnects, ${sent} messages: ${lost} lost, ${duplicated} duplicated`);
    expect({ lost, duplicated }).to.deep.equal({ lost: 0, duplicated: 0 });
    expectOnceInOrder(
      shown,
      Array.from({ length: sent }, (_, i) => i + 1),
    );
    await peer.close();
  });

  it("asks a rejoin and a resume page again when they get no answer or a retryable refusal", async () => {
    let joins = 0;
    let histories = 0;
    chat = await startChatGateway(new MemoryConnectionStore(), {
      override: (real) => ({
        ...real,
        // The rejoin (the third join, after the SDK's and the peer's) is never answered (a lost invocation); the
        // first join's latest-seq page is refused as retryable.
        join: async (event) => (++joins === 3 ? { statusCode: 200 } : real.join!(event)),
        history: async (event) => {
          if (++histories === 1) {
            const body = JSON.parse(event.body ?? "{}") as { room?: string };
            await chat.deps.connections!.post(
              event.requestContext.connectionId,
              JSON.stringify({
                type: "error",
                code: "StoreUnavailable",
                message: "x",
                room: body.room,
                retryable: true,
                retryAfterMs: 50,
              }),
            );
            return { statusCode: 200 };
          }
          return real.history!(event);
        },
      }),
    });
    const { shown, identities } = await inLobby({ requestTimeoutMs: 300 });
    const peer = await peerIn(chat, "lobby");
    await say(peer, "lobby", "m1");
    await waitFor(() => (shown.length === 1 ? true : undefined), 3_000, "m1");
    await chat.deps.connections!.disconnect(await waitFor(() => identities[0], 3_000, "whoami"));
    await waitFor(() => identities[1], 3_000, "the second connection");
    for (const data of ["m2", "m3"]) await say(peer, "lobby", data);
    await waitFor(() => (shown.length === 3 ? true : undefined), 5_000, "m2 and m3 after the retries");
    expectOnceInOrder(shown, ["m1", "m2", "m3"]);
    expect(joins, "the unanswered rejoin was sent again").to.be.at.least(4);
    expect(histories, "the refused page was asked again").to.be.at.least(2);
    await peer.close();
  });

  it("gives every send a ref of 16 random bytes (22 base64url characters)", async () => {
    chat = await startChatGateway(new MemoryConnectionStore());
    const sdk = sdkClient(chat.gateway.url);
    open.push(sdk.client);
    sdk.client.connect();
    await sdk.client.join("lobby");
    const acks = await Promise.all([sdk.client.send("lobby", 1), sdk.client.send("lobby", 2)]);
    for (const ack of acks) expect(ack.ref).to.match(/^[A-Za-z0-9_-]{22}$/);
    expect(acks[0]!.ref).to.not.equal(acks[1]!.ref);
  });

  it("speaks the contract's subprotocol", () => {
    expect(CHAT_SUBPROTOCOL).to.equal(CHAT_PROTOCOL);
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
  it("reports API Gateway's own error frame and a raw frame as errors; presence says whether a name is verified", async () => {
    chat = await startChatGateway(new MemoryConnectionStore(), {
      override: (real) => ({
        ...real,
        whoami: async () => {
          throw new Error("handler failed");
        },
      }),
    });
    const sdk = sdkClient(chat.gateway.url, { name: "alice" });
    const joined: unknown[] = [];
    sdk.client.on("joined", (e) => joined.push(e.member));
    open.push(sdk.client);
    sdk.client.connect();
    await sdk.client.join("lobby");
    // The SDK's own whoami at connect met the failing handler: API Gateway's frame, not silence.
    await waitFor(() => (sdk.errors.includes("GatewayError") ? true : undefined), 3_000, "GatewayError");
    const peer = await openClient(`${chat.gateway.url}?name=bob`);
    await peer.send(JSON.stringify({ action: "join", room: "lobby" }));
    await waitFor(() => (joined.length >= 2 ? true : undefined), 3_000, "two joined");
    expect(joined.map((m) => (m as { nameVerified?: boolean }).nameVerified)).to.deep.equal([false, false]);
    // The SDK's connection is the gateway's first (its whoami failed, so it does not know its own id).
    const id = chat.events.find((e) => e.routeKey === "$connect")!.event.requestContext.connectionId;
    const res = await fetch(`${chat.gateway.callbackUrl}/@connections/${encodeURIComponent(id)}`, {
      method: "POST",
      body: "raw text",
      headers: signedHeaders(chat.gateway.port, "POST", `/dev/@connections/${encodeURIComponent(id)}`, "raw text"),
    });
    expect(res.status).to.equal(200);
    await waitFor(() => (sdk.errors.includes("UnexpectedFrame") ? true : undefined), 3_000, "UnexpectedFrame");
    expect(sdk.messages).to.not.include("raw text");
    await peer.close();
  });
});
