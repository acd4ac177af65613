/**
 * What `npm start` prints once the gateway listens: where to connect, what runs behind it, and a command to try.
 */
import { basename } from "node:path";
import type { LocalAccess } from "./access-options";
import { isLoopbackHost, isWildcardHost } from "./origin-policy";
import type { StackSettings } from "./pulumi-stack";
import type { PreparedStore, StoreChoice } from "./store-setup";

export interface BannerFacts {
  readonly stage: string;
  readonly url: string;
  readonly webClientUrl: string;
  readonly callbackUrl: string;
  /** The interface listened on. */
  readonly host: string;
  /** `--allow-origin` values. */
  readonly allowedOrigins: readonly string[];
  readonly hotReload: boolean;
  /** `--workers`: handler worker threads, 0 for the gateway's own thread. */
  readonly workers: number;
  readonly store: PreparedStore;
  readonly choice: StoreChoice;
  readonly access: LocalAccess;
  readonly stackSettings: StackSettings;
}

export function banner(facts: BannerFacts): string {
  const { stage, url, webClientUrl, callbackUrl, store, choice, access, stackSettings } = facts;
  const lines = [
    `websocket-chat local gateway (stage "${stage}")`,
    `  Web client:   open ${webClientUrl} in a browser to chat`,
    `  WebSocket:    ${url}`,
    `  Callback URL: ${callbackUrl}   (@connections management API, CALLBACK_URL of the handlers)`,
    `  Store:        ${store.kind} (${choice.reason}): ${store.description}`,
    `  Auth:         ${access.description.auth}`,
    `  Limits:       ${access.description.limits}`,
    `  Origins:      ${originsLine(facts.allowedOrigins)}`,
    `  Workers:      ${workersLine(facts.workers)}`,
    `  Reload:       ${facts.hotReload ? "on: edits to handlers, stores and shared modules apply to the next event (local/ needs a restart)" : "off (--no-reload)"}`,
  ];
  if (stackSettings.store && stackSettings.store !== store.kind) {
    lines.push(
      `  Note:         ${basename(stackSettings.file ?? "")} deploys with store ${stackSettings.store}; --store ${stackSettings.store} runs it locally`,
    );
  }
  lines.push(
    `  Try:          npx wscat -c ${connectCommand(url, access)}   then   {"action":"sendmessage","data":"hello"}`,
  );
  lines.push(...exposureWarning(facts.host, callbackUrl));
  lines.push("Ctrl-C to stop.");
  return lines.join("\n");
}

function workersLine(workers: number): string {
  if (workers === 0) return "none: handlers run in the gateway's thread (--workers 0)";
  return `${workers} handler thread${workers === 1 ? "" : "s"} beside the gateway's (--workers)`;
}

function originsLine(allowed: readonly string[]): string {
  const own = "this gateway's page and clients without Origin (wscat, Node)";
  if (allowed.includes("*")) return "any (--allow-origin *): every web page you visit can connect";
  return allowed.length === 0 ? own : `${own}, and ${allowed.join(", ")}`;
}

/**
 * What listening beyond loopback exposes, said before anyone connects: on loopback only this machine can reach the
 * port; on any other address, everyone who can reach it over the network can.
 */
export function exposureWarning(host: string, callbackUrl: string): string[] {
  if (isLoopbackHost(host)) return [];
  const where = isWildcardHost(host) ? "every network interface" : host;
  return [
    `  WARNING:      listening on ${where}, not loopback: anyone who can reach this port on your network can`,
    "                open WebSocket connections and read every broadcast (no auth unless --auth jwt), call",
    `                @connections (${callbackUrl.replace(/^http:\/\/[^/]+/, "")}/@connections/{id}) to post to, inspect or close any`,
    '                connection (signed requests only, and the accepted secret is the well-known "local" unless',
    "                AWS_SECRET_ACCESS_KEY is set), and load the web client. Use --host 127.0.0.1 unless you mean it.",
  ];
}

/** wscat's arguments, with the token where the authorizer looks for it. */
function connectCommand(url: string, access: LocalAccess): string {
  const tokenSource = access.auth?.tokenSource;
  if (tokenSource?.kind === "query") return `"${url}?${tokenSource.name}=$JWT"`;
  if (tokenSource?.kind === "header") return `${url} -H "${tokenSource.name}: Bearer $JWT"`;
  return url;
}
