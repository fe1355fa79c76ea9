/**
 * What roomcast leaves in Redis: nothing for a room nobody is in but its history, and with
 * --history-ttl not even that once the room has been unused for that long.
 */
import assert from "node:assert/strict";
import { after, before, describe, it } from "node:test";
import { Redis } from "ioredis";
import { is, TestClient } from "../helpers/client.js";
import { Cleanup, eventually } from "../helpers/processes.js";
import { startRedis, type TestRedis } from "../helpers/redis.js";
import { startServe } from "../helpers/roomcast.js";

describe("Redis keys of rooms", () => {
  const cleanup = new Cleanup();
  let redis: TestRedis;
  let inspect: Redis;

  before(async () => {
    redis = await startRedis();
    cleanup.add(() => redis.stop());
    inspect = new Redis(redis.url);
    cleanup.add(() => inspect.disconnect());
  });
  after(() => cleanup.run());

  const keys = async (pattern: string) => (await inspect.keys(pattern)).sort();

  it("keeps no presence keys for rooms that emptied", async () => {
    const server = await startServe(["--redis", redis.url, "--redis-prefix", "keys:"]);
    cleanup.add(() => server.stop());
    for (let i = 0; i < 30; i++) {
      const room = `empty-${i}`;
      const a = new TestClient(server.url, room);
      const b = new TestClient(server.url, room);
      assert.deepEqual(await a.join("a"), { ok: true });
      assert.deepEqual(await b.join("b"), { ok: true });
      await a.request("say", { text: "hello" });
      await b.waitFor((m) => m.event === "broadcast_quit" || m.event === "broadcast_say");
      a.close();
      await b.waitFor(is("broadcast_quit"));
      b.close();
    }
    await eventually(async () => ((await keys("keys:presence*")).length === 0 ? true : undefined), 5000, "presence keys to go");
    assert.deepEqual(await inspect.smembers("keys:rooms"), []);
    assert.equal((await keys("keys:history:*")).length, 30, "history is kept by default");
    assert.equal(await inspect.pttl("keys:history:empty-0"), -1, "without --history-ttl, for ever");
    // a room used again announces presence versions that still only grow
    const again = new TestClient(server.url, "empty-0");
    cleanup.add(() => again.close());
    assert.deepEqual(await again.join("again"), { ok: true });
    const presence = await again.waitFor(is("presence"));
    assert.ok((presence.data.version ?? 0) > 1, `version ${presence.data.version} after a reset`);
  });

  it("--history-ttl: a room unused that long loses its history", async () => {
    const server = await startServe(["--redis", redis.url, "--redis-prefix", "ttl:", "--history-ttl", "2s"]);
    cleanup.add(() => server.stop());
    const a = new TestClient(server.url, "brief");
    cleanup.add(() => a.close());
    assert.deepEqual(await a.join("a"), { ok: true });
    assert.ok((await a.request("say", { text: "soon gone" })).ok);
    const ttl = await inspect.pttl("ttl:history:brief");
    assert.ok(ttl > 0 && ttl <= 2000, `PTTL ${ttl}`);
    a.close();
    await eventually(async () => ((await inspect.exists("ttl:history:brief")) === 0 ? true : undefined), 6000, "the history to expire");
    const b = new TestClient(server.url, "brief");
    cleanup.add(() => b.close());
    assert.deepEqual(await b.join("b"), { ok: true });
    assert.deepEqual((await b.waitFor(is("history"))).data.messages, []);
  });
});
