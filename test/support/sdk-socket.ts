/** A `ws` WebSocket class for SDK tests that can keep the client away from the gateway on demand. */
import { WebSocket } from "ws";

/**
 * A WebSocket class whose connects fail while `offline` is set (they go to a port nothing listens on), so the SDK
 * stays away, retrying with backoff, for as long as a test needs.
 */
export function gatedSocket(gate: { offline: boolean }): typeof WebSocket {
  return class extends WebSocket {
    constructor(url: string, protocols?: string | string[]) {
      super(gate.offline ? "ws://127.0.0.1:9/" : url, protocols);
      // The refused connect reports an error event; the SDK decides on the close that follows.
      this.on("error", () => {});
    }
  } as typeof WebSocket;
}
