/**
 * `npm start`'s console: one readable line per event (local time, kind, route, connection, status, duration),
 * the handlers' JSON log lines condensed, colours only when asked for (a terminal, FORCE_COLOR; never with
 * NO_COLOR), and `--json-logs` printing what it always printed. Checked on the formatter and on the CLI's stdout.
 */
import { expect } from "chai";
import { condenseLogLine, eventLine, printable, useColor } from "../local/console-format";
import { bannerOf, type CliRun, cleanEnv, killCli, lineMatching, runCli } from "./support/cli-run";
import { openClient, type TestClient } from "./support/gateway";

const ESC = String.fromCharCode(27);
const ANSI = new RegExp(`${ESC}\\[\\d+m`);
const PLAIN = { color: false };

describe("npm start's console", function () {
  this.timeout(40_000);

  describe("the format", () => {
    it("prints one event line: time, kind, route, connection, status, duration", () => {
      const at = new Date(2026, 0, 2, 12, 0, 1, 234);
      const fields = {
        kind: "MESSAGE",
        route: "sendmessage",
        connectionId: "Kx3vZc1ToAMCJWg=",
        status: "200",
        durationMs: 12,
      };
      expect(eventLine(PLAIN, fields, at)).to.equal("12:00:01.234 MESSAGE    sendmessage  Kx3vZc1ToAMCJWg= 200 12ms");
      expect(eventLine(PLAIN, { ...fields, status: "403", note: "no route" }, at)).to.equal(
        "12:00:01.234 MESSAGE    sendmessage  Kx3vZc1ToAMCJWg= 403 12ms no route",
      );
      const coloured = eventLine({ color: true }, { ...fields, status: "500" }, at);
      expect(coloured).to.match(ANSI);
      expect(coloured).to.include("\u001b[31m500\u001b[0m", "5xx in red");
      expect(coloured.replace(new RegExp(ANSI.source, "g"), "")).to.equal(
        eventLine(PLAIN, { ...fields, status: "500" }, at),
      );
    });

    it("condenses a handler's JSON line to level, route, message and the fields that say something", () => {
      const line = JSON.stringify({
        level: "info",
        time: new Date(2026, 0, 2, 12, 0, 1, 240).toISOString(),
        message: "broadcast",
        route: "sendmessage",
        connectionId: "Kx3vZc1ToAMCJWg=",
        requestId: "abc",
        outcome: "ok",
        targets: 3,
        delivered: 3,
        gone: 0,
        failed: 0,
        truncated: false,
        errors: [],
        note: "two words",
      });
      expect(condenseLogLine(PLAIN, line)).to.equal(
        '12:00:01.240    info sendmessage broadcast outcome=ok targets=3 delivered=3 note="two words"',
      );
      const error = JSON.stringify({
        level: "error",
        time: new Date().toISOString(),
        message: "post failed",
        error: { name: "TimeoutError", message: "took 3000 ms", stack: "at …" },
      });
      expect(condenseLogLine(PLAIN, error)).to.match(/ error - post failed error="TimeoutError: took 3000 ms"$/);
      for (const other of ["plain text", '{"not":"a log line"}', "{broken", ""]) {
        expect(condenseLogLine(PLAIN, other), other).to.equal(other);
      }
    });

    it("writes control and invisible characters from requests and handlers as escapes, never raw", () => {
      // What a web page can put in a path it POSTs to @connections: an OSC 52 clipboard write, a forged line.
      const hostile = "\u001b]52;c;cHduZWQ=\u0007\u001b[2K\r\nFAKE 200\u009b\u202e";
      const style = { color: false };
      const event = eventLine(style, {
        kind: "POST",
        route: "@connections",
        connectionId: hostile,
        status: "403",
        durationMs: 1,
        note: hostile,
      });
      const handler = condenseLogLine(
        style,
        JSON.stringify({
          level: "warn",
          time: new Date().toISOString(),
          message: hostile,
          route: hostile,
          name: hostile,
        }),
      );
      for (const line of [event, handler]) {
        expect(line).to.not.match(/[\p{Cc}\p{Cf}]/u);
        expect(line).to.include("\\u001b]52;c;");
      }
      expect(printable("Kx3vZc1ToAMCJWg=")).to.equal("Kx3vZc1ToAMCJWg=");
    });

    it("colours on a terminal, with FORCE_COLOR, never with NO_COLOR", () => {
      expect(useColor({}, true)).to.equal(true);
      expect(useColor({}, false)).to.equal(false);
      expect(useColor({ FORCE_COLOR: "1" }, false)).to.equal(true);
      expect(useColor({ FORCE_COLOR: "0" }, true)).to.equal(false);
      expect(useColor({ NO_COLOR: "1" }, true)).to.equal(false);
      expect(useColor({ NO_COLOR: "1", FORCE_COLOR: "1" }, true)).to.equal(false);
      expect(useColor({ NO_COLOR: "" }, true)).to.equal(true);
    });
  });

  describe("through npm start", () => {
    let cli: CliRun | undefined;
    const clients: TestClient[] = [];
    afterEach(async () => {
      for (const c of clients.splice(0)) c.ws.terminate();
      if (cli) await killCli(cli);
    });

    async function chat(args: string[], env: NodeJS.ProcessEnv): Promise<CliRun> {
      cli = runCli(["--port", "0", "--no-reload", ...args], undefined, env);
      const { url } = await bannerOf(cli);
      const a = await openClient(url);
      const b = await openClient(url);
      clients.push(a, b);
      await a.send(JSON.stringify({ action: "sendmessage", data: "hello" }));
      expect(await b.next(5000)).to.equal("hello");
      return cli;
    }

    it("prints readable event lines and condensed handler lines, without colour when stdout is not a terminal", async () => {
      const run = await chat([], cleanEnv());
      const event = await lineMatching(run, /MESSAGE\s+sendmessage/);
      expect(event).to.match(/^\d\d:\d\d:\d\d\.\d{3} MESSAGE {4}sendmessage {2}\S{16} 200 \d+ms$/);
      const broadcast = await lineMatching(run, / info sendmessage broadcast /);
      expect(broadcast).to.match(
        /^\d\d:\d\d:\d\d\.\d{3} {4}info sendmessage broadcast outcome=ok targets=2 delivered=2 /,
      );
      expect(broadcast, "zeros left out").to.not.match(/gone=0|failed=0/);
      expect(run.stdout).to.match(/^\d\d:\d\d:\d\d\.\d{3} CONNECT {4}\$connect {5}\S{16} 200 \d+ms$/m);
      expect(run.stdout, "no raw JSON").to.not.match(/^\{"level"/m);
      expect(run.stdout, "no colour").to.not.match(ANSI);
    });

    it("colours with FORCE_COLOR=1 but not when NO_COLOR is set too", async () => {
      const forced = await chat([], cleanEnv({ FORCE_COLOR: "1" }));
      await lineMatching(forced, /MESSAGE/);
      expect(forced.stdout).to.match(ANSI);
      await killCli(forced);
      const refused = await chat([], cleanEnv({ FORCE_COLOR: "1", NO_COLOR: "1" }));
      await lineMatching(refused, /MESSAGE/);
      expect(refused.stdout).to.not.match(ANSI);
    });

    it("--json-logs keeps the ISO-timestamped event lines and the handlers' JSON lines as they are", async () => {
      const run = await chat(["--json-logs"], cleanEnv({ FORCE_COLOR: "1" }));
      const event = await lineMatching(run, /MESSAGE\s+sendmessage/);
      expect(event).to.match(/^\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d\.\d{3}Z MESSAGE {4}sendmessage {2}\S{16} 200 \d+ms$/);
      const json = await lineMatching(run, /^\{"level":"info".*"message":"broadcast"/);
      expect(JSON.parse(json)).to.include({ message: "broadcast", route: "sendmessage", targets: 2, gone: 0 });
      expect(run.stdout).to.not.match(ANSI);
    });
  });
});
