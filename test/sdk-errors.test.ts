/**
 * The SDK says what went wrong instead of failing silently, for the refusals a user meets: a token the authorizer
 * refuses, too many connections, a full room and a message too large. Against the local gateway running the real
 * authorizer and handlers, with the `ws` package (which, unlike a browser, shows a refused handshake's status).
 */
import { expect } from "chai";
import { WebSocket } from "ws";
import { DEFAULT_MESSAGE_LIMITS } from "../contract/message-limits";
import { ChatClient, type ChatClientOptions, type ChatError } from "../sdk";
import type { ConnectionState } from "../sdk/connection-state";
import { MemoryConnectionStore } from "../stores/memory";
import { type AuthGateway, startAuthGateway } from "./support/auth-gateway";
import { type ChatGateway, startChatGateway, waitFor } from "./support/gateway";
import { startTestIdp, type TestIdp } from "./support/jwks";

function watched(options: ChatClientOptions) {
  const client = new ChatClient({ WebSocket, reconnect: { baseMs: 20, capMs: 100 }, ...options });
  const states: ConnectionState[] = [];
  const errors: ChatError[] = [];
  client.on("state", (s) => states.push(s));
  client.on("error", (e) => errors.push(e));
  return { client, states, errors };
}

async function rejection(promise: Promise<unknown>): Promise<ChatError> {
  try {
    await promise;
  } catch (error) {
    return error as ChatError;
  }
  throw new Error("expected a rejection");
}

describe("SDK: clear errors for refusals", function () {
  this.timeout(20_000);
  const clients: ChatClient[] = [];
  afterEach(() => {
    for (const c of clients.splice(0)) c.close();
  });

  describe("at the handshake (JWT authorizer)", () => {
    let idp: TestIdp;
    let auth: AuthGateway;
    before(async () => {
      idp = await startTestIdp();
      auth = await startAuthGateway(new MemoryConnectionStore(), idp, { connectionsPerUser: 1 });
    });
    after(async () => {
      await auth?.stop();
      await idp?.close();
    });

    it("reports a refused fixed token as AuthRefused and stops trying", async () => {
      const sdk = watched({ url: auth.gateway.url, token: "not-a-jwt" });
      clients.push(sdk.client);
      sdk.client.connect();
      await waitFor(() => (sdk.client.state === "closed" ? true : undefined), 5_000, "closed");
      expect(sdk.errors.map((e) => e.code)).to.deep.equal(["AuthRefused"]);
      expect(sdk.errors[0]!.retryable).to.equal(false);
      expect(sdk.errors[0]!.message).to.match(/HTTP 401/);
      expect(sdk.states).to.deep.equal(["connecting", "closed"]);
    });

    it("keeps asking a token function after AuthRefused, and connects once it gives a good token", async () => {
      let calls = 0;
      const sdk = watched({
        url: auth.gateway.url,
        token: async () => (++calls < 3 ? "expired-or-bad" : idp.token({ sub: "fresh" })),
      });
      clients.push(sdk.client);
      sdk.client.connect();
      await waitFor(() => (sdk.client.state === "open" ? true : undefined), 5_000, "open");
      expect(sdk.errors.map((e) => e.code)).to.deep.equal(["AuthRefused", "AuthRefused"]);
      expect(sdk.errors.every((e) => e.retryable)).to.equal(true);
    });

    it("reports the per-user connection limit (429) as RateLimited and retries", async () => {
      const token = await idp.token({ sub: "busy" });
      const first = watched({ url: auth.gateway.url, token });
      clients.push(first.client);
      first.client.connect();
      await waitFor(() => (first.client.state === "open" ? true : undefined), 5_000, "the first open");
      const second = watched({ url: auth.gateway.url, token });
      clients.push(second.client);
      second.client.connect();
      await waitFor(() => second.errors[0], 5_000, "an error");
      expect(second.errors[0]).to.include({ code: "RateLimited", retryable: true });
      expect(second.client.state).to.not.equal("closed");
      // The slot frees when the first leaves; the second then gets in on its own.
      first.client.close();
      await waitFor(() => (second.client.state === "open" ? true : undefined), 10_000, "the second open");
    });
  });

  describe("on messages", () => {
    let chat: ChatGateway;
    before(async () => {
      chat = await startChatGateway(new MemoryConnectionStore());
      // The handlers read their settings per invocation: a full room at two members, and a small data limit.
      Object.assign(chat.deps.env, {
        maxMembersPerRoom: 2,
        limits: { ...DEFAULT_MESSAGE_LIMITS, maxDataBytes: 64 },
      });
    });
    after(async () => {
      await chat?.stop();
    });

    it("rejects joining a full room with RoomFull, and a send over the limit with PayloadTooLarge", async () => {
      const members = [watched({ url: chat.gateway.url }), watched({ url: chat.gateway.url })];
      const late = watched({ url: chat.gateway.url });
      for (const m of [...members, late]) {
        clients.push(m.client);
        m.client.connect();
      }
      for (const m of members) await m.client.join("small");
      const full = await rejection(late.client.join("small"));
      expect(full).to.include({ code: "RoomFull", retryable: false });
      expect(full.frame).to.include({ room: "small", limit: 2 });
      expect(late.errors.map((e) => e.code)).to.include("RoomFull");

      const big = await rejection(members[0]!.client.send("small", "x".repeat(200)));
      expect(big).to.include({ code: "PayloadTooLarge", retryable: false });
      expect(big.frame).to.include({ limit: 64 });
      // The connection is fine: a message within the limit still goes out.
      const ack = await members[0]!.client.send("small", "fits");
      expect(ack).to.include({ room: "small" });
    });

    it("keeps rejoining a room refused RoomFull while its own lost connection still holds the seat", async () => {
      const other = watched({ url: chat.gateway.url });
      const sdk = watched({ url: chat.gateway.url, WebSocket: ZombieSocket, requestTimeoutMs: 300 });
      const shown: unknown[] = [];
      sdk.client.on("message", (m) => shown.push(m.data));
      for (const m of [other, sdk]) {
        clients.push(m.client);
        m.client.connect();
      }
      await other.client.join("small");
      await sdk.client.join("small");
      // The network drops: the client sees its connection go, the gateway does not yet (no $disconnect).
      const old = ZombieSocket.all.at(-1)!;
      old.zombie();
      await waitFor(() => sdk.errors.find((e) => e.code === "RoomFull"), 5_000, "the rejoin refused RoomFull");
      // The gateway notices at last: the old connection's seat is free, and the client gets in on its own.
      old.real.close();
      const deadline = Date.now() + 8_000;
      while (!shown.includes("after") && Date.now() < deadline) {
        await other.client.send("small", "after").catch(() => {});
        await new Promise((resolve) => setTimeout(resolve, 500));
      }
      expect(shown).to.include("after");
    });
  });
});

/** A `ws` socket that can lose its connection on the client's side only (a dropped network the server has not noticed). */
class ZombieSocket {
  static readonly all: ZombieSocket[] = [];
  readonly real: WebSocket;
  private dead = false;
  private readonly listeners = new Map<string, ((event: unknown) => void)[]>();

  constructor(url: string, protocols?: string | string[]) {
    this.real = new WebSocket(url, protocols);
    this.real.on("error", () => {});
    for (const type of ["open", "message", "close", "error"] as const) {
      this.real.addEventListener(type, (event: unknown) => {
        if (!this.dead) this.fire(type, event);
      });
    }
    ZombieSocket.all.push(this);
  }

  get readyState(): number {
    return this.dead ? WebSocket.CLOSED : this.real.readyState;
  }

  send(data: string): void {
    if (!this.dead) this.real.send(data);
  }

  close(code?: number, reason?: string): void {
    if (!this.dead) this.real.close(code, reason);
  }

  addEventListener(type: string, listener: (event: never) => void): void {
    this.listeners.set(type, [...(this.listeners.get(type) ?? []), listener as (event: unknown) => void]);
  }

  /** The client's side of the connection goes; the server's stays open. */
  zombie(): void {
    this.dead = true;
    this.fire("close", { code: 1006, reason: "" });
  }

  private fire(type: string, event: unknown): void {
    for (const listener of this.listeners.get(type) ?? []) listener(event);
  }
}
