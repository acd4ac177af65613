/**
 * Per-frame limits that `ws` cannot express. `ws`'s `maxPayload` bounds a whole message (the sum of its
 * fragments), but API Gateway also closes the connection with 1009 when any single frame exceeds 32 KB, and
 * with 1003 on a binary frame. This guard reads the frame headers of the raw inbound byte stream, alongside
 * `ws` (it is attached as a prepended `'data'` listener of the upgraded socket, so it sees each chunk before
 * `ws`'s parser does), and reports the first violation as soon as the offending frame's header arrives, before
 * its payload is buffered. It never alters the stream; payload bytes are only counted and skipped.
 *
 * Frame layout (RFC 6455 §5.2): byte 0 = FIN | RSV1-3 | opcode, byte 1 = MASK | 7-bit length, then a 16- or
 * 64-bit extended length, then a 4-byte masking key when MASK is set (always, from a client).
 */

export type FrameViolation =
  | { readonly kind: "binary" }
  | { readonly kind: "frame-too-big"; readonly frameBytes: number; readonly limit: number }
  | { readonly kind: "message-too-big"; readonly messageBytes: number; readonly limit: number };

const OPCODE_CONTINUATION = 0x0;
const OPCODE_BINARY = 0x2;
const FIRST_CONTROL_OPCODE = 0x8;

export class FrameGuard {
  private header = Buffer.alloc(14);
  private headerFill = 0;
  private skip = 0;
  private messageBytes = 0;
  private done = false;

  constructor(
    private readonly limits: { readonly maxFrameBytes: number; readonly maxMessageBytes: number },
    private readonly onViolation: (violation: FrameViolation) => void,
  ) {}

  /** Feeds raw bytes read from the client. Stops reading after the first violation. */
  push(chunk: Buffer): void {
    let offset = 0;
    while (!this.done && offset < chunk.length) {
      if (this.skip > 0) {
        const n = Math.min(this.skip, chunk.length - offset);
        this.skip -= n;
        offset += n;
        continue;
      }
      // Accumulate the header byte by byte: its length is known only after its first two bytes.
      this.header[this.headerFill++] = chunk[offset++]!;
      const needed = this.headerLength();
      if (needed === undefined || this.headerFill < needed) continue;
      this.onHeader();
    }
  }

  private headerLength(): number | undefined {
    if (this.headerFill < 2) return undefined;
    const len7 = this.header[1]! & 0x7f;
    const masked = (this.header[1]! & 0x80) !== 0;
    return 2 + (len7 === 126 ? 2 : len7 === 127 ? 8 : 0) + (masked ? 4 : 0);
  }

  private onHeader(): void {
    const fin = (this.header[0]! & 0x80) !== 0;
    const opcode = this.header[0]! & 0x0f;
    const len7 = this.header[1]! & 0x7f;
    const payload =
      len7 === 126 ? this.header.readUInt16BE(2) : len7 === 127 ? Number(this.header.readBigUInt64BE(2)) : len7;
    this.headerFill = 0;
    this.skip = payload;

    if (opcode >= FIRST_CONTROL_OPCODE) return; // ping, pong, close: at most 125 bytes, not data
    if (opcode === OPCODE_BINARY) return this.fail({ kind: "binary" });
    if (payload > this.limits.maxFrameBytes) {
      return this.fail({ kind: "frame-too-big", frameBytes: payload, limit: this.limits.maxFrameBytes });
    }
    this.messageBytes = opcode === OPCODE_CONTINUATION ? this.messageBytes + payload : payload;
    if (this.messageBytes > this.limits.maxMessageBytes) {
      return this.fail({
        kind: "message-too-big",
        messageBytes: this.messageBytes,
        limit: this.limits.maxMessageBytes,
      });
    }
    if (fin) this.messageBytes = 0;
  }

  private fail(violation: FrameViolation): void {
    this.done = true;
    this.onViolation(violation);
  }
}
