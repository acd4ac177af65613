/** The SDK's `Checksum` shape over node:crypto: a hash, or an HMAC when constructed with a secret. */
import { createHash, createHmac, type Hash, type Hmac } from "node:crypto";

export class Sha256 {
  private readonly hash: Hash | Hmac;
  constructor(secret?: string | Uint8Array) {
    this.hash = secret === undefined ? createHash("sha256") : createHmac("sha256", secret);
  }
  update(data: string | Uint8Array): void {
    this.hash.update(data);
  }
  async digest(): Promise<Uint8Array> {
    return new Uint8Array(this.hash.digest());
  }
}
