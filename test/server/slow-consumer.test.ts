/**
 * One client must never grow the process: a member that does not read what it is sent (over
 * WebSocket or long-polling), or floods refused events while not reading, is closed once what
 * waits for it in the process passes --max-queue-bytes; members that read see no change, and the
 * closed member recovers everything with `since`.
 */
import assert from "node:assert/strict";
import { after, before, describe, it } from "node:test";
import { is, TestClient } from "../helpers/client.js";
import { Cleanup, eventually } from "../helpers/processes.js";
import { eventPacket, RawPolling, RawWebSocket } from "../helpers/raw.js";
import { metric, startServe, startServeIn, type Roomcast } from "../helpers/roomcast.js";

const CAP = 256 * 1024;
const BIG = 60_000; // characters per message: the kernel's buffers fill after a few dozen

for (const mode of ["memory", "redis"] as const) {
  describe(`slow consumers (${mode})`, () => {
    const cleanup = new Cleanup();
    let server: Roomcast;
    let roomSeq = 0;
    const freshRoom = () => `slow-${mode}-${++roomSeq}`;
    const joined = async (room: string, username: string) => {
      const c = new TestClient(server.url, room);
      cleanup.add(() => c.close());
      assert.deepEqual(await c.join(username), { ok: true });
      return c;
    };
    const slowConsumers = () => metric(server.url, "roomcast_slow_consumers_total");
    const connections = () => metric(server.url, "roomcast_connections");

    before(async () => {
      const flags = ["--max-queue-bytes", String(CAP), "--max-text-length", "100000", "--max-payload", "200000", "--rate-limit", "1000", "--rate-burst", "1000"];
      server = await startServeIn(mode, flags, cleanup);
    });
    after(() => cleanup.run());

    it("closes a WebSocket member that stops reading, tells it SLOW_CONSUMER, and it recovers with since", async () => {
      const room = freshRoom();
      const base = await connections();
      const reader = await joined(room, "reader");
      const sender = await joined(room, "sender");
      const lazy = await RawWebSocket.open(server.url, room);
      cleanup.add(() => lazy.close());
      lazy.send(eventPacket("join", { username: "lazy" }, 1));
      await lazy.waitFor((f) => f.startsWith("431"), "the join's ack");
      const before = await slowConsumers();
      lazy.pause();
      const texts: string[] = [];
      // ~9 MB for a member that reads nothing: far past the kernel's buffers and the cap
      for (let i = 0; i < 150; i++) {
        const text = `${String(i).padStart(4, "0")}${"x".repeat(BIG)}`;
        texts.push(text);
        const ack = await sender.request("say", { text });
        assert.ok(ack.ok, `message ${i} accepted`);
        if ((await slowConsumers()) > before) break;
      }
      await eventually(async () => ((await slowConsumers()) === before + 1 ? true : undefined), 10_000, "the lazy member to be closed as a slow consumer");
      // it reads again at once: what was queued reaches it, then the refusal, then the end
      lazy.resume();
      await lazy.closed;
      const errors = lazy.frames.filter((f) => f.includes('"event":"error"'));
      assert.equal(errors.length, 1, "one error frame");
      assert.match(errors[0]!, /"code":"SLOW_CONSUMER"/);
      // the members that read lost nothing
      const all = await reader.waitForSaid(texts.length, 20_000);
      assert.deepEqual(all.map((m) => m.text), texts);
      await eventually(async () => ((await connections()) === base + 2 ? true : undefined), 5000, "the lazy connection to be gone");
      // rejoining with the last id it read, it gets exactly the rest
      const got = lazy.frames
        .filter((f) => f.includes('"event":"broadcast_say"'))
        .map((f) => (JSON.parse(f.slice(2)) as [string, { data: { id: string; text: string } }])[1].data);
      assert.deepEqual(got.map((m) => m.text), texts.slice(0, got.length), "a prefix, in order");
      const back = new TestClient(server.url, room);
      cleanup.add(() => back.close());
      const since = got.at(-1)?.id;
      assert.deepEqual(await back.request("join", since === undefined ? { username: "lazy" } : { username: "lazy", since }), { ok: true });
      const history = await back.waitFor(is("history"));
      assert.deepEqual([...got, ...history.data.messages].map((m) => m.text), texts);
    });

    it("closes a long-polling member that stops polling", async () => {
      const room = freshRoom();
      const base = await connections();
      const reader = await joined(room, "reader");
      const sender = await joined(room, "sender");
      const lazy = await RawPolling.open(server.url, room);
      await lazy.post(eventPacket("join", { username: "lazy" }, 1));
      // polls until the join is answered (its history may come in an earlier poll)
      let polled = "";
      for (let i = 0; i < 10 && !/431\[\{"ok":true\}\]/.test(polled); i++) polled += await lazy.poll();
      assert.match(polled, /431\[\{"ok":true\}\]/);
      const before = await slowConsumers();
      const texts: string[] = [];
      for (let i = 0; i < 20; i++) {
        const text = `${i} ${"y".repeat(BIG)}`;
        texts.push(text);
        assert.ok((await sender.request("say", { text })).ok);
        await lazy.post("3"); // an unsolicited pong: it looks alive, but never polls
      }
      await eventually(async () => ((await slowConsumers()) === before + 1 ? true : undefined), 10_000, "the lazy member to be closed");
      await eventually(async () => ((await connections()) === base + 2 ? true : undefined), 5000, "the lazy connection to be gone");
      // its session is over: the next poll is refused or told to close
      const next = await lazy.poll();
      assert.ok(next.startsWith("HTTP 400") || next.endsWith("1"), next.slice(0, 200));
      assert.equal((await reader.waitForSaid(texts.length)).length, texts.length);
    });

    it("closes a member that floods refused events and never reads; a burst of refusals is fine", async () => {
      const room = freshRoom();
      const base = await connections();
      const watcher = await joined(room, "watcher");
      // a burst: 30 refusals, the connection stays and can still join
      const burst = new TestClient(server.url, room);
      cleanup.add(() => burst.close());
      for (let i = 0; i < 30; i++) burst.socket.emit("say", { text: "not joined yet" });
      await burst.waitFor(() => burst.inbox.filter(is("error")).length === 30, 5000, "30 refusals");
      assert.deepEqual(await burst.join("burst"), { ok: true });

      // a flood from a client that never reads its refusals
      const flooder = await RawWebSocket.open(server.url, room);
      cleanup.add(() => flooder.close());
      flooder.pause();
      const packet = eventPacket("say", { text: "" });
      for (let i = 0; i < 20_000 && !flooder.socket.destroyed; i++) {
        flooder.send(packet);
        if (i % 1000 === 999) await new Promise((r) => setImmediate(r));
      }
      await eventually(async () => ((await connections()) === base + 2 ? true : undefined), 10_000, "the flooder to be closed");
      assert.equal(await metric(server.url, "roomcast_floods_closed_total"), 1);
      assert.equal((await watcher.request("say", { text: "still here" })).ok, true);
      await watcher.waitFor((m) => m.event === "broadcast_say" && m.data.text === "still here");
    });
  });
}

describe("join attempts are rate limited", () => {
  const cleanup = new Cleanup();
  let server: Roomcast;
  before(async () => {
    server = await startServe([]);
    cleanup.add(() => server.stop());
  });
  after(() => cleanup.run());

  it("refuses joins past the burst with RATE_LIMITED", async () => {
    const c = new TestClient(server.url, "joins");
    cleanup.add(() => c.close());
    const answers = await Promise.all(Array.from({ length: 40 }, () => c.request("join", { username: "" })));
    const codes = answers.map((a) => (a.ok ? "ok" : a.error.code));
    assert.equal(codes.filter((c) => c === "BAD_USERNAME").length, 20, codes.join(","));
    assert.equal(codes.filter((c) => c === "RATE_LIMITED").length, 20, codes.join(","));
  });
});
