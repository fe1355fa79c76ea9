import assert from "node:assert/strict";
import { randomUUID } from "node:crypto";
import { after, before, describe, it } from "node:test";
import { Redis } from "ioredis";
import { pino } from "pino";
import { compareIds } from "../../src/chat/ids.js";
import { RedisEngine } from "../../src/engine/redis/redis-engine.js";
import type { ChatMessage, PresenceDiff } from "../../src/protocol.js";
import { Cleanup, eventually } from "../helpers/processes.js";
import { startRedis, type TestRedis } from "../helpers/redis.js";
import { engineContract, recorder } from "./contract.js";

const cleanup = new Cleanup();
let redis: TestRedis;
before(async () => {
  redis = await startRedis();
  cleanup.add(() => redis.stop());
});
after(() => cleanup.run());

const logger = pino({ level: "silent" });
function engineOn(prefix: string, historySize = 1000, nodeTtlMs = 15_000) {
  return new RedisEngine({ target: { kind: "single", url: redis.url }, prefix, historySize, nodeTtlMs, logger });
}

engineContract("redis", {
  async create({ historySize }) {
    const engine = engineOn(`t${randomUUID().slice(0, 8)}:`, historySize);
    await engine.start();
    return engine;
  },
});

describe("Redis engine across processes", () => {
  it("gives every subscriber one id order while two engines publish at once", async () => {
    const prefix = `x${randomUUID().slice(0, 8)}:`;
    const a = engineOn(prefix);
    const b = engineOn(prefix);
    await Promise.all([a.start(), b.start()]);
    try {
      const ra = recorder();
      const rb = recorder();
      await a.subscribe("r", ra.listener);
      await b.subscribe("r", rb.listener);
      const sends: Promise<ChatMessage>[] = [];
      for (let i = 0; i < 200; i++) {
        sends.push(a.publishMessage("r", { username: "a", text: `a${i}`, ts: 1 }));
        sends.push(b.publishMessage("r", { username: "b", text: `b${i}`, ts: 1 }));
      }
      await Promise.all(sends);
      const ids = (events: ReturnType<typeof recorder>["events"]) =>
        events.map((e) => (e.event.data as ChatMessage).id);
      const seenA = ids(await ra.waitFor(400));
      const seenB = ids(await rb.waitFor(400));
      assert.deepEqual(seenA, seenB, "both processes see the same order");
      const sorted = [...seenA].sort(compareIds);
      assert.deepEqual(seenA, sorted, "the order is the id order");
      assert.equal(new Set(seenA).size, 400);
      const history = await a.history("r", { limit: 400 });
      assert.deepEqual(history.messages.map((m) => m.id), seenA, "history holds the same order");
    } finally {
      await Promise.all([a.close(), b.close()]);
    }
  });

  it("shares presence, rooms and stats between processes and removes a closed one's at once", async () => {
    const prefix = `p${randomUUID().slice(0, 8)}:`;
    const a = engineOn(prefix);
    const b = engineOn(prefix);
    await Promise.all([a.start(), b.start()]);
    try {
      a.setConnectionCount(2);
      b.setConnectionCount(3);
      await a.addPresence("r", { member: "s1", username: "ann" });
      await b.addPresence("r", { member: "s2", username: "ann" });
      await b.addPresence("r", { member: "s3", username: "bob" });
      assert.deepEqual(await a.presence("r"), [
        { username: "ann", connections: 2 },
        { username: "bob", connections: 1 },
      ]);
      await eventually(async () => {
        const stats = await b.stats();
        return stats.connections === 5 ? stats : undefined;
      }, 3000, "both nodes' connections in stats");
      assert.deepEqual(await b.stats(), { nodes: 2, connections: 5 });
      await b.close();
      assert.deepEqual(await a.presence("r"), [{ username: "ann", connections: 1 }]);
      assert.deepEqual(await a.rooms(), [{ room: "r", users: 1 }]);
      assert.deepEqual(await a.stats(), { nodes: 1, connections: 2 });
    } finally {
      await Promise.all([a.close(), b.close()]);
    }
  });

  it("takes a dead process's members out of presence within its node TTL, and tells each room once", async () => {
    const prefix = `d${randomUUID().slice(0, 8)}:`;
    const ttl = 1500;
    const a = engineOn(prefix, 1000, ttl);
    const b = engineOn(prefix, 1000, ttl);
    const c = engineOn(prefix, 1000, ttl);
    await Promise.all([a.start(), b.start(), c.start()]);
    try {
      const rec = recorder();
      await a.subscribe("r", rec.listener);
      await a.addPresence("r", { member: "s1", username: "ann" });
      await b.addPresence("r", { member: "s2", username: "zed" });
      await b.addPresence("r", { member: "s3", username: "zoe", user: "u3" });
      await b.addPresence("other", { member: "s4", username: "zed" });
      assert.deepEqual((await a.presence("r")).map((u) => u.username), ["ann", "zed", "zoe"]);
      // b dies without a word: its heartbeat stops, its entries stay until someone notices
      const died = Date.now();
      await b.crash();
      const [diff] = await rec.waitFor(1, ttl + 3000);
      const seenAfter = Date.now() - died;
      assert.equal(diff!.event.event, "presence_diff");
      const data = diff!.event.data as PresenceDiff;
      assert.deepEqual([data.joined, data.left.sort((x, y) => (x.username < y.username ? -1 : 1))], [[], [{ username: "zed" }, { username: "zoe", user: "u3" }]]);
      assert.ok(seenAfter < ttl + 1500, `noticed ${seenAfter} ms after the death (node TTL ${ttl} ms)`);
      assert.deepEqual(await a.presence("r"), [{ username: "ann", connections: 1 }]);
      assert.deepEqual(await c.presence("other"), []);
      assert.ok(data.version > 0 && (await a.presenceSnapshot("r")).version === data.version);
      // once: both a and c were looking, only one announced it
      await a.publishMessage("r", { username: "x", text: "marker", ts: 1 });
      await rec.waitFor(2);
      assert.deepEqual(rec.events.map((e) => e.event.event), ["presence_diff", "broadcast_say"]);
      assert.equal((await a.stats()).nodes, 2);
    } finally {
      await Promise.all([a.close(), c.close()]);
    }
  });

  it("replays the messages a subscriber missed while its connection was lost, exactly once and in order, then the deletions, then resync", async () => {
    const prefix = `l${randomUUID().slice(0, 8)}:`;
    const publisher = engineOn(prefix);
    const subscriber = engineOn(prefix);
    const admin = new Redis(redis.url);
    await Promise.all([publisher.start(), subscriber.start()]);
    try {
      const rec = recorder();
      await subscriber.subscribe("r", rec.listener);
      const before = await publisher.publishMessage("r", { username: "p", text: "before", ts: 1 });
      await rec.waitFor(1);
      const clients = (await admin.client("LIST")) as string;
      const subId = /id=(\d+) .*name=roomcast-sub-(\S+)/
        .exec(clients.split("\n").find((l) => l.includes(`roomcast-sub-${subscriber.nodeId}`)) ?? "")?.[1];
      assert.ok(subId, "found the subscriber's connection");
      await admin.call("CLIENT", "KILL", "ID", subId);
      // Published while the subscriber's connection is down (it reconnects after 100 ms at the soonest).
      for (let i = 0; i < 20; i++) await publisher.publishMessage("r", { username: "p", text: `gap${i}`, ts: 1 });
      assert.equal(await publisher.deleteMessage("r", before.id), true, "a deletion in the gap");
      await eventually(() => (subscriber.health().ok ? true : undefined), 5000, "the subscriber to reconnect");
      for (let i = 0; i < 5; i++) await publisher.publishMessage("r", { username: "p", text: `after${i}`, ts: 1 });
      await eventually(() => (rec.events.filter((e) => e.event.event === "broadcast_say").length >= 26 ? true : undefined), 5000, "every message");
      const texts = rec.events.filter((e) => e.event.event === "broadcast_say").map((e) => (e.event.data as ChatMessage).text);
      assert.deepEqual(texts, ["before", ...Array.from({ length: 20 }, (_, i) => `gap${i}`), ...Array.from({ length: 5 }, (_, i) => `after${i}`)]);
      const kinds = rec.all.map((e) => e.event.event);
      const resync = kinds.indexOf("resync");
      assert.ok(resync > kinds.lastIndexOf("delete") && kinds.includes("delete"), `the deletion, then resync: ${kinds.join(",")}`);
      assert.deepEqual(rec.events.find((e) => e.event.event === "delete")!.event.data, { id: before.id });
    } finally {
      admin.disconnect();
      await Promise.all([publisher.close(), subscriber.close()]);
    }
  });
});
