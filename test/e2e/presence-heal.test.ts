/**
 * Presence that heals: when a process dies, its members leave every other member's presence,
 * pushed to them, within the node TTL, announced once; a member that reconnects elsewhere and
 * recovers with `since` reads as the same person coming back, not a new arrival.
 */
import assert from "node:assert/strict";
import { after, before, describe, it } from "node:test";
import type { PresenceDiff, ServerMessage } from "../../src/protocol.js";
import { is, TestClient } from "../helpers/client.js";
import { believedPresence } from "../helpers/presence-model.js";
import { Cleanup } from "../helpers/processes.js";
import { startRedis } from "../helpers/redis.js";
import { getJson, startServe, type Roomcast } from "../helpers/roomcast.js";

const TTL_S = 3;

describe("presence after a process dies", () => {
  const cleanup = new Cleanup();
  let a: Roomcast;
  let b: Roomcast;
  let c: Roomcast;

  before(async () => {
    const redis = await startRedis();
    cleanup.add(() => redis.stop());
    const flags = ["--redis", redis.url, "--node-ttl", String(TTL_S)];
    [a, b, c] = await Promise.all([startServe(flags), startServe(flags), startServe(flags)]);
    cleanup.add(() => a.stop("SIGKILL"));
    cleanup.add(() => b.stop());
    cleanup.add(() => c.stop());
  });
  after(() => cleanup.run());

  it("takes a killed process's members out of everyone's presence within the TTL, once, and a recovering member reads as coming back", async () => {
    const clients: TestClient[] = [];
    const client = (server: Roomcast) => {
      const t = new TestClient(server.url, "heal");
      clients.push(t);
      cleanup.add(() => t.close());
      return t;
    };
    const watcher = client(b);
    assert.deepEqual(await watcher.join("watcher"), { ok: true });
    const other = client(c);
    assert.deepEqual(await other.join("other"), { ok: true });
    const erin = client(a);
    assert.deepEqual(await erin.join("erin"), { ok: true });
    const ghost = client(a);
    assert.deepEqual(await ghost.join("ghost"), { ok: true });
    await watcher.waitFor((m) => m.event === "join" && m.data.username === "ghost");
    const said = await erin.request("say", { text: "before the crash" });
    assert.ok(said.ok);
    await watcher.waitFor(is("broadcast_say"));

    // a is killed: erin comes back on b with the last id it had; ghost does not come back
    const killed = Date.now();
    await a.stop("SIGKILL");
    const back = client(b);
    assert.deepEqual(await back.join("erin", said.id), { ok: true });
    const diff = (await watcher.waitFor(
      (m): m is Extract<ServerMessage, { event: "presence_diff" }> => m.event === "presence_diff" && m.data.left.length > 0,
      (TTL_S + 5) * 1000,
      "the dead process's members to leave",
    )).data as PresenceDiff;
    const after = Date.now() - killed;
    assert.ok(after < TTL_S * 1000 + 1500, `presence healed ${after} ms after the kill (node TTL ${TTL_S} s)`);
    assert.deepEqual(diff.left.map((r) => r.username).sort(), ["erin", "ghost"]);

    // every member's presence, built from what was pushed to it, is the room's (other is on a third process)
    await other.waitFor((m) => m.event === "presence_diff", 5000, "the diff at the other member");
    const expected = new Map([["erin", 1], ["other", 1], ["watcher", 1]]);
    for (const m of [watcher, other]) assert.deepEqual(believedPresence(m.inbox), expected, JSON.stringify(m.inbox.filter((x) => x.event !== "history" && x.event !== "broadcast_say")));
    const http = await getJson<{ users: { username: string; connections: number }[] }>(`${b.url}/api/rooms/heal/presence`);
    assert.deepEqual(new Map(http.body.users.map((u) => [u.username, u.connections])), expected);

    // erin's return was a rejoin (no second arrival), and the dead process's members were announced once
    const erinJoins = watcher.inbox.filter(is("join")).filter((m) => m.data.username === "erin");
    assert.deepEqual(erinJoins.map((m) => m.data.rejoin ?? false), [false, true]);
    await other.request("say", { text: "marker" });
    await watcher.waitFor((m) => m.event === "broadcast_say" && m.data.text === "marker");
    assert.equal(watcher.inbox.filter((m) => m.event === "presence_diff").length, 1, "announced once, though b and c both looked");
    // erin got exactly what it missed: nothing was said meanwhile, and its history says so
    const history = await back.waitFor(is("history"));
    assert.deepEqual([history.data.messages, history.data.truncated], [[], false]);
  });

  it("puts back the members of a process that was only paused past the TTL (taken for dead), announced as a rejoin", async () => {
    const watcher = new TestClient(b.url, "paused");
    cleanup.add(() => watcher.close());
    assert.deepEqual(await watcher.join("watcher"), { ok: true });
    const sleeper = new TestClient(c.url, "paused");
    cleanup.add(() => sleeper.close());
    assert.deepEqual(await sleeper.join("sleeper"), { ok: true });
    await watcher.waitFor((m) => m.event === "join" && m.data.username === "sleeper");
    // c freezes (a long GC, a VM paused): its heartbeat stops, and b takes its members out
    c.process.kill("SIGSTOP");
    try {
      await watcher.waitFor((m) => m.event === "presence_diff" && m.data.left.some((r) => r.username === "sleeper"), (TTL_S + 5) * 1000, "the sleeper taken out");
    } finally {
      c.process.kill("SIGCONT");
    }
    // c wakes, finds itself taken for dead, and puts its members back
    const back = await watcher.waitFor(
      (m) => m.event === "presence_diff" && m.data.joined.some((r) => r.username === "sleeper"),
      (TTL_S + 5) * 1000,
      "the sleeper back",
    );
    assert.equal(back.event === "presence_diff" && back.data.joined.find((r) => r.username === "sleeper")?.rejoin, true);
    assert.deepEqual(believedPresence(watcher.inbox), new Map([["sleeper", 1], ["watcher", 1]]));
    // and it is still served
    assert.ok((await sleeper.request("say", { text: "still here" })).ok);
    await watcher.waitFor((m) => m.event === "broadcast_say" && m.data.text === "still here");
  });
});
