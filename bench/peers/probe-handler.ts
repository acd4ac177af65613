/**
 * The probe handlers every target runs, byte for byte, so a ratio compares gateways, not handlers: one CommonJS
 * file with no dependencies (each peer resolves modules differently), written into the target's folder with a
 * `probe-config.json` that says where that target's `@connections` API is.
 *
 * - `connect`: 200, or the status in `?status=` (the fidelity check of a refused handshake).
 * - `message` (`$default` and the custom routes `echo` and `broadcast`): `{"action":"broadcast","seq":n}` asks the
 *   harness's registry for the connection ids and POSTs `{"broadcast":n}` to each through `@connections`, 50 at a
 *   time; anything else is echoed to its sender with the event's `requestContext`.
 * - `disconnect`: tells the registry which connection went, with the event's fields.
 *
 * `@connections` calls are SigV4-signed with node:crypto (the local gateway refuses unsigned ones, the peers accept
 * both) and sent with the global fetch.
 */
import { mkdirSync, writeFileSync } from "node:fs";
import { join } from "node:path";

export interface ProbeConfig {
  /** `@connections` base URL: the SDK's `endpoint`, to which `/@connections/{id}` is appended. */
  readonly callback: string;
  /** The harness's registry (registry.ts). */
  readonly registry: string;
  readonly region: string;
  readonly accessKeyId: string;
  readonly secretAccessKey: string;
  /** How many `@connections` POSTs a broadcast keeps in flight. */
  readonly concurrency: number;
}

export const PROBE_FILE = "probe-handler.js";

const PROBE_SOURCE = `"use strict";
// Written by the websocket-chat peers bench: the same probe handlers for every gateway it compares.
const { createHash, createHmac } = require("node:crypto");
const config = require("./probe-config.json");

const sha256 = (data) => createHash("sha256").update(data).digest("hex");
const hmac = (key, data) => createHmac("sha256", key).update(data).digest();
const escape = (s) => encodeURIComponent(s).replace(/[!'()*]/g, (c) => "%" + c.charCodeAt(0).toString(16).toUpperCase());

function connections(method, connectionId, body) {
  const url = new URL(config.callback + "/@connections/" + encodeURIComponent(connectionId));
  const date = new Date().toISOString().replace(/[-:]/g, "").replace(/\\.\\d{3}/, "");
  const day = date.slice(0, 8);
  const payloadHash = sha256(body || "");
  const headers = { host: url.host, "x-amz-content-sha256": payloadHash, "x-amz-date": date };
  const names = Object.keys(headers).sort();
  const canonical = [
    method,
    url.pathname.split("/").map(escape).join("/"),
    "",
    names.map((n) => n + ":" + headers[n] + "\\n").join(""),
    names.join(";"),
    payloadHash,
  ].join("\\n");
  const scope = day + "/" + config.region + "/execute-api/aws4_request";
  const toSign = "AWS4-HMAC-SHA256\\n" + date + "\\n" + scope + "\\n" + sha256(canonical);
  const key = hmac(hmac(hmac(hmac("AWS4" + config.secretAccessKey, day), config.region), "execute-api"), "aws4_request");
  const signature = createHmac("sha256", key).update(toSign).digest("hex");
  headers.authorization =
    "AWS4-HMAC-SHA256 Credential=" + config.accessKeyId + "/" + scope + ", SignedHeaders=" + names.join(";") +
    ", Signature=" + signature;
  delete headers.host;
  return fetch(url, { method, headers, body, signal: AbortSignal.timeout(20000) }).then(async (res) => {
    await res.arrayBuffer();
    return res.status;
  });
}

async function report(path, body) {
  try {
    const res = await fetch(config.registry + path, { method: "POST", body: JSON.stringify(body), signal: AbortSignal.timeout(5000) });
    await res.arrayBuffer();
  } catch {}
}

exports.connect = async (event) => {
  const status = Number((event.queryStringParameters || {}).status);
  return { statusCode: status >= 200 && status < 600 ? status : 200 };
};

exports.disconnect = async (event) => {
  const ctx = event.requestContext || {};
  await report("/disconnected", {
    connectionId: ctx.connectionId,
    eventType: ctx.eventType,
    routeKey: ctx.routeKey,
    disconnectStatusCode: ctx.disconnectStatusCode,
  });
  return { statusCode: 200 };
};

exports.message = async (event) => {
  const ctx = event.requestContext || {};
  let parsed;
  try {
    parsed = JSON.parse(event.body);
  } catch {}
  if (parsed && parsed.action === "broadcast") {
    const res = await fetch(config.registry + "/ids", { signal: AbortSignal.timeout(10000) });
    const ids = await res.json();
    const payload = JSON.stringify({ broadcast: parsed.seq });
    let next = 0;
    let failed = 0;
    const worker = async () => {
      while (next < ids.length) {
        const id = ids[next++];
        const status = await connections("POST", id, payload).catch(() => 0);
        if (status !== 200) failed++;
      }
    };
    await Promise.all(Array.from({ length: Math.min(config.concurrency, ids.length) }, worker));
    await report("/broadcasted", { seq: parsed.seq, targets: ids.length, failed });
    return { statusCode: 200 };
  }
  await connections("POST", ctx.connectionId, JSON.stringify({ echo: event.body, requestContext: ctx }));
  return { statusCode: 200 };
};
`;

/** Writes the probe handlers and their config into `dir`; returns the handler file's path. */
export function writeProbe(dir: string, config: ProbeConfig): string {
  mkdirSync(dir, { recursive: true });
  writeFileSync(join(dir, "probe-config.json"), `${JSON.stringify(config, null, 2)}\n`);
  writeFileSync(join(dir, PROBE_FILE), PROBE_SOURCE);
  return join(dir, PROBE_FILE);
}

/** Route keys of the probe API besides `$connect`, `$disconnect` and `$default`. */
export const PROBE_ROUTES = ["echo", "broadcast"] as const;
