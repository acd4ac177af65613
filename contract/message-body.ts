/**
 * Parsing of inbound frames. API Gateway hands the raw frame text to the integration as `event.body`; it has
 * only routed on `action`, it has not validated anything else.
 */

export type ParsedBody =
  | { readonly ok: true; readonly value: Record<string, unknown> }
  | { readonly ok: false; readonly code: "InvalidJson" | "InvalidBody"; readonly message: string };

export function parseBody(body: string | undefined | null): ParsedBody {
  if (body === undefined || body === null || body === "") {
    return { ok: false, code: "InvalidJson", message: "The message is empty; send a JSON object." };
  }
  let value: unknown;
  try {
    value = JSON.parse(body);
  } catch {
    return { ok: false, code: "InvalidJson", message: "The message is not valid JSON; send a JSON object." };
  }
  if (typeof value !== "object" || value === null || Array.isArray(value)) {
    return {
      ok: false,
      code: "InvalidBody",
      message: 'The message must be a JSON object, e.g. {"action":"sendmessage","data":"hi"}.',
    };
  }
  return { ok: true, value: value as Record<string, unknown> };
}

/** The wire form of `data`: a string goes out as is, any other JSON value as its JSON text. */
export function encodeData(data: unknown): string {
  return typeof data === "string" ? data : JSON.stringify(data);
}
