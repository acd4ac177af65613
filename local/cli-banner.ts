/**
 * What `npm start` prints once the gateway listens: where to connect, what runs behind it, and a command to try.
 */
import { basename } from "node:path";
import type { LocalAccess } from "./access-options";
import type { StackSettings } from "./pulumi-stack";
import type { PreparedStore, StoreChoice } from "./store-setup";

export interface BannerFacts {
  readonly stage: string;
  readonly url: string;
  readonly callbackUrl: string;
  readonly store: PreparedStore;
  readonly choice: StoreChoice;
  readonly access: LocalAccess;
  readonly stackSettings: StackSettings;
}

export function banner(facts: BannerFacts): string {
  const { stage, url, callbackUrl, store, choice, access, stackSettings } = facts;
  const lines = [
    `websocket-chat local gateway (stage "${stage}")`,
    `  WebSocket:    ${url}`,
    `  Callback URL: ${callbackUrl}   (@connections management API, CALLBACK_URL of the handlers)`,
    `  Store:        ${store.kind} (${choice.reason}): ${store.description}`,
    `  Auth:         ${access.description.auth}`,
    `  Limits:       ${access.description.limits}`,
  ];
  if (stackSettings.store && stackSettings.store !== store.kind) {
    lines.push(
      `  Note:         ${basename(stackSettings.file ?? "")} deploys with store ${stackSettings.store}; --store ${stackSettings.store} runs it locally`,
    );
  }
  lines.push(
    `  Try:          npx wscat -c ${connectCommand(url, access)}   then   {"action":"sendmessage","data":"hello"}`,
  );
  lines.push("Ctrl-C to stop.");
  return lines.join("\n");
}

/** wscat's arguments, with the token where the authorizer looks for it. */
function connectCommand(url: string, access: LocalAccess): string {
  const tokenSource = access.auth?.tokenSource;
  if (tokenSource?.kind === "query") return `"${url}?${tokenSource.name}=$JWT"`;
  if (tokenSource?.kind === "header") return `${url} -H "${tokenSource.name}: Bearer $JWT"`;
  return url;
}
