/**
 * websocket-chat's client SDK: a WebSocket chat client that reconnects on its own, resumes every room without a
 * gap or a duplicate, and sends each message once. ESM, no runtime dependencies; browsers and Node.js 20+ (with the
 * global `WebSocket`, or the `ws` package's class passed as `WebSocket`).
 *
 * @example
 * const chat = new ChatClient({ url: "wss://abc123.execute-api.us-east-1.amazonaws.com/prod", name: "alice" });
 * chat.on("message", (m) => console.log(m.name, m.data));
 * chat.connect();
 * await chat.join("lobby");
 * const ack = await chat.send("lobby", "hello"); // { id, seq }
 */
export { type BackoffOptions, fullJitterDelay } from "./backoff";
export { ChatError } from "./chat-error";
export { ChatClient, type ChatClientOptions, type ChatEvents, type SocketFactory, type SocketLike } from "./client";
export type { ConnectionState } from "./connection-state";
export type { Ack } from "./outbox";
export { CHAT_SUBPROTOCOL, type MemberInfo, type MessageEvent } from "./protocol";
