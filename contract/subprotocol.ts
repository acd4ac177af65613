/**
 * The WebSocket subprotocol of typed clients, alone in a file that imports nothing: the one value the client SDK
 * takes from the contract (test/layers.test.ts allows this file only), so the SDK and the server cannot disagree
 * on it and the SDK's bundle pulls in nothing of the server. contract/frames.ts re-exports it.
 */

/**
 * The WebSocket subprotocol of typed clients (`Sec-WebSocket-Protocol` at connect; API Gateway developer guide, "Set
 * up a $connect route that requires a WebSocket subprotocol"). Versioned: a frame layout that is not backward
 * compatible gets a new name, and `$connect` answers the newest one the client offers.
 */
export const CHAT_PROTOCOL = "websocket-chat.v1";
