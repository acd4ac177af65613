/**
 * Who may talk to the local gateway from a browser. Browsers send `Origin` on a WebSocket handshake but apply no
 * CORS to it, so without this check any page a developer visits could open `ws://127.0.0.1:3001/dev` and read the
 * chat (cross-site WebSocket hijacking). A handshake is accepted when it carries no `Origin` (wscat, Node and
 * other non-browser clients send none), or the gateway's own origin (the web client it serves), or one allowed
 * with `--allow-origin`. API Gateway itself checks no `Origin`: this is a local-only safety
 * (docs/local-gateway.md#safe-by-default).
 *
 * The same names make up the `Host` values `@connections` answers to, which stops DNS rebinding (a page whose
 * own name resolves to 127.0.0.1 is same-origin with the gateway, but its `Host` is its own name).
 */
import { networkInterfaces, hostname as osHostname } from "node:os";

/** Where the gateway listens. */
export interface ListenAddress {
  readonly host: string;
  readonly port: number;
}

/** The wildcard addresses: listening on every interface. */
const WILDCARD_HOSTS = new Set(["0.0.0.0", "::", ""]);
const LOOPBACK_NAMES = ["localhost", "127.0.0.1", "[::1]"];

/** Whether `host` is reachable from this machine only (127.0.0.0/8, ::1, localhost). */
export function isLoopbackHost(host: string): boolean {
  const bare = host.replace(/^\[|\]$/g, "");
  return bare === "localhost" || bare === "::1" || /^127\.\d+\.\d+\.\d+$/.test(bare);
}

export function isWildcardHost(host: string): boolean {
  return WILDCARD_HOSTS.has(host);
}

/** `::1` → `[::1]`: a host name as it appears in a URL (and in `new URL(...).hostname`). */
function urlHostname(host: string): string {
  return host.includes(":") && !host.startsWith("[") ? `[${host}]` : host.toLowerCase();
}

/** The host names that mean this gateway: loopback, the bound address, and every interface when bound to all. */
export function ownHostnames(host: string): Set<string> {
  const names = new Set(LOOPBACK_NAMES);
  if (isWildcardHost(host)) {
    names.add(osHostname().toLowerCase());
    for (const list of Object.values(networkInterfaces())) {
      for (const address of list ?? []) names.add(urlHostname(address.address));
    }
  } else {
    names.add(urlHostname(host));
  }
  return names;
}

/** Parsed `--allow-origin` values: exact origins (`http://localhost:5173`), `null`, or `*` for any. */
export type AllowedOrigins = readonly string[];

/** Checks and normalises an `--allow-origin` value; throws a RangeError naming the problem. */
export function normaliseAllowedOrigin(value: string): string {
  if (value === "*" || value === "null") return value;
  let url: URL;
  try {
    url = new URL(value);
  } catch {
    throw new RangeError(
      `--allow-origin must be an origin such as http://localhost:5173, "null" or "*", got "${value}"`,
    );
  }
  if (url.origin === "null" || url.pathname !== "/" || url.search || url.hash || value.endsWith("/")) {
    throw new RangeError(`--allow-origin must be an origin (scheme://host[:port], no path), got "${value}"`);
  }
  return url.origin;
}

export type OriginVerdict = { readonly allow: true } | { readonly allow: false; readonly reason: string };

export class OriginPolicy {
  private readonly hostnames: Set<string>;
  private readonly allowed: Set<string>;

  constructor(
    private readonly address: ListenAddress,
    allowedOrigins: AllowedOrigins = [],
  ) {
    this.hostnames = ownHostnames(address.host);
    this.allowed = new Set(allowedOrigins.map(normaliseAllowedOrigin));
  }

  /** The verdict on a handshake's `Origin` header (absent: allowed). */
  checkOrigin(origin: string | undefined): OriginVerdict {
    if (origin === undefined) return { allow: true };
    if (this.allowed.has("*") || this.allowed.has(origin)) return { allow: true };
    if (this.isOwn(origin)) return { allow: true };
    return { allow: false, reason: `origin ${origin} is not this gateway's (allow it with --allow-origin ${origin})` };
  }

  /** Whether a request's `Host` names this gateway (any own name, the bound port). */
  isOwnHost(host: string | undefined): boolean {
    if (!host) return false;
    try {
      return this.isOwn(`http://${host}`);
    } catch {
      return false;
    }
  }

  private isOwn(origin: string): boolean {
    let url: URL;
    try {
      url = new URL(origin);
    } catch {
      return false;
    }
    const port = Number(url.port || (url.protocol === "https:" ? 443 : 80));
    return url.protocol === "http:" && port === this.address.port && this.hostnames.has(url.hostname);
  }
}
