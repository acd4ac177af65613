/**
 * The error frames API Gateway itself sends on the socket (docs/local-gateway.md), byte for byte as
 * captured: a space after `"message":` and after each comma, none after `"connectionId":` / `"requestId":`.
 * They are distinct from this backend's own frames (contract/frames.ts), which carry `"type":"error"`.
 */

export type GatewayFrameMessage = "Forbidden" | "Internal server error" | "Endpoint request timed out";

export function gatewayErrorFrame(message: GatewayFrameMessage, connectionId: string, requestId: string): string {
  return `{"message": ${JSON.stringify(message)}, "connectionId":${JSON.stringify(connectionId)}, "requestId":${JSON.stringify(requestId)}}`;
}
