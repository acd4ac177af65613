/**
 * The pieces of "only the server speaks for the server", one by one: server ids (contract/frames.ts), display
 * names without bidi or zero-width characters (chat/rooms.ts), and what `$connect` keeps and answers for the
 * subprotocol (handlers/connect.ts). End to end: test/gateway-envelope.test.ts and test/web-client.test.ts.
 */
import { expect } from "chai";
import { isFanOutShardEvent } from "../broadcast/broadcast";
import { taggedAttempt, taggedPages, untaggingRemover } from "../broadcast/protocol-audience";
import { chosenProtocol, connectionRecord, offeredProtocols } from "../chat/connection-record";
import { displayName, whoOf } from "../chat/rooms";
import { PROTOCOL_ATTRIBUTE } from "../contract/connection-store";
import { broadcastFrame, CHAT_PROTOCOL, directFrame, messageFrame, messageStamp } from "../contract/frames";
import { preparePayload } from "../runtime/connections-api";
import type { WebSocketEvent } from "../runtime/event";

function connectEvent(extra: Partial<WebSocketEvent> = {}, authorizer?: Record<string, unknown>): WebSocketEvent {
  return {
    requestContext: {
      routeKey: "$connect",
      eventType: "CONNECT",
      extendedRequestId: "x",
      requestTime: "05/Dec/2026:07:00:00 +0000",
      messageDirection: "IN",
      stage: "dev",
      connectedAt: 1_767_225_600_000,
      requestTimeEpoch: 1_767_225_600_000,
      identity: { sourceIp: "127.0.0.1" },
      requestId: "req-1",
      domainName: "localhost",
      connectionId: "Kx3vZc1ToAMCJWg=",
      apiId: "local",
      ...(authorizer ? { authorizer } : {}),
    },
    isBase64Encoded: false,
    ...extra,
  };
}

describe("server ids (messageStamp)", () => {
  it("is a 26-character base32 id, time first, stable for one request and distinct across requests", () => {
    const a = messageStamp("request-a", 1_767_225_600_000);
    expect(a.id).to.match(/^[0-9A-HJKMNP-TV-Z]{26}$/);
    expect(a.ts).to.equal(1_767_225_600_000);
    expect(messageStamp("request-a", 1_767_225_600_000)).to.deep.equal(a);
    expect(messageStamp("request-b", 1_767_225_600_000).id).to.not.equal(a.id);
    expect(messageStamp("request-b", 1_767_225_600_000).id.slice(0, 10)).to.equal(a.id.slice(0, 10));
  });

  it("sorts as text in time order", () => {
    const times = [0, 1, 31, 32, 1_000, 1_767_225_600_000, 1_767_225_600_001, 2 ** 47];
    const ids = times.map((t, i) => messageStamp(`r${i}`, t).id);
    expect([...ids].sort()).to.deep.equal(ids);
  });

  it("is in every chat message frame, with its ts", () => {
    const stamp = messageStamp("r", 1_767_225_601_000);
    const who = { connectionId: "c1", name: "alice", nameVerified: true };
    for (const frame of [
      messageFrame("lobby", who, "hi", stamp),
      directFrame(who, "hi", stamp),
      broadcastFrame(who, "hi", stamp),
    ]) {
      expect(JSON.parse(frame)).to.include({
        id: stamp.id,
        ts: stamp.ts,
        from: "c1",
        name: "alice",
        nameVerified: true,
      });
    }
    expect(JSON.parse(broadcastFrame({ connectionId: "c2" }, { type: "whoami" }, stamp))).to.deep.equal({
      type: "broadcast",
      id: stamp.id,
      from: "c2",
      data: { type: "whoami" },
      ts: stamp.ts,
    });
  });
});

describe("display names", () => {
  it("drop bidi overrides, isolates and marks, and zero-width characters", () => {
    const hidden = ["\u202a", "\u202b", "\u202c", "\u202d", "\u202e", "\u2066", "\u2067", "\u2068", "\u2069"];
    const marks = ["\u200e", "\u200f", "\u061c", "\u200b", "\u200c", "\u200d", "\u2060", "\ufeff"];
    for (const c of [...hidden, ...marks]) {
      expect(displayName(`al${c}ice`), `U+${c.codePointAt(0)!.toString(16)}`).to.equal("alice");
    }
    expect(displayName("\u202e\u200b")).to.equal(undefined);
    expect(displayName(" \u2066 bob \u2069 ")).to.equal("bob");
    // Letters of right-to-left scripts stay: only the invisible controls go.
    expect(displayName("\u05e9\u05dc\u05d5\u05dd")).to.equal("\u05e9\u05dc\u05d5\u05dd");
  });

  it("drop line separators, soft hyphens, invisible operators, tags, fillers, variation selectors and lone surrogates", () => {
    const invisible = [
      "\u2028", // line separator: a name that starts a new line can forge one
      "\u2029",
      "\u180e",
      "\u00ad",
      "\u2061",
      "\u2064",
      "\u034f",
      "\ufe0f",
      "\ufff9",
      "\ufffb",
      "\u{e0041}", // a tag character: "alice" and "al<tag>ice" look the same
      "\u3164", // the Hangul filler shows as blank
      "\ud800", // a lone surrogate
      "\ue000", // private use
    ];
    for (const c of invisible) {
      expect(displayName(`al${c}ice`), `U+${c.codePointAt(0)!.toString(16)}`).to.equal("alice");
    }
    expect(displayName("alice\u2028[server] maintenance")).to.equal("alice[server] maintenance");
    expect(displayName("\u3164\u3164")).to.equal(undefined);
  });

  it("are NFC-normalised and keep at most two combining marks per character", () => {
    // "é" spelled e + U+0301 and as U+00E9 are one name.
    expect(displayName("jose\u0301")).to.equal("jos\u00e9");
    // z + U+0301 composes to U+017A; two of the other marks stay.
    expect(displayName(`z${"\u0301".repeat(31)}`)).to.equal("\u017a\u0301\u0301");
    // Scripts that need marks keep them: Devanagari "namaste".
    expect(displayName("\u0928\u092e\u0938\u094d\u0924\u0947")).to.equal("\u0928\u092e\u0938\u094d\u0924\u0947");
  });

  it("say whether they are verified", () => {
    expect(whoOf("c", { name: "a" })).to.deep.equal({ connectionId: "c", name: "a", nameVerified: false });
    expect(whoOf("c", { name: "a", nameVerified: "true" })).to.deep.equal({
      connectionId: "c",
      name: "a",
      nameVerified: true,
    });
    expect(whoOf("c", {})).to.deep.equal({ connectionId: "c" });
  });
});

describe("$connect and the subprotocol", () => {
  const offering = (value: string) => connectEvent({ headers: { "Sec-WebSocket-Protocol": value } });

  it("chooses ours only when it is offered, in any position, and reads every header", () => {
    expect(chosenProtocol(offering(CHAT_PROTOCOL))).to.equal(CHAT_PROTOCOL);
    expect(chosenProtocol(offering(`chat.v2, ${CHAT_PROTOCOL}`))).to.equal(CHAT_PROTOCOL);
    expect(chosenProtocol(offering("chat.v2"))).to.equal(undefined);
    expect(chosenProtocol(offering("websocket-chat.v10"))).to.equal(undefined);
    expect(chosenProtocol(connectEvent())).to.equal(undefined);
    const multi = connectEvent({
      headers: { "sec-websocket-protocol": "b" },
      multiValueHeaders: { "sec-websocket-protocol": ["a", `b, ${CHAT_PROTOCOL}`] },
    });
    expect(offeredProtocols(multi)).to.deep.equal(["a", "b", CHAT_PROTOCOL]);
  });

  it("keeps the protocol and who named the connection; an authorizer cannot set either", () => {
    const typed = connectionRecord(
      connectEvent({
        headers: { "Sec-WebSocket-Protocol": CHAT_PROTOCOL },
        queryStringParameters: { name: "x\u202ey" },
      }),
      60,
    );
    expect(typed.attributes).to.deep.equal({ name: "xy", [PROTOCOL_ATTRIBUTE]: CHAT_PROTOCOL });
    const authorized = connectionRecord(
      connectEvent(
        { queryStringParameters: { name: "mallory" } },
        {
          principalId: "u-1",
          name: "Alice\u200b",
          protocol: CHAT_PROTOCOL,
          nameVerified: "true",
        },
      ),
      60,
    );
    expect(authorized.attributes).to.deep.equal({ principalId: "u-1", name: "Alice", nameVerified: "true" });
    const self = connectionRecord(
      connectEvent({ queryStringParameters: { name: "bob" } }, { nameVerified: "true" }),
      60,
    );
    expect(self.attributes).to.deep.equal({ name: "bob" });
    expect(connectionRecord(connectEvent(), 60).attributes).to.equal(undefined);
  });
});

describe("two-payload broadcasts (broadcast/protocol-audience.ts, shard format version 2)", () => {
  it("tags each id with its payload and strips the tag for posts and removals", async () => {
    async function* listing() {
      yield { plain: ["a", "b"], typed: ["c"] };
      yield { plain: [], typed: [] };
      yield { plain: [], typed: ["d"] };
    }
    const pages: string[][] = [];
    for await (const page of taggedPages(listing())) pages.push(page);
    expect(pages).to.deep.equal([["pa", "pb", "tc"], ["td"]]);
    const posted: [string, string][] = [];
    const attempt = taggedAttempt(
      {
        attempt: async (id, payload) => {
          posted.push([id, payload.body.toString()]);
          return { kind: "delivered" } as never;
        },
      },
      { plain: preparePayload("raw"), typed: preparePayload('{"type":"broadcast"}') },
    );
    await attempt("pa", 100);
    await attempt("tc", 100);
    expect(posted).to.deep.equal([
      ["a", "raw"],
      ["c", '{"type":"broadcast"}'],
    ]);
    const removed: string[][] = [];
    const remover = untaggingRemover({
      removeMany: async (ids) => {
        removed.push([...ids]);
        return [];
      },
    });
    await remover.removeMany(["pa", "tc"]);
    expect(removed).to.deep.equal([["a", "c"]]);
  });

  it("accepts a version 2 shard only with its envelope", () => {
    const base = { type: "fanout-shard", broadcastId: "b", shard: 1, data: "raw", connectionIds: ["pa"] };
    expect(isFanOutShardEvent({ ...base, version: 1 })).to.equal(true);
    expect(isFanOutShardEvent({ ...base, version: 2, typedData: "{}" })).to.equal(true);
    expect(isFanOutShardEvent({ ...base, version: 2 })).to.equal(false);
    expect(isFanOutShardEvent({ ...base, version: 3, typedData: "{}" })).to.equal(false);
  });
});
