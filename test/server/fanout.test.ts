/**
 * The fan-out (src/server/fanout.ts): room events written straight to each WebSocket member's TCP
 * socket, several of them in one write, through Engine.IO for every other member. Real
 * socket.io-client connections over WebSocket, long-polling and polling-then-upgrade, against a
 * real `roomcast serve` (memory and Redis).
 */
import assert from "node:assert/strict";
import { after, before, describe, it } from "node:test";
import type { ChatMessage } from "../../src/protocol.js";
import { is, TestClient } from "../helpers/client.js";
import { Cleanup } from "../helpers/processes.js";
import { startRedis } from "../helpers/redis.js";
import { startServe, type Roomcast } from "../helpers/roomcast.js";

async function counter(server: Roomcast, name: string): Promise<number> {
  const text = await (await fetch(`${server.url}/metrics`)).text();
  const line = text.split("\n").find((l) => l.startsWith(`${name} `));
  return Number(line?.split(" ")[1] ?? NaN);
}

const ids = (messages: ChatMessage[]) => messages.map((m) => m.id);

for (const mode of ["memory", "redis"] as const) {
  describe(`fan-out (${mode})`, () => {
    const cleanup = new Cleanup();
    let plain: Roomcast;
    let coalescing: Roomcast;
    const clients: TestClient[] = [];
    const joined = async (server: Roomcast, room: string, username: string, transports: ("websocket" | "polling")[] = ["websocket"]) => {
      const c = new TestClient(server.url, room, { transports });
      clients.push(c);
      assert.deepEqual(await c.join(username), { ok: true });
      return c;
    };

    before(async () => {
      const flags: string[] = [];
      if (mode === "redis") {
        const redis = await startRedis();
        cleanup.add(() => redis.stop());
        flags.push("--redis", redis.url);
      }
      [plain, coalescing] = await Promise.all([
        startServe([...flags, "--rate-limit", "1000", "--rate-burst", "1000"]),
        // a window far longer than a test's steps, so that what it holds is certain
        startServe([...flags, "--coalesce", "300", "--redis-prefix", "coalescing:"]),
      ]);
      cleanup.add(() => plain.stop());
      cleanup.add(() => coalescing.stop());
      cleanup.add(() => clients.forEach((c) => c.close()));
    });
    after(() => cleanup.run());

    it("gives WebSocket, long-polling and upgrading members the same messages, once each, in one order", async () => {
      const room = `${mode}-mixed`;
      const ws = await joined(plain, room, "ws");
      const polling = await joined(plain, room, "polling", ["polling"]);
      const upgrading = await joined(plain, room, "upgrading", ["polling", "websocket"]);
      const before = { delivered: await counter(plain, "roomcast_messages_delivered_total"), writes: await counter(plain, "roomcast_fanout_writes_total") };
      // 2 × 100 messages sent without waiting for answers: many reach the fan-out in one turn
      const acks = [];
      for (let i = 0; i < 100; i++) acks.push(ws.request("say", { text: `w${i}` }), polling.request("say", { text: `p${i}` }));
      for (const ack of await Promise.all(acks)) assert.equal(ack.ok, true);
      const got = await Promise.all([ws, polling, upgrading].map((c) => c.waitForSaid(200, 20_000)));
      for (const said of got) {
        assert.equal(said.length, 200);
        assert.equal(new Set(ids(said)).size, 200, "each message once");
        assert.deepEqual(ids(said), ids(got[0]!), "one order for every member");
      }
      // each sender's messages in the order it sent them
      const texts = got[0]!.map((m) => m.text);
      assert.deepEqual(texts.filter((t) => t.startsWith("w")), Array.from({ length: 100 }, (_, i) => `w${i}`));
      assert.deepEqual(texts.filter((t) => t.startsWith("p")), Array.from({ length: 100 }, (_, i) => `p${i}`));
      // 600 deliveries; messages that arrived together went out together
      const delivered = (await counter(plain, "roomcast_messages_delivered_total")) - before.delivered;
      const writes = (await counter(plain, "roomcast_fanout_writes_total")) - before.writes;
      assert.equal(delivered, 600);
      assert.ok(writes < delivered, `${writes} writes for ${delivered} deliveries`);
    });

    it("with --coalesce, holds what follows a write, then sends each event once, in order, typing not to its author", async () => {
      const room = `${mode}-held`;
      const ann = await joined(coalescing, room, "ann");
      const bob = await joined(coalescing, room, "bob", ["polling"]);
      // the first message after a quiet spell goes at once; what follows within 300 ms waits
      const first = await ann.request("say", { text: "first" });
      await ann.waitFor((m) => m.event === "broadcast_say" && m.data.text === "first");
      assert.equal((await ann.request("typing", { typing: true })).ok, true);
      const second = await bob.request("say", { text: "second" });
      // carol joins while "second" is held: she has it in her history, and must not get it again
      const carol = await joined(coalescing, room, "carol");
      const history = carol.inbox.find(is("history"));
      assert.deepEqual(history?.data.messages.map((m) => m.text).slice(-2), ["first", "second"]);
      const third = await ann.request("say", { text: "third" });
      for (const c of [ann, bob, carol]) await c.waitFor((m) => m.event === "broadcast_say" && m.data.text === "third");
      const expected = [first, second, third].map((a) => (a.ok ? a.id : ""));
      assert.deepEqual(ids(ann.said()), expected);
      assert.deepEqual(ids(bob.said()), expected);
      assert.deepEqual(ids(carol.said()).slice(-3), expected, "carol: history, then third, nothing twice");
      assert.equal(ann.inbox.filter(is("typing")).length, 0, "typing is not shown to its author");
      assert.deepEqual(bob.inbox.find(is("typing"))?.data, { username: "ann", typing: true });
    });
  });
}
