/**
 * The wire protocol of SPEC.md, spoken by real socket.io-client connections to a real
 * `roomcast serve` process: once in memory mode, once on a private Redis.
 */
import assert from "node:assert/strict";
import { after, before, describe, it } from "node:test";
import type { ChatMessage } from "../../src/protocol.js";
import { is, TestClient } from "../helpers/client.js";
import { Cleanup, withTimeout } from "../helpers/processes.js";
import { getJson, startServeIn, type Roomcast } from "../helpers/roomcast.js";

for (const mode of ["memory", "redis"] as const) {
  describe(`protocol (${mode})`, () => {
    const cleanup = new Cleanup();
    let server: Roomcast;
    let roomSeq = 0;
    /** A room of its own for each test, so tests do not see each other's traffic. */
    const freshRoom = () => `${mode}-room-${++roomSeq}`;
    const clients: TestClient[] = [];
    const client = (room: string | undefined, options = {}) => {
      const c = new TestClient(server.url, room, options);
      clients.push(c);
      return c;
    };
    const joined = async (room: string, username: string) => {
      const c = client(room);
      const ack = await c.join(username);
      assert.deepEqual(ack, { ok: true });
      return c;
    };

    before(async () => {
      server = await startServeIn(mode, ["--history-on-join", "50"], cleanup);
      cleanup.add(() => clients.forEach((c) => c.close()));
    });
    after(() => cleanup.run());

    it("takes room ids in any script, one room per name whatever its Unicode spelling", async () => {
      const tea = `茶室-${mode}`;
      const a = await joined(tea, "a");
      const composed = `caf\u00e9-${mode}`; // é as one code point
      const decomposed = `cafe\u0301-${mode}`; // e + combining acute: the same name
      const b = await joined(composed, "b");
      const c = await joined(decomposed, "c");
      await b.request("say", { text: "one room" });
      await c.waitFor((m) => m.event === "broadcast_say" && m.data.text === "one room");
      for (const room of ["नमस्ते", "Ωmega", "٣٤"]) await (await joined(room + mode, "x")).request("say", { text: "hi" });
      const rooms = await getJson<{ rooms: { room: string }[] }>(`${server.url}/api/rooms`);
      assert.ok(rooms.body.rooms.some((r) => r.room === tea));
      const history = await getJson<{ messages: { text: string }[] }>(`${server.url}/api/rooms/${encodeURIComponent(decomposed)}/history`);
      assert.deepEqual(history.body.messages.map((m) => m.text), ["one room"]);
      assert.equal(a.socket.connected, true);
    });

    it("refuses a missing or invalid room id with connect_error BAD_ROOM", async () => {
      for (const room of [undefined, "", "a b", "x".repeat(65), "茶".repeat(65), "<script>", "room/1", "a😀", "\u200b"]) {
        const c = client(room);
        const err = await withTimeout(
          new Promise<Error & { data?: unknown }>((resolve) => c.socket.once("connect_error", resolve)),
          5000,
          `connect_error for ${String(room)}`,
        );
        assert.deepEqual((err.data as { code: string }).code, "BAD_ROOM", `room ${String(room)}`);
        assert.equal(c.socket.connected, false);
      }
      const ok = client("A-z_0.9:x");
      await ok.connected();
    });

    it("speaks the article's client flow: join emitted before the connection is up, then say", async () => {
      const room = freshRoom();
      const watcher = await joined(room, "watcher");
      // The article's client: io.connect(...); socket.emit('join', {username}) at once, no ack;
      // say sends {text, type, username}: type and username are ignored.
      const article = client(room);
      article.socket.emit("join", { username: "小明" });
      const join = await watcher.waitFor((m) => m.event === "join" && m.data.username === "小明");
      assert.equal(typeof (join.data as { ts: number }).ts, "number");
      article.socket.emit("say", { text: "大家好", type: 0, username: "impostor" });
      const said = await watcher.waitFor(is("broadcast_say"));
      assert.equal(said.data.username, "小明");
      assert.equal(said.data.text, "大家好");
      assert.match(said.data.id, /^\d+-\d+$/);
      // the sender is included
      const echo = await article.waitFor(is("broadcast_say"));
      assert.deepEqual(echo.data, said.data);
    });

    it("serves a long-polling client (no WebSocket) as well as a WebSocket one", async () => {
      const room = freshRoom();
      const ws = await joined(room, "ws");
      const polling = client(room, { transports: ["polling"] });
      assert.deepEqual(await polling.join("polling"), { ok: true });
      assert.equal(polling.socket.io.engine.transport.name, "polling");
      await polling.request("say", { text: "over polling" });
      await ws.request("say", { text: "over websocket" });
      for (const c of [ws, polling]) {
        const said = await c.waitForSaid(2);
        assert.deepEqual(said.map((m) => m.text), ["over polling", "over websocket"]);
      }
      const page = await fetch(`${server.url}/healthz`);
      assert.equal(page.status, 200, "and the process still serves HTTP");
    });

    it("answers join with history and presence to the joiner only, and announces it to everyone", async () => {
      const room = freshRoom();
      const ann = await joined(room, "ann");
      await ann.request("say", { text: "first" });
      const bob = client(room);
      assert.deepEqual(await bob.join("bob"), { ok: true });
      // history and presence arrive before the ack
      const history = bob.inbox.find(is("history"));
      assert.deepEqual(history?.data.messages.map((m) => m.text), ["first"]);
      assert.equal(history?.data.truncated, false);
      const presence = bob.inbox.find(is("presence"));
      assert.deepEqual(presence?.data.users, [
        { username: "ann", connections: 1 },
        { username: "bob", connections: 1 },
      ]);
      await bob.waitFor((m) => m.event === "join" && m.data.username === "bob");
      await ann.waitFor((m) => m.event === "join" && m.data.username === "bob");
      // ann got one history and one presence: her own join's, not bob's
      assert.equal(ann.inbox.filter(is("history")).length, 1);
      assert.equal(ann.inbox.filter(is("presence")).length, 1);
    });

    it("refuses a second join on one connection with ALREADY_JOINED", async () => {
      const c = await joined(freshRoom(), "ann");
      const again = await c.request("join", { username: "ann2" });
      assert.equal(again.ok, false);
      assert.equal(!again.ok && again.error.code, "ALREADY_JOINED");
    });

    it("refuses say and typing before join with NOT_JOINED", async () => {
      const c = client(freshRoom());
      for (const [event, payload] of [
        ["say", { text: "hi" }],
        ["typing", { typing: true }],
      ] as const) {
        const ack = await c.request(event, payload);
        assert.deepEqual(!ack.ok && ack.error.code, "NOT_JOINED", event);
      }
    });

    it("validates usernames: 1–32 characters after trimming, no control characters", async () => {
      const room = freshRoom();
      for (const username of ["", "   ", "x".repeat(33), "a\u0000b", "tab\there", 42, null, { a: 1 }, ["x"]]) {
        const c = client(room);
        const ack = await c.request("join", { username });
        assert.equal(!ack.ok && ack.error.code, "BAD_USERNAME", JSON.stringify(username));
        assert.equal(typeof (!ack.ok && ack.error.message), "string");
      }
      // trimmed, and 32 characters counted as characters (CJK, emoji), not UTF-16 units
      const c = client(room);
      assert.deepEqual(await c.join(`  ${"😀".repeat(32)}  `), { ok: true });
      const join = await c.waitFor(is("join"));
      assert.equal(join.data.username, "😀".repeat(32));
    });

    it("validates text: 1–2000 characters, not only white space", async () => {
      const c = await joined(freshRoom(), "ann");
      for (const text of ["", "  \n\t ", "x".repeat(2001), 5, null, ["a"], { t: 1 }, "bell\u0007"]) {
        const ack = await c.request("say", { text });
        assert.equal(!ack.ok && ack.error.code, "BAD_TEXT", JSON.stringify(text).slice(0, 40));
      }
      const long = await c.request("say", { text: "字".repeat(2000) });
      assert.equal(long.ok, true);
      const multi = await c.request("say", { text: "line one\nline two" });
      assert.equal(multi.ok, true);
      assert.match((multi.ok && multi.id) || "", /^\d+-\d+$/);
    });

    it("refuses payloads that are not objects with BAD_PAYLOAD", async () => {
      const c = client(freshRoom());
      for (const payload of ["ann", 42, null, [1, 2], true]) {
        const ack = await c.request("join", payload);
        assert.equal(!ack.ok && ack.error.code, "BAD_PAYLOAD", `join ${JSON.stringify(payload)}`);
      }
      const noPayload = (await c.socket.timeout(5000).emitWithAck("join")) as { ok: boolean; error?: { code: string } };
      assert.equal(noPayload.error?.code, "BAD_PAYLOAD");
      const badSince = await c.request("join", { username: "ann", since: "yesterday" });
      assert.equal(!badSince.ok && badSince.error.code, "BAD_PAYLOAD");
      assert.deepEqual(await c.join("ann"), { ok: true }, "a refused join may be tried again");
      for (const payload of ["hi", 1, null, []]) {
        for (const event of ["say", "typing"]) {
          const ack = await c.request(event, payload);
          assert.equal(!ack.ok && ack.error.code, "BAD_PAYLOAD", `${event} ${JSON.stringify(payload)}`);
        }
      }
      const badTyping = await c.request("typing", { typing: "yes" });
      assert.equal(!badTyping.ok && badTyping.error.code, "BAD_PAYLOAD");
    });

    it("answers a refused event without an ack callback with an `error` message to that socket only", async () => {
      const room = freshRoom();
      const other = await joined(room, "other");
      const c = await joined(room, "ann");
      c.socket.emit("say", { text: "" });
      const error = await c.waitFor(is("error"));
      assert.equal(error.data.code, "BAD_TEXT");
      c.socket.emit("say", { text: "after the error" });
      await other.waitFor((m) => m.event === "broadcast_say" && m.data.text === "after the error");
      assert.equal(other.inbox.filter(is("error")).length, 0);
    });

    it("shows typing to the other members only", async () => {
      const room = freshRoom();
      const ann = await joined(room, "ann");
      const bob = await joined(room, "bob");
      assert.deepEqual(await ann.request("typing", { typing: true }), { ok: true });
      const typing = await bob.waitFor(is("typing"));
      assert.deepEqual(typing.data, { username: "ann", typing: true });
      // a message after the typing notice: once ann has it, she would have had her typing too
      await ann.request("say", { text: "done" });
      await ann.waitFor(is("broadcast_say"));
      assert.equal(ann.inbox.filter(is("typing")).length, 0);
    });

    it("broadcasts broadcast_quit when a joined member disconnects, and nothing for one that never joined", async () => {
      const room = freshRoom();
      const ann = await joined(room, "ann");
      const lurker = client(room);
      await lurker.connected();
      lurker.close();
      const bob = await joined(room, "bob");
      bob.close();
      const quit = await ann.waitFor(is("broadcast_quit"));
      assert.equal(quit.data.username, "bob");
      assert.equal(ann.inbox.filter(is("broadcast_quit")).length, 1);
    });

    it("keeps rooms apart", async () => {
      const [r1, r2] = [freshRoom(), freshRoom()];
      const a = await joined(r1, "a");
      const b = await joined(r2, "b");
      await a.request("say", { text: "only r1" });
      await b.request("say", { text: "only r2" });
      await a.waitFor(is("broadcast_say"));
      await b.waitFor(is("broadcast_say"));
      assert.deepEqual(a.said().map((m) => m.text), ["only r1"]);
      assert.deepEqual(b.said().map((m) => m.text), ["only r2"]);
    });

    it("sends the last 50 messages on join with truncated, and exactly the missed ones after `since`", async () => {
      const room = freshRoom();
      // three senders, each within its burst of 20 (the rate limit is per connection)
      const senders = [await joined(room, "s1"), await joined(room, "s2"), await joined(room, "s3")];
      const sent: string[] = [];
      for (let i = 0; i < 60; i++) {
        const ack = await senders[Math.floor(i / 20)]!.request("say", { text: `m${i}` });
        assert.ok(ack.ok, JSON.stringify(ack));
        sent.push(ack.id!);
      }
      const fresh = await joined(room, "fresh");
      const history = fresh.inbox.find(is("history"))!;
      assert.equal(history.data.messages.length, 50);
      assert.equal(history.data.messages[0]!.text, "m10");
      assert.equal(history.data.truncated, true);
      const back = client(room);
      assert.deepEqual(await back.join("back", sent[54]), { ok: true });
      const missed = back.inbox.find(is("history"))!;
      assert.deepEqual(missed.data.messages.map((m: ChatMessage) => m.text), ["m55", "m56", "m57", "m58", "m59"]);
      assert.equal(missed.data.truncated, false);
    });

    it("rate-limits a connection to its burst, then RATE_LIMITED, without hurting others", async () => {
      const room = freshRoom();
      const flooder = await joined(room, "flooder");
      const calm = await joined(room, "calm");
      const acks = await Promise.all(Array.from({ length: 40 }, (_, i) => flooder.request("say", { text: `f${i}` })));
      const accepted = acks.filter((a) => a.ok).length;
      const limited = acks.filter((a) => !a.ok && a.error.code === "RATE_LIMITED").length;
      assert.ok(accepted >= 20 && accepted <= 22, `accepted ${accepted}`);
      assert.equal(accepted + limited, 40);
      assert.equal((await calm.request("say", { text: "still here" })).ok, true);
    });

    it("lists a username once in presence with its number of connections (several tabs)", async () => {
      const room = freshRoom();
      await joined(room, "ann");
      await joined(room, "ann");
      const third = await joined(room, "bob");
      const presence = third.inbox.find(is("presence"))!;
      assert.deepEqual(presence.data.users, [
        { username: "ann", connections: 2 },
        { username: "bob", connections: 1 },
      ]);
      const { body } = await getJson<{ rooms: { room: string; users: number }[] }>(`${server.url}/api/rooms`);
      assert.deepEqual(body.rooms.find((r) => r.room === room), { room, users: 2 });
    });

    it("serves the page, health, metrics and the JSON API", async () => {
      const room = freshRoom();
      const c = await joined(room, "ann");
      await c.request("say", { text: "<b>not bold</b>" });
      await c.waitFor(is("broadcast_say"));

      const page = await fetch(`${server.url}/`);
      assert.equal(page.status, 200);
      assert.match(page.headers.get("content-security-policy") ?? "", /script-src 'self'/);
      assert.match(await page.text(), /<title>roomcast<\/title>/);

      assert.deepEqual(await getJson(`${server.url}/healthz`), { status: 200, body: { status: "ok" } });
      const history = await getJson<{ messages: ChatMessage[] }>(`${server.url}/api/rooms/${room}/history?limit=5`);
      assert.equal(history.status, 200);
      assert.deepEqual(history.body.messages.map((m) => [m.username, m.text]), [["ann", "<b>not bold</b>"]]);
      assert.equal((await getJson(`${server.url}/api/rooms/bad%20room/history`)).status, 400);
      assert.equal((await getJson(`${server.url}/api/rooms/${room}/history?limit=0`)).status, 400);
      const stats = await getJson<{ nodes: number; connections: number }>(`${server.url}/api/stats`);
      assert.equal(stats.body.nodes, 1);
      assert.ok(stats.body.connections >= 1);
      assert.equal((await getJson(`${server.url}/nope`)).status, 404);
      assert.equal((await fetch(`${server.url}/api/stats`, { method: "POST" })).status, 405);

      const metrics = await (await fetch(`${server.url}/metrics`)).text();
      for (const name of [
        "roomcast_connections",
        "roomcast_rooms",
        "roomcast_messages_received_total",
        "roomcast_messages_delivered_total",
        'roomcast_refusals_total{code="BAD_ROOM"}',
        "roomcast_redis_up 1",
        "process_cpu_seconds_total",
      ]) {
        assert.ok(metrics.includes(name), `metrics has ${name}`);
      }
      const received = Number(/^roomcast_messages_received_total (\d+)/m.exec(metrics)?.[1]);
      assert.ok(received >= 1);
    });
  });
}
