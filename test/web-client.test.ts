/**
 * The browser client (web/index.html) in a real browser: Playwright (playwright-core, no bundled browsers) driving
 * Debian's Chromium at /usr/bin/chromium against a local gateway running the real handlers. CI installs chromium
 * (.ci/run); without it this suite FAILS, naming what is missing. A screenshot goes to test-artifacts/.
 */
import { existsSync, mkdirSync } from "node:fs";
import { join } from "node:path";
import { expect } from "chai";
import { type Browser, chromium, type Page } from "playwright-core";
import { CHAT_PROTOCOL } from "../contract/frames";
import { MemoryConnectionStore } from "../stores/memory";
import { type ChatGateway, openClient, startChatGateway } from "./support/gateway";

/** The page's `document`, as the functions run in the browser (waitForFunction) see it; tsconfig has no DOM lib. */
declare const document: {
  querySelector(selector: string): { textContent: string | null } | null;
  querySelectorAll(selector: string): { length: number };
};

const CHROMIUM = process.env.CHROMIUM_PATH ?? "/usr/bin/chromium";
const ARTIFACTS = join(__dirname, "..", "test-artifacts");

describe("web client (Chromium via playwright-core)", function () {
  this.timeout(60_000);
  let browser: Browser;
  let gw: ChatGateway;
  const pages: Page[] = [];

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
  });

  const base = () => `http://localhost:${gw.gateway.port}/`;

  async function open(name: string, room: string): Promise<Page> {
    const page = await browser.newPage();
    pages.push(page);
    await page.goto(base());
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

  it("is served at / by the local gateway, pointed at the gateway's own WebSocket URL; other paths stay 403", async () => {
    const res = await fetch(base());
    expect(res.status).to.equal(200);
    expect(res.headers.get("content-type")).to.match(/^text\/html/);
    const html = await res.text();
    expect(html).to.include('<meta name="chat-stage" content="dev">');
    expect((await fetch(`${base()}other`)).status).to.equal(403);
    const page = await browser.newPage();
    pages.push(page);
    await page.goto(base());
    expect(await page.inputValue("#url")).to.equal(`ws://localhost:${gw.gateway.port}/dev`);
    await page.goto(`${base()}?url=wss://example.execute-api.us-east-1.amazonaws.com/prod`);
    expect(await page.inputValue("#url")).to.equal("wss://example.execute-api.us-east-1.amazonaws.com/prod");
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
  });

  it("cannot be fooled by a peer: a plain client's forged server frames show as that peer's data", async () => {
    const page = await open("erin", "room-f");
    expect(await page.evaluate("ws.protocol")).to.equal(CHAT_PROTOCOL);
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
  });
});
