/**
 * Inputs that round-trip: ids are checked by their real range, a refused join leaves no trace,
 * text and names are what members see live and what history returns, byte for byte; the HTTP
 * side of long-polling closes a session that sends an oversized packet, as WebSocket does.
 */
import assert from "node:assert/strict";
import { after, before, describe, it } from "node:test";
import { is, TestClient } from "../helpers/client.js";
import { Cleanup, eventually } from "../helpers/processes.js";
import { RawPolling } from "../helpers/raw.js";
import { getJson, metric, startServeIn, type Roomcast } from "../helpers/roomcast.js";

const FAMILY = "👨‍👩‍👧‍👦"; // one grapheme of 7 code points

for (const mode of ["memory", "redis"] as const) {
  describe(`inputs that round-trip (${mode})`, () => {
    const cleanup = new Cleanup();
    let server: Roomcast;
    let roomSeq = 0;
    const freshRoom = () => `inputs-${mode}-${++roomSeq}`;
    const client = (room: string) => {
      const c = new TestClient(server.url, room);
      cleanup.add(() => c.close());
      return c;
    };
    const joined = async (room: string, username: string) => {
      const c = client(room);
      assert.deepEqual(await c.join(username), { ok: true });
      return c;
    };

    before(async () => {
      server = await startServeIn(mode, [], cleanup);
    });
    after(() => cleanup.run());

    it("refuses `since` values outside a stream id's range with BAD_PAYLOAD, and the refused join leaves no trace", async () => {
      const room = freshRoom();
      const watcher = await joined(room, "watcher");
      const c = client(room);
      for (const since of ["99999999999999999999-0", "1-99999999999999999999", "18446744073709551616-0", "-1-0", "1-", "abc"]) {
        for (let attempt = 0; attempt < 3; attempt++) {
          const ack = await c.request("join", { username: "ghost", since });
          assert.equal(!ack.ok && ack.error.code, "BAD_PAYLOAD", `since ${since}`);
        }
      }
      // the largest id there is: a valid id that nothing follows
      const max = "18446744073709551615-18446744073709551615";
      assert.deepEqual(await c.request("join", { username: "edge", since: max }), { ok: true });
      const history = await c.waitFor(is("history"));
      assert.deepEqual(history.data.messages, []);
      // the watcher saw one join: the one that was accepted, no ghost
      await watcher.waitFor((m) => m.event === "join" && m.data.username === "edge");
      const joins = watcher.inbox.filter(is("join")).map((m) => m.data.username);
      assert.deepEqual(joins, ["watcher", "edge"]);
      const presence = await getJson<{ users: { username: string }[] }>(`${server.url}/api/rooms/${room}/presence`);
      assert.deepEqual(presence.body.users.map((u) => u.username), ["edge", "watcher"]);
    });

    it("takes ids with leading zeros as the same id", async () => {
      const room = freshRoom();
      const a = await joined(room, "a");
      const first = await a.request("say", { text: "one" });
      assert.ok(first.ok && first.id);
      await a.request("say", { text: "two" });
      const [ms, seq] = first.id.split("-");
      const b = client(room);
      assert.deepEqual(await b.request("join", { username: "b", since: `000${ms}-00${seq}` }), { ok: true });
      const history = await b.waitFor(is("history"));
      assert.deepEqual(history.data.messages.map((m) => m.text), ["two"]);
      assert.equal(history.data.truncated, false);
    });

    it("`since: \"0-0\"` means from the start: every kept message, truncated only when older ones are gone", async () => {
      const room = freshRoom();
      const a = await joined(room, "a");
      for (const text of ["one", "two", "three"]) assert.ok((await a.request("say", { text })).ok);
      const b = client(room);
      assert.deepEqual(await b.request("join", { username: "b", since: "0-0" }), { ok: true });
      const history = await b.waitFor(is("history"));
      assert.deepEqual(history.data.messages.map((m) => m.text), ["one", "two", "three"]);
      assert.equal(history.data.truncated, false);
    });

    it("refuses lone surrogates in text and names, so live and history are the same text", async () => {
      const room = freshRoom();
      const a = await joined(room, "a");
      for (const text of ["a\ud800b", "\udc00", "end\ud83d"]) {
        const ack = await a.request("say", { text });
        assert.equal(!ack.ok && ack.error.code, "BAD_TEXT", JSON.stringify(text));
      }
      const bad = client(room);
      const ack = await bad.request("join", { username: "x\ud800" });
      assert.equal(!ack.ok && ack.error.code, "BAD_USERNAME");
      // well-formed text of every kind comes back from history exactly as it went out live
      const texts = ["a😀b", "e\u0301", `${FAMILY}`, "中文 · العربية", "tab\there\nline"];
      for (const text of texts) assert.ok((await a.request("say", { text })).ok);
      const live = (await a.waitForSaid(texts.length)).map((m) => m.text);
      const stored = (await getJson<{ messages: { text: string }[] }>(`${server.url}/api/rooms/${room}/history`)).body.messages.map((m) => m.text);
      assert.deepEqual(live, texts);
      assert.deepEqual(stored, texts);
    });

    it("counts a name's length in graphemes, and refuses names and texts made only of invisible characters", async () => {
      const room = freshRoom();
      const ok = client(room);
      assert.deepEqual(await ok.request("join", { username: FAMILY.repeat(32) }), { ok: true }, "32 family emoji are 32 characters");
      const long = client(room);
      const refused = await long.request("join", { username: FAMILY.repeat(33) });
      assert.equal(!refused.ok && refused.error.code, "BAD_USERNAME");
      for (const username of ["\u200b", "\u200b\u200c\u200d", "\ufeff", " \u2060 "]) {
        const c = client(room);
        const ack = await c.request("join", { username });
        assert.equal(!ack.ok && ack.error.code, "BAD_USERNAME", JSON.stringify(username));
      }
      for (const text of ["\u200b", "\u200d\u200d", " \u2060\n"]) {
        const ack = await ok.request("say", { text });
        assert.equal(!ack.ok && ack.error.code, "BAD_TEXT", JSON.stringify(text));
      }
      // a zero-width joiner inside visible text is part of the text
      assert.ok((await ok.request("say", { text: `a\u200db` })).ok);
    });

    it("closes a long-polling session that sends an oversized packet, as WebSocket does", async () => {
      const room = freshRoom();
      const watcher = await joined(room, "watcher");
      const before = await metric(server.url, "roomcast_connections");
      const big = await RawPolling.open(server.url, room);
      await eventually(async () => ((await metric(server.url, "roomcast_connections")) === before + 1 ? true : undefined), 5000, "the polling session");
      assert.equal(await big.post(`42["say",{"text":"${"z".repeat(100_000)}"}]`), 413);
      await eventually(async () => ((await metric(server.url, "roomcast_connections")) === before ? true : undefined), 5000, "the session to be closed");
      assert.match(await big.poll(), /^HTTP 400/);
      assert.equal((await watcher.request("say", { text: "unaffected" })).ok, true);
    });
  });
}
