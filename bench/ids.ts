/**
 * The bench's connection ids: deterministic from (seed, index), shaped like API Gateway's (15 base64url
 * characters and `=`), so the seeding process, the handler's process and the endpoint process agree on the same
 * ids, and on which of them are stale, without shipping 100,000 ids between processes.
 */
import { createHash } from "node:crypto";

export function benchId(seed: string, index: number): string {
  return `${createHash("sha1").update(`${seed}:${index}`).digest("base64url").slice(0, 15)}=`;
}

/** Every `staleEvery`-th id is stale: registered in the store, but the endpoint answers 410 for it. */
export function isStale(index: number, staleEvery: number): boolean {
  return staleEvery > 0 && index % staleEvery === staleEvery - 1;
}

export function staleCount(n: number, staleEvery: number): number {
  return staleEvery > 0 ? Math.floor(n / staleEvery) : 0;
}

export function* benchIds(seed: string, n: number): Generator<string> {
  for (let i = 0; i < n; i++) yield benchId(seed, i);
}
