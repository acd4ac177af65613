/**
 * `npm start` with an auth configuration behaves like the cloud: the deployed authorizer module runs in front of
 * `$connect` (401 without or with a bad token, 101 with a good one), and the configured rate limit applies. Also
 * how flags and the stack file combine into the local access settings.
 */
import { mkdtempSync, rmSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { expect } from "chai";
import { ENV } from "../contract/env";
import { AccessOptionError, readStackAccess, resolveLocalAccess } from "../local/access-options";
import { type CliRun, killCli, runCli } from "./support/cli-run";
import { openClient, waitFor } from "./support/gateway";
import { startTestIdp, type TestIdp } from "./support/jwks";

async function urlOf(cli: CliRun): Promise<string> {
  const early = cli.exited.then(({ code }) => {
    throw new Error(`the CLI exited (${code}) before starting:\n${cli.stderr}${cli.stdout}`);
  });
  await Promise.race([
    waitFor(() => (cli.stdout.includes("Ctrl-C to stop.") ? true : undefined), 15_000, "the banner"),
    early,
  ]);
  return /WebSocket:\s+(ws:\/\/\S+)/.exec(cli.stdout)![1]!;
}

async function status(url: string): Promise<number> {
  try {
    const client = await openClient(url);
    await client.close();
    return 101;
  } catch (error) {
    return (error as { statusCode?: number }).statusCode ?? -1;
  }
}

describe("npm start with auth and limits", function () {
  this.timeout(40_000);
  let idp: TestIdp;
  const running: CliRun[] = [];
  before(async () => {
    idp = await startTestIdp();
  });
  after(async () => {
    await idp?.close();
  });
  afterEach(async () => {
    await Promise.all(running.splice(0).map(killCli));
  });

  it("runs the deployed authorizer module in front of $connect and the configured rate limit", async () => {
    const cli = runCli([
      "--port",
      "0",
      "--auth",
      "jwt",
      "--auth-issuer",
      idp.settings().issuer,
      "--auth-audience",
      idp.settings().audience,
      "--auth-jwks-url",
      idp.jwksUrl,
      "--rate-limit-messages",
      "2",
      "--rate-limit-window",
      "86400",
    ]);
    running.push(cli);
    const url = await urlOf(cli);
    expect(cli.stdout).to.match(/Auth:\s+jwt from https:\/\/issuer\.test\/ for chat-api-test, token in \?token=/);
    expect(cli.stdout).to.match(/Limits:\s+2 messages per 86400 s per connection, data up to 32768 bytes/);
    expect(cli.stdout).to.include(`npx wscat -c "${url}?token=$JWT"`);

    expect(await status(url)).to.equal(401);
    expect(await status(`${url}?token=${encodeURIComponent(idp.unsigned())}`)).to.equal(401);
    const client = await openClient(`${url}?token=${encodeURIComponent(await idp.token({ sub: "cli-user" }))}`);
    await waitFor(
      () => (/AUTHORIZE\s+authorizer\s+\S+=\s+200 \d+ms principal=cli-user/.test(cli.stdout) ? true : undefined),
      5000,
      "the authorizer line",
    );
    for (const data of ["one", "two"]) {
      await client.send(JSON.stringify({ action: "sendmessage", data }));
      expect(await client.next(5000)).to.equal(data);
    }
    await client.send(JSON.stringify({ action: "sendmessage", data: "three" }));
    expect(await client.nextJson(5000)).to.include({ type: "error", code: "RateLimited", limit: 2 });
    await client.close();
    cli.child.kill("SIGINT");
    expect((await cli.exited).code).to.equal(0);
  });

  it("refuses --auth jwt without its settings with a usage error naming the flag (exit 2)", async () => {
    const cli = runCli(["--port", "0", "--auth", "jwt", "--auth-issuer", "x"]);
    running.push(cli);
    expect((await cli.exited).code).to.equal(2);
    expect(cli.stderr.trim()).to.match(
      /^local gateway: --auth jwt needs --auth-audience \(or websocket-chat:jwt.audience in the stack file\)$/,
    );
  });
});

describe("local access settings (flags and stack file)", () => {
  const jwt = {
    auth: "jwt",
    "auth-issuer": "https://i/",
    "auth-audience": "a",
    "auth-jwks-url": "http://127.0.0.1:1/jwks",
  };

  it("defaults to no authorizer and the default limits", () => {
    const access = resolveLocalAccess({});
    expect(access.auth).to.equal(undefined);
    expect(access.limits).to.deep.equal({
      messages: 20,
      windowSeconds: 10,
      maxDataBytes: 32_768,
      userMessages: 40,
      broadcasts: 10,
      connectionsPerUser: 5,
    });
    expect(access.env).to.deep.equal({
      [ENV.RATE_LIMIT_MESSAGES]: "20",
      [ENV.RATE_LIMIT_WINDOW_SECONDS]: "10",
      [ENV.MAX_DATA_BYTES]: "32768",
      [ENV.RATE_LIMIT_USER_MESSAGES]: "40",
      [ENV.RATE_LIMIT_BROADCASTS]: "10",
      [ENV.MAX_CONNECTIONS_PER_USER]: "5",
    });
  });

  it("builds the authorizer's identity source and AUTH_* variables", () => {
    const access = resolveLocalAccess({
      ...jwt,
      "auth-header": "Authorization",
      "auth-token-source": "header",
      "auth-algorithms": "ES256",
    });
    expect(access.auth!.identitySources).to.deep.equal(["route.request.header.Authorization"]);
    expect(access.env).to.include({
      [ENV.AUTH_ISSUER]: "https://i/",
      [ENV.AUTH_HEADER]: "Authorization",
      [ENV.AUTH_ALGORITHMS]: "ES256",
    });
    expect(resolveLocalAccess(jwt).auth!.identitySources).to.deep.equal(["route.request.querystring.token"]);
  });

  it("reads the stack file's keys, and flags win over them", () => {
    const dir = mkdtempSync(join(tmpdir(), "stack-auth-"));
    try {
      writeFileSync(
        join(dir, "Pulumi.qa.yaml"),
        [
          "config:",
          "  websocket-chat:auth: jwt",
          "  websocket-chat:jwt:",
          "    issuer: https://stack/",
          "    audience: stack-aud",
          "    jwksUrl: https://stack/jwks",
          "    algorithms: [ES256, RS256]",
          "  websocket-chat:rateLimit:",
          "    messages: 7",
          "  websocket-chat:store: dynamodb",
          "",
        ].join("\n"),
      );
      const stack = readStackAccess(dir, "qa");
      expect(stack).to.deep.equal({
        auth: "jwt",
        "jwt.issuer": "https://stack/",
        "jwt.audience": "stack-aud",
        "jwt.jwksUrl": "https://stack/jwks",
        "jwt.algorithms": '["ES256","RS256"]',
        "rateLimit.messages": "7",
      });
      const fromStack = resolveLocalAccess({}, stack);
      expect(fromStack.auth!.settings).to.include({ issuer: "https://stack/", audience: "stack-aud" });
      expect(fromStack.auth!.settings.algorithms).to.deep.equal(["ES256", "RS256"]);
      expect(fromStack.limits.messages).to.equal(7);
      const overridden = resolveLocalAccess(
        { "auth-audience": "flag-aud", "rate-limit-messages": "0", auth: "none" },
        stack,
      );
      expect(overridden.auth).to.equal(undefined);
      expect(overridden.limits.messages).to.equal(0);
      expect(resolveLocalAccess({ "auth-audience": "flag-aud" }, stack).auth!.settings.audience).to.equal("flag-aud");
      expect(readStackAccess(dir, "missing")).to.deep.equal({});
    } finally {
      rmSync(dir, { recursive: true, force: true });
    }
  });

  it("names the flag (and its stack key) for every bad value", () => {
    const cases: [Record<string, string>, RegExp][] = [
      [{ auth: "oauth" }, /--auth .*must be none or jwt/],
      [{ ...jwt, "auth-jwks-url": "ftp://x" }, /--auth-jwks-url .*jwt\.jwksUrl/],
      [{ ...jwt, "auth-token-source": "header" }, /--auth-token-source header needs --auth-header/],
      [{ ...jwt, "auth-algorithms": "HS256" }, /--auth-algorithms .*never accepted/],
      [{ "rate-limit-messages": "-5" }, /--rate-limit-messages .*rateLimit\.messages/],
      [{ "max-data-bytes": "131072" }, /--max-data-bytes .*1 to 131071/],
    ];
    for (const [flags, message] of cases)
      expect(() => resolveLocalAccess(flags), JSON.stringify(flags)).to.throw(AccessOptionError, message);
  });
});
