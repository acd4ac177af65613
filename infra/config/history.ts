/**
 * The room-history part of the stack configuration (the object key `history`): the bounds of each room's history and
 * the send-reference window. Parsed here, collected into parse.ts's problem list; turned into the runtime's HISTORY_*
 * and SEND_REF_WINDOW_SECONDS environment by `historySettingsEnv` (contract/room-history.ts).
 */
import type { HistorySettings } from "../../contract/room-history";
import type { ConfigReader } from "./values";

export function parseHistory(read: ConfigReader): { history: HistorySettings } {
  return {
    history: {
      maxEntries: read.integer("history.maxEntries"),
      maxAgeSeconds: read.integer("history.maxAgeSeconds"),
      sendRefWindowSeconds: read.integer("history.sendRefWindowSeconds"),
    },
  };
}
