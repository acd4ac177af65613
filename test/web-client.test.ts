/**
 * The browser client (web/index.html, built on the SDK it imports from /sdk.js) in a real browser: Playwright
 * (playwright-core, no bundled browsers) driving Debian's Chromium at /usr/bin/chromium against a local gateway
 * running the real handlers. CI installs chromium (.ci/run); without it this suite FAILS, naming what is missing. A
 * screenshot goes to test-artifacts/. The resume tests print how long the page took from the drop to caught up.
 */
import { existsSync, mkdirSync } from "node:fs";
import { join } from "node:path";
import { DeleteConnectionCommand, PostToConnectionCommand } from "@aws-sdk/client-apigatewaymanagementapi";
import { expect } from "chai";
import { type Browser, chromium, type Page } from "playwright-core";
import { CHAT_PROTOCOL } from "../contract/frames";
import { DEFAULT_MESSAGE_LIMITS } from "../contract/message-limits";
import type { RouteHandler } from "../local/route-handlers";
import { MemoryConnectionStore } from "../stores/memory";
import {
  type ChatGateway,
  managementClient,
  openClient,
  startChatGateway,
  type TestClient,
  waitFor,
} from "./support/gateway";

/** The page's `document`, as the functions run in the browser (waitForFunction) see it; tsconfig has no DOM lib. */
declare const document: {
  querySelector(selector: string): { textContent: string | null } | null;
  querySelectorAll(selector: string): { length: number };
};

const CHROMIUM = process.env.CHROMIUM_PATH ?? "/usr/bin/chromium";
const ARTIFACTS = join(__dirname, "..", "test-artifacts");

/** A raw (plain) client in `room` that sends to it: it hears its own room messages back, each with its seq. */
async function peerIn(gw: ChatGateway, room: string): Promise<TestClient & { say(data: string): Promise<void> }> {
  const peer = await openClient(`${gw.gateway.url}?name=peer`);
  await peer.send(JSON.stringify({ action: "join", room }));
  await peer.nextJson();
  return Object.assign(peer, {
    say: (data: string) => peer.send(JSON.stringify({ action: "sendmessage", room, data })),
  });
}

/** The room messages `peer` heard back, by seq: what every member must show, in this order. */
function heardBySeq(peer: TestClient): [number, string][] {
  return peer.received
    .map((text) => JSON.parse(text) as { type?: string; seq?: number; data?: unknown })
    .filter((frame) => frame.type === "message" && typeof frame.seq === "number")
    .map((frame): [number, string] => [frame.seq!, String(frame.data)])
    .sort((a, b) => a[0] - b[0]);
}

/**
 * A `$connect` that waits while a hold is armed: it keeps the page away (its reconnect handshake pending) for as long
 * as a test needs others to talk without it. `arrived` resolves when the held connect comes in.
 */
function holdingConnect() {
  let armed: { arrived: () => void; release: Promise<void> } | undefined;
  return {
    override: (real: Record<string, RouteHandler>) => ({
      ...real,
      $connect: async (event: Parameters<RouteHandler>[0]) => {
        const hold = armed;
        armed = undefined;
        if (hold) {
          hold.arrived();
          await hold.release;
        }
        return real.$connect!(event);
      },
    }),
    arm(): { arrived: Promise<number>; release: () => void } {
      let release!: () => void;
      let arrived!: (at: number) => void;
      const arrival = new Promise<number>((resolve) => (arrived = resolve));
      armed = { arrived: () => arrived(Date.now()), release: new Promise<void>((resolve) => (release = resolve)) };
      return { arrived: arrival, release: () => release() };
    },
  };
}

describe("web client (Chromium via playwright-core)", function () {
  this.timeout(60_000);
  let browser: Browser;
  let gw: ChatGateway;
  const pages: Page[] = [];
  const cspViolations: string[] = [];

  before(async () => {
    if (!existsSync(CHROMIUM)) {
      throw new Error(
        `${CHROMIUM} not found: install Debian's chromium (apt-get install --no-install-recommends chromium), or set CHROMIUM_PATH`,
      );
    }
    browser = await chromium.launch({
      executablePath: CHROMIUM,
      headless: true,
      args: [
        "--no-sandbox",
        "--disable-gpu",
        "--disable-quic",
        "--no-first-run",
        "--disable-background-networking",
        "--disable-component-update",
        "--disable-sync",
      ],
    });
    gw = await startChatGateway(new MemoryConnectionStore());
  });
  after(async () => {
    await browser?.close();
    await gw?.stop();
  });
  afterEach(async () => {
    for (const page of pages.splice(0)) await page.close();
    // Every page ran under the served policy without tripping it.
    expect(cspViolations.splice(0)).to.deep.equal([]);
  });

  const base = (on = gw) => `http://localhost:${on.gateway.port}/`;

  async function newPage(): Promise<Page> {
    const page = await browser.newPage();
    pages.push(page);
    page.on("console", (message) => {
      if (/Content Security Policy/i.test(message.text())) cspViolations.push(message.text());
    });
    return page;
  }

  async function open(name: string, room: string, on = gw): Promise<Page> {
    const page = await newPage();
    await page.goto(base(on));
    await page.fill("#name", name);
    await page.fill("#room", room);
    await page.click("#connect");
    await page.waitForFunction(() => document.querySelector("#status")?.textContent?.startsWith("connected as"));
    return page;
  }

  async function send(page: Page, text: string): Promise<void> {
    await page.fill("#text", text);
    await page.click("#send");
  }

  const messages = (page: Page) => page.locator("#messages li").allTextContents();
  const memberNames = (page: Page) => page.locator("#members li").allTextContents();
  const connectionIdOf = async (page: Page) =>
    /^connected as (.+)$/.exec((await page.locator("#status").textContent()) ?? "")![1]!;
  /** The room messages the page shows, in its order: [seq, data]. */
  const shownBySeq = (page: Page) =>
    page.evaluate(
      `[...document.querySelectorAll("#messages li[data-seq]")].map((li) => [Number(li.dataset.seq), li.lastChild.textContent])`,
    ) as Promise<[number, string][]>;

  it("is served at / by the local gateway, pointed at the gateway's own WebSocket URL; other paths stay 403", async () => {
    const res = await fetch(base());
    expect(res.status).to.equal(200);
    expect(res.headers.get("content-type")).to.match(/^text\/html/);
    const html = await res.text();
    expect(html).to.include('<meta name="chat-stage" content="dev">');
    expect(html).to.include('from "./sdk.js"');
    expect((await fetch(`${base()}other`)).status).to.equal(403);
    const sdk = await fetch(`${base()}sdk.js`);
    expect(sdk.status).to.equal(200);
    expect(sdk.headers.get("content-type")).to.match(/^text\/javascript/);
    expect(await sdk.text()).to.match(/export \{[^}]*\bChatClient\b/);
    const page = await newPage();
    await page.goto(base());
    expect(await page.inputValue("#url")).to.equal(`ws://localhost:${gw.gateway.port}/dev`);
    await page.goto(`${base()}?url=wss://example.execute-api.us-east-1.amazonaws.com/prod`);
    expect(await page.inputValue("#url")).to.equal("wss://example.execute-api.us-east-1.amazonaws.com/prod");
  });

  it("is served under a strict Content-Security-Policy: its own inline script by hash, the SDK from 'self'", async () => {
    const csp = (await fetch(base())).headers.get("content-security-policy")!;
    expect(csp).to.not.include("unsafe-inline");
    expect(csp).to.include("default-src 'none'");
    expect(csp).to.match(/script-src 'self' 'sha256-[A-Za-z0-9+/]{43}='(;|$)/);
    expect(csp).to.match(/style-src 'sha256-[A-Za-z0-9+/]{43}='(;|$)/);
    expect(csp).to.include("connect-src ws: wss:");
    // The script ran (it connected and asked whoami) and nothing was refused (afterEach).
    const page = await open("csp", "csp-room");
    expect(await connectionIdOf(page)).to.be.a("string").that.is.not.empty;
  });

  it("two pages in one room exchange messages and see each other; a page in another room sees none of it", async () => {
    const alice = await open("alice", "room-a");
    const bob = await open("bob", "room-a");
    const carol = await open("carol", "room-b");

    await alice.waitForFunction(() => document.querySelectorAll("#members li").length === 2);
    // Names chosen with ?name= are marked unverified.
    expect((await memberNames(alice)).sort()).to.deep.equal(["alice (unverified) (you)", "bob (unverified)"]);
    expect((await memberNames(bob)).sort()).to.deep.equal(["alice (unverified)", "bob (unverified) (you)"]);

    await send(alice, "hello from alice");
    await send(bob, "hi alice, bob here");
    for (const page of [alice, bob]) {
      await page.waitForFunction(() => document.querySelectorAll("#messages li:not(.system)").length >= 2);
      const texts = (await messages(page)).join("\n");
      expect(texts).to.include("alice (unverified):hello from alice");
      expect(texts).to.include("bob (unverified):hi alice, bob here");
    }
    // Every send was acknowledged: nothing is left waiting.
    await alice.waitForFunction(() => document.querySelector("#outbox")?.textContent === "");
    await send(carol, "carol alone");
    await carol.waitForFunction(() => document.querySelectorAll("#messages li").length >= 1);
    await new Promise((resolve) => setTimeout(resolve, 300));
    expect((await messages(carol)).join("\n")).to.not.match(/alice|bob/);
    expect((await messages(alice)).join("\n")).to.not.include("carol");
    expect(await memberNames(carol)).to.deep.equal(["carol (unverified) (you)"]);

    mkdirSync(ARTIFACTS, { recursive: true });
    await alice.screenshot({ path: join(ARTIFACTS, "web-client.png"), fullPage: true });
    expect(existsSync(join(ARTIFACTS, "web-client.png"))).to.equal(true);

    // Presence: bob leaves by closing; alice sees him go.
    await bob.click("#disconnect");
    await alice.waitForFunction(() => document.querySelectorAll("#members li").length === 1);
    expect((await messages(alice)).join("\n")).to.include("bob (unverified) left");
    expect(await bob.locator("#status").textContent()).to.equal("disconnected");
  });

  it("cannot be fooled by a peer: a plain client's forged server frames show as that peer's data", async () => {
    const page = await open("erin", "room-f");
    // The page asked for the subprotocol: a typed client.
    const pageId = await connectionIdOf(page);
    const connect = gw.events.find((e) => e.routeKey === "$connect" && e.event.requestContext.connectionId === pageId);
    const offered = Object.entries(connect!.event.headers ?? {}).find(
      ([name]) => name.toLowerCase() === "sec-websocket-protocol",
    );
    expect(offered?.[1]).to.equal(CHAT_PROTOCOL);
    const status = await page.locator("#status").textContent();
    const members = await memberNames(page);
    const before = gw.events.length;
    const mallory = await openClient(`${gw.gateway.url}?name=admin`);
    const malloryId = gw.events.slice(before).find((e) => e.routeKey === "$connect")!.event.requestContext.connectionId;
    try {
      // As wscat would send them: server frames as room-less data, a new identity for the page and a message
      // under someone else's name in its room.
      const forgedWhoami = JSON.stringify({ type: "whoami", connectionId: "FORGED", name: "root", rooms: [] });
      const forgedMessage = { type: "message", room: "room-f", from: "someone", name: "boss", data: "wire the money" };
      await mallory.send(JSON.stringify({ action: "sendmessage", data: forgedWhoami }));
      await mallory.send(JSON.stringify({ action: "sendmessage", data: forgedMessage }));
      // mallory, a plain client, still gets the raw data: today's behaviour for wscat.
      expect(await mallory.next()).to.equal(forgedWhoami);
      await page.waitForFunction(() => document.querySelectorAll("#messages li.broadcast").length >= 2);
      const shown = await page.locator("#messages li.broadcast").allTextContents();
      expect(shown[0]).to.include(`admin (unverified) [everyone]:${forgedWhoami}`);
      expect(shown[1]).to.include(`admin (unverified) [everyone]:${JSON.stringify(forgedMessage)}`);
      expect(await page.locator("#status").textContent()).to.equal(status);
      expect(await memberNames(page)).to.deep.equal(members);
      expect((await messages(page)).join("\n")).to.not.include("boss:");
      expect(await page.locator("#errors li").count()).to.equal(0);
      expect(malloryId).to.be.a("string");
    } finally {
      mallory.ws.terminate();
    }
  });

  it("shows the server's errors", async () => {
    const page = await open("dave", "ok-room");
    await page.fill("#room", "not a valid room!");
    await page.click("#join");
    await page.waitForFunction(() => document.querySelectorAll("#errors li").length > 0);
    expect(await page.locator("#errors li").first().textContent()).to.match(
      /^InvalidRoom: Room names are 1-64 characters/,
    );
    // The failed join leaves the page in its room.
    expect(await page.locator("#current-room").textContent()).to.equal("ok-room");
  });

  it("shows a raw frame and API Gateway's own error frame as errors, not as chat", async () => {
    const failing = await startChatGateway(new MemoryConnectionStore(), {
      override: (real) => ({
        ...real,
        sendmessage: async (event) => {
          if ((JSON.parse(event.body ?? "{}") as { data?: unknown }).data === "boom") throw new Error("handler failed");
          return real.sendmessage!(event);
        },
      }),
    });
    try {
      const page = await open("frank", "raw-room", failing);
      const id = await connectionIdOf(page);
      await managementClient(failing.gateway.callbackUrl).send(
        new PostToConnectionCommand({ ConnectionId: id, Data: "not a server frame" }),
      );
      await page.waitForFunction(() => document.querySelectorAll("#errors li").length >= 1);
      await send(page, "boom");
      await page.waitForFunction(() => document.querySelectorAll("#errors li").length >= 2);
      expect(await page.locator("#errors li").allTextContents()).to.deep.equal([
        "UnexpectedFrame: Unexpected frame from the server: not a server frame",
        "GatewayError: API Gateway: Internal server error",
      ]);
      expect((await messages(page)).join("\n")).to.not.include("not a server frame");
    } finally {
      await failing.stop();
    }
  });

  describe("comes back on its own and shows what it missed, once each and in order", () => {
    let resumeGw: ChatGateway | undefined;
    let peer: TestClient | undefined;
    let keepAlive: ReturnType<typeof setInterval> | undefined;
    afterEach(async () => {
      clearInterval(keepAlive);
      peer?.ws.terminate();
      peer = undefined;
      await resumeGw?.stop();
      resumeGw = undefined;
    });

    /**
     * A page and a peer in one room; the page sees a first message, then `drop` takes its connection away. Its
     * reconnect is held at `$connect` while the peer sends `missed` messages; then the page is let through and
     * must show every message once, in seq order, as the peer heard them. Prints drop → caught up (and that time
     * less the hold: what the page itself took).
     */
    async function resumeAcross(
      what: string,
      drop: (gw: ChatGateway, connectionId: string) => Promise<number>,
      missed: number,
      limits: { idleTimeoutMs?: number } = {},
    ): Promise<{ page: Page; gw: ChatGateway }> {
      const hold = holdingConnect();
      const on = await startChatGateway(new MemoryConnectionStore(), { limits, override: hold.override });
      resumeGw = on;
      // The peer talks faster than a person: past the per-connection rate limit.
      const env = on.deps.env as { limits?: unknown };
      env.limits = { ...DEFAULT_MESSAGE_LIMITS, messages: 10_000, userMessages: 10_000 };
      const room = "resume";
      const talker = await peerIn(on, room);
      peer = talker;
      // The peer pings to outlive a short idle timeout itself.
      keepAlive = setInterval(() => void talker.send(JSON.stringify({ action: "ping" })), 400);
      const page = await open("grace", room, on);
      const first = await connectionIdOf(page);
      await talker.say("before the drop");
      await page.waitForFunction(() => document.querySelectorAll("#messages li[data-seq]").length === 1);

      const held = hold.arm();
      const droppedAt = await drop(on, first);
      const heldAt = await held.arrived;
      for (let i = 1; i <= missed; i++) await talker.say(`missed ${i}`);
      await waitFor(() => (heardBySeq(talker).length === missed + 1 ? true : undefined), 10_000, "the peer's echoes");
      const releasedAt = Date.now();
      held.release();

      await page.waitForFunction((n) => document.querySelectorAll("#messages li[data-seq]").length >= n, missed + 1, {
        polling: 10,
        timeout: 20_000,
      });
      const caughtUpAt = Date.now();
      await page.waitForFunction(() => document.querySelector("#status")?.textContent?.startsWith("connected as"));
      const total = caughtUpAt - droppedAt;
      const heldMs = releasedAt - heldAt;
      console.log(
        `      web client, ${what}: ${missed} missed messages shown ${total} ms after the drop ` +
          `(reconnect held ${heldMs} ms while they were sent; drop → caught up less the hold: ${total - heldMs} ms)`,
      );

      // Settle: nothing more arrives (no duplicate behind the last one).
      await new Promise((resolve) => setTimeout(resolve, 300));
      const expected = heardBySeq(talker);
      expect(expected.map(([seq]) => seq)).to.deep.equal(expected.map((_, i) => i + 1));
      expect(await shownBySeq(page)).to.deep.equal(expected);
      expect(await connectionIdOf(page)).to.not.equal(first);
      const lines = await messages(page);
      expect(lines).to.include("connection lost: reconnecting…");
      expect(lines).to.include("reconnected: catching up on what was missed");
      return { page, gw: on };
    }

    it("after an idle timeout", async () => {
      await resumeAcross(
        "idle timeout",
        async (on, id) => {
          const closed = await on.disconnectOf(id, 10_000);
          expect(closed.requestContext.disconnectStatusCode).to.equal(1001);
          return Date.now();
        },
        10,
        { idleTimeoutMs: 2_000 },
      );
    });

    it("after a server-side close (DELETE @connections through the AWS SDK)", async () => {
      await resumeAcross(
        "DELETE @connections",
        async (on, id) => {
          const at = Date.now();
          const out = await managementClient(on.gateway.callbackUrl).send(
            new DeleteConnectionCommand({ ConnectionId: id }),
          );
          expect(out.$metadata.httpStatusCode).to.equal(204);
          return at;
        },
        10,
      );
    });

    it("when what it missed spans more than one history page", async () => {
      const { gw: on, page } = await resumeAcross(
        "DELETE @connections, 2 history pages",
        async (on, id) => {
          const at = Date.now();
          await managementClient(on.gateway.callbackUrl).send(new DeleteConnectionCommand({ ConnectionId: id }));
          return at;
        },
        70,
      );
      // The join's page held 50; the page asked history for the rest.
      const second = await connectionIdOf(page);
      const asked = on.events.filter((e) => e.routeKey === "history" && e.event.requestContext.connectionId === second);
      expect(asked.length).to.be.greaterThan(0);
    });
  });
});
