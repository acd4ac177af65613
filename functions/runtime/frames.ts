/**
 * Error frames this backend sends to a client. API Gateway's own frames ({"message": "Forbidden", ...}) are
 * distinct: ours always have `"type": "error"` and a stable `code` clients can switch on.
 */

export type ErrorCode =
  | "InvalidJson"
  | "InvalidBody"
  | "MissingAction"
  | "UnknownAction"
  | "MissingData"
  | "PayloadTooLarge";

export interface ErrorFrame {
  readonly type: "error";
  readonly code: ErrorCode;
  readonly message: string;
  readonly [extra: string]: unknown;
}

export function errorFrame(code: ErrorCode, message: string, extra: Record<string, unknown> = {}): string {
  const frame: ErrorFrame = { type: "error", code, message, ...extra };
  return JSON.stringify(frame);
}
