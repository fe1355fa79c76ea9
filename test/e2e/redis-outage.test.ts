/**
 * Redis stopped and started again under two running processes: messages are refused with
 * UNAVAILABLE (never silently dropped), /healthz says 503, connections stay open, and when Redis is
 * back, subscriptions and presence are restored and the chat resumes without a restart.
 */
import assert from "node:assert/strict";
import { after, before, describe, it } from "node:test";
import type { ServerMessage } from "../../src/protocol.js";
import { TestClient } from "../helpers/client.js";
import { Cleanup, eventually } from "../helpers/processes.js";
import { startRedis, type TestRedis } from "../helpers/redis.js";
import { getJson, metric, startServe, type Roomcast } from "../helpers/roomcast.js";

describe("Redis lost and back", () => {
  const cleanup = new Cleanup();
  let redis: TestRedis;
  let a: Roomcast;
  let b: Roomcast;

  before(async () => {
    redis = await startRedis();
    cleanup.add(() => redis.stop());
    [a, b] = await Promise.all([startServe(["--redis", redis.url]), startServe(["--redis", redis.url])]);
    cleanup.add(() => a.stop());
    cleanup.add(() => b.stop());
  });
  after(() => cleanup.run());

  it("refuses with UNAVAILABLE while Redis is down and resumes by itself when it is back", async () => {
    const ann = new TestClient(a.url, "outage");
    const bob = new TestClient(b.url, "outage");
    cleanup.add(() => [ann, bob].forEach((c) => c.close()));
    assert.deepEqual(await ann.join("ann"), { ok: true });
    assert.deepEqual(await bob.join("bob"), { ok: true });
    await ann.request("say", { text: "before" });
    await bob.waitForSaid(1);

    await redis.stop();
    for (const server of [a, b]) {
      const health = await eventually(async () => {
        const res = await getJson<{ status: string; reason?: string }>(`${server.url}/healthz`);
        return res.status === 503 ? res.body : undefined;
      }, 10_000, "/healthz to turn 503");
      assert.equal(health.status, "unavailable");
    }
    const refused = await ann.request("say", { text: "while down" });
    assert.equal(!refused.ok && refused.error.code, "UNAVAILABLE");
    const noAck = new Promise<ServerMessage>((resolve) => ann.socket.once("message", resolve));
    ann.socket.emit("say", { text: "while down, no ack" });
    const error = await noAck;
    assert.equal(error.event === "error" && error.data.code, "UNAVAILABLE");
    const late = new TestClient(a.url, "outage");
    cleanup.add(() => late.close());
    const joinRefused = await late.request("join", { username: "late" });
    assert.equal(!joinRefused.ok && joinRefused.error.code, "UNAVAILABLE");
    assert.ok(ann.socket.connected && bob.socket.connected, "connections stay open");
    const metrics = await (await fetch(`${a.url}/metrics`)).text();
    assert.match(metrics, /^roomcast_redis_up 0$/m);

    await redis.start(); // empty: nothing was saved
    for (const server of [a, b]) {
      await eventually(async () => ((await getJson(`${server.url}/healthz`)).status === 200 ? true : undefined), 15_000, "/healthz 200");
    }
    // Subscriptions are back: a message from one process reaches the member on the other.
    const resumed = await eventually(async () => {
      const ack = await bob.request("say", { text: "after" });
      return ack.ok ? ack : undefined;
    }, 10_000, "say to be accepted again");
    assert.ok(resumed.ok);
    const seen = await ann.waitFor((m) => m.event === "broadcast_say" && m.data.text === "after", 10_000);
    assert.ok(seen);
    assert.deepEqual(ann.said().map((m) => m.text), ["before", "after"], "nothing refused was delivered");
    // Presence is back although Redis restarted empty.
    const rooms = await eventually(async () => {
      const { body } = await getJson<{ rooms: { room: string; users: number }[] }>(`${a.url}/api/rooms`);
      return body.rooms.find((r) => r.room === "outage")?.users === 2 ? body.rooms : undefined;
    }, 10_000, "presence to be restored");
    assert.ok(rooms);
    const carol = new TestClient(b.url, "outage");
    cleanup.add(() => carol.close());
    assert.deepEqual(await carol.join("carol"), { ok: true });
    const presence = carol.inbox.find((m) => m.event === "presence");
    assert.deepEqual(presence?.event === "presence" && presence.data.users.map((u) => u.username), ["ann", "bob", "carol"]);
  });

  it("forgets members who left while Redis was down, also when Redis comes back with its data", async () => {
    const stays = new TestClient(a.url, "kept");
    const leaves = new TestClient(b.url, "kept");
    cleanup.add(() => [stays, leaves].forEach((c) => c.close()));
    assert.deepEqual(await stays.join("stays"), { ok: true });
    assert.deepEqual(await leaves.join("leaves"), { ok: true });
    const names = async () =>
      (await getJson<{ users: { username: string }[] }>(`${a.url}/api/rooms/kept/presence`)).body.users?.map((u) => u.username);
    assert.deepEqual(await names(), ["leaves", "stays"]);

    await redis.saveAndStop(); // Redis goes away with "leaves" on disk, as after a restart from an RDB or AOF file
    await eventually(async () => ((await getJson(`${b.url}/healthz`)).status === 503 ? true : undefined), 10_000, "b to see Redis gone");
    const connections = () => metric(b.url, "roomcast_connections");
    const before = await connections();
    leaves.close(); // b tries to remove it from presence now, and cannot
    await eventually(async () => ((await connections()) === before - 1 ? true : undefined), 10_000, "b to see the disconnect");
    await redis.start(); // with the saved data: "leaves" is still in it
    await eventually(async () => ((await names())?.join() === "stays" ? true : undefined), 15_000, "the member who left to be gone from presence");
  });
});
