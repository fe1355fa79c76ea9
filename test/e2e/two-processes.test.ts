/**
 * Two (and three) `roomcast serve` processes on one private Redis form one chat.
 */
import assert from "node:assert/strict";
import { after, before, describe, it } from "node:test";
import { compareIds } from "../../src/chat/ids.js";
import { is, TestClient } from "../helpers/client.js";
import { Cleanup, eventually } from "../helpers/processes.js";
import { startRedis, type TestRedis } from "../helpers/redis.js";
import { getJson, startServe, type Roomcast } from "../helpers/roomcast.js";

describe("two processes on one Redis", () => {
  const cleanup = new Cleanup();
  let redis: TestRedis;
  let a: Roomcast;
  let b: Roomcast;
  const clients: TestClient[] = [];
  const joined = async (server: Roomcast, room: string, username: string, since?: string) => {
    const c = new TestClient(server.url, room);
    clients.push(c);
    assert.deepEqual(await c.join(username, since), { ok: true });
    return c;
  };

  before(async () => {
    redis = await startRedis();
    cleanup.add(() => redis.stop());
    [a, b] = await Promise.all([startServe(["--redis", redis.url]), startServe(["--redis", redis.url])]);
    cleanup.add(() => a.stop());
    cleanup.add(() => b.stop());
    cleanup.add(() => clients.forEach((c) => c.close()));
  });
  after(() => cleanup.run());

  it("fans out to every member on both processes and to no one in other rooms", async () => {
    const a1 = await joined(a, "fan-1", "a1");
    const b1 = await joined(b, "fan-1", "b1");
    const a2 = await joined(a, "fan-2", "a2");
    const b2 = await joined(b, "fan-2", "b2");
    await a1.request("say", { text: "from a to room 1" });
    await b2.request("say", { text: "from b to room 2" });
    for (const c of [a1, b1]) assert.equal((await c.waitFor(is("broadcast_say"))).data.text, "from a to room 1");
    for (const c of [a2, b2]) assert.equal((await c.waitFor(is("broadcast_say"))).data.text, "from b to room 2");
    // one more message in each room; by the time it arrives, a stray one would have too
    await b1.request("say", { text: "end 1" });
    await a2.request("say", { text: "end 2" });
    for (const c of [a1, b1]) await c.waitForSaid(2);
    for (const c of [a2, b2]) await c.waitForSaid(2);
    assert.deepEqual(a1.said().map((m) => m.text), ["from a to room 1", "end 1"]);
    assert.deepEqual(b1.said().map((m) => m.text), ["from a to room 1", "end 1"]);
    assert.deepEqual(a2.said().map((m) => m.text), ["from b to room 2", "end 2"]);
    assert.deepEqual(b2.said().map((m) => m.text), ["from b to room 2", "end 2"]);
  });

  it("covers both processes in history, presence, join, quit, rooms and stats", async () => {
    const ann = await joined(a, "both", "ann");
    await ann.request("say", { text: "said on a" });
    const bob = await joined(b, "both", "bob");
    const history = bob.inbox.find(is("history"))!;
    assert.deepEqual(history.data.messages.map((m) => m.text), ["said on a"]);
    assert.deepEqual(bob.inbox.find(is("presence"))!.data.users.map((u) => u.username), ["ann", "bob"]);
    await ann.waitFor((m) => m.event === "join" && m.data.username === "bob");
    const rooms = await getJson<{ rooms: { room: string; users: number }[] }>(`${a.url}/api/rooms`);
    assert.deepEqual(rooms.body.rooms.find((r) => r.room === "both"), { room: "both", users: 2 });
    const stats = await eventually(async () => {
      const { body } = await getJson<{ nodes: number; connections: number }>(`${b.url}/api/stats`);
      return body.connections === clients.filter((c) => c.socket.connected).length ? body : undefined;
    }, 5000, "stats to count every open connection");
    assert.equal(stats.nodes, 2);
    bob.close();
    const quit = await ann.waitFor(is("broadcast_quit"));
    assert.equal(quit.data.username, "bob");
    const history2 = await getJson<{ messages: { text: string }[] }>(`${b.url}/api/rooms/both/history`);
    assert.deepEqual(history2.body.messages.map((m) => m.text), ["said on a"]);
  });

  it("gives every member the same id order while three senders on two processes send at once", async () => {
    const room = "order";
    const receivers = [await joined(a, room, "ra"), await joined(b, room, "rb"), await joined(a, room, "rc"), await joined(b, room, "rd")];
    const senders = [await joined(a, room, "s1"), await joined(b, room, "s2"), await joined(a, room, "s3")];
    const perSender = 20; // within each connection's burst
    const acks = await Promise.all(
      senders.flatMap((s, i) => Array.from({ length: perSender }, (_, n) => s.request("say", { text: `s${i + 1}-${n}` }))),
    );
    assert.ok(acks.every((ack) => ack.ok));
    const total = senders.length * perSender;
    const orders = await Promise.all(receivers.map(async (r) => (await r.waitForSaid(total)).map((m) => m.id)));
    for (const order of orders) {
      assert.equal(order.length, total);
      assert.deepEqual(order, orders[0], "every member sees one order");
    }
    assert.deepEqual(orders[0], [...orders[0]!].sort(compareIds), "and it is the id order");
    // each sender's own messages keep the order it sent them in
    const texts = receivers[0]!.said().map((m) => m.text);
    for (let i = 1; i <= 3; i++) {
      const mine = texts.filter((t) => t.startsWith(`s${i}-`));
      assert.deepEqual(mine, Array.from({ length: perSender }, (_, n) => `s${i}-${n}`));
    }
  });

  it("sends a client that reconnects to the other process with `since` exactly what it missed", async () => {
    const room = "recover";
    const sender = await joined(a, room, "sender");
    const reader = await joined(a, room, "reader");
    for (let i = 0; i < 5; i++) await sender.request("say", { text: `before ${i}` });
    const seen = await reader.waitForSaid(5);
    reader.close();
    for (let i = 0; i < 7; i++) await sender.request("say", { text: `missed ${i}` });
    const back = await joined(b, room, "reader", seen.at(-1)!.id);
    for (let i = 0; i < 3; i++) await sender.request("say", { text: `after ${i}` });
    const got = await back.waitForSaid(10);
    assert.deepEqual(
      got.map((m) => m.text),
      [...Array.from({ length: 7 }, (_, i) => `missed ${i}`), ...Array.from({ length: 3 }, (_, i) => `after ${i}`)],
    );
    assert.equal(back.inbox.find(is("history"))!.data.truncated, false);
  });

  it("drops a SIGKILLed process from presence and stats within 30 s", async () => {
    const c = await startServe(["--redis", redis.url]);
    cleanup.add(() => c.stop());
    const doomed = await joined(c, "kill", "doomed");
    const survivor = await joined(a, "kill", "survivor");
    assert.deepEqual(survivor.inbox.find(is("presence"))!.data.users.map((u) => u.username), ["doomed", "survivor"]);
    doomed.socket.io.opts.reconnection = false;
    await c.stop("SIGKILL");
    const started = Date.now();
    await eventually(async () => {
      const { body } = await getJson<{ rooms: { room: string; users: number }[] }>(`${a.url}/api/rooms`);
      return body.rooms.find((r) => r.room === "kill")?.users === 1 ? true : undefined;
    }, 30_000, "the killed process's member to leave presence");
    const { body } = await getJson<{ nodes: number }>(`${a.url}/api/stats`);
    assert.equal(body.nodes, 2);
    const late = await joined(b, "kill", "late");
    assert.deepEqual(late.inbox.find(is("presence"))!.data.users.map((u) => u.username), ["late", "survivor"]);
    assert.ok(Date.now() - started < 30_000);
  });
});
