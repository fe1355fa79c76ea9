/**
 * Big rooms (`--big-room`): joins and quits travel as batched `presence_diff` events, and a client
 * that applies them to the `presence` it got on joining holds exactly the room's presence, on two
 * processes sharing a Redis, under a storm of concurrent joins and quits.
 */
import assert from "node:assert/strict";
import { after, before, describe, it } from "node:test";
import type { PresenceUser } from "../../src/protocol.js";
import { TestClient } from "../helpers/client.js";
import { believedPresence } from "../helpers/presence-model.js";
import { Cleanup, eventually } from "../helpers/processes.js";
import { startRedis } from "../helpers/redis.js";
import { getJson, startServe, type Roomcast } from "../helpers/roomcast.js";

const asModel = (users: PresenceUser[]) => new Map(users.map((u) => [u.username, u.connections]));

describe("big rooms: presence_diff instead of a notice per join", () => {
  const cleanup = new Cleanup();
  let a: Roomcast;
  let b: Roomcast;
  const clients: TestClient[] = [];
  const joined = async (server: Roomcast, room: string, username: string) => {
    const c = new TestClient(server.url, room);
    clients.push(c);
    assert.deepEqual(await c.join(username), { ok: true });
    return c;
  };

  before(async () => {
    const redis = await startRedis();
    cleanup.add(() => redis.stop());
    const flags = ["--redis", redis.url, "--big-room", "2", "--presence-batch", "50"];
    [a, b] = await Promise.all([startServe(flags), startServe(flags)]);
    cleanup.add(() => a.stop());
    cleanup.add(() => b.stop());
    cleanup.add(() => clients.forEach((c) => c.close()));
  });
  after(() => cleanup.run());

  it("keeps every member's presence exact through a storm of joins and quits on two processes", async () => {
    const room = "stadium";
    // below the threshold: the article's notices
    const first = await joined(a, room, "first");
    await joined(b, room, "second");
    await first.waitFor((m) => m.event === "join" && m.data.username === "second", 5000, "second's join notice");
    await joined(a, room, "third");

    // 30 joins at once, over both processes; some usernames twice (two tabs)
    const storm = await Promise.all(
      Array.from({ length: 30 }, (_, i) => joined(i % 2 ? a : b, room, `fan-${i % 24}`)),
    );
    const everyone = storm;
    const current = async () => asModel((await getJson<{ users: PresenceUser[] }>(`${a.url}/api/rooms/${room}/presence`)).body.users);
    const same = (x: Map<string, number>, y: Map<string, number>) => JSON.stringify([...x].sort()) === JSON.stringify([...y].sort());
    let truth = new Map<string, number>();
    const total = (m: Map<string, number>) => [...m.values()].reduce((x, y) => x + y, 0);
    /** Waits until the room holds `connections` and every member's view matches it. */
    const settled = async (members: TestClient[], connections: number, what: string) => {
      await eventually(
        async () => {
          truth = await current();
          return total(truth) === connections && members.every((c) => same(believedPresence(c.inbox), truth)) ? true : undefined;
        },
        10_000,
        what,
      ).catch((err: Error) => {
        const wrong = members.find((c) => !same(believedPresence(c.inbox), truth))!;
        const seen = wrong.inbox.filter((m) => m.event === "presence" || m.event === "presence_diff");
        throw new Error(`${err.message}: truth ${JSON.stringify([...truth])}, a member received ${JSON.stringify(seen)}`);
      });
      return truth;
    };
    const afterJoins = await settled(everyone, 33, "every member's presence to match the room's after the joins");
    assert.equal(afterJoins.get("fan-0"), 2, "a username joined twice counts two connections");

    const stormJoinNotices = first.inbox.filter((m) => m.event === "join" && m.data.username.startsWith("fan-"));
    assert.equal(stormJoinNotices.length, 0, "no join notice per member in a big room");
    const diffs = first.inbox.filter((m) => m.event === "presence_diff");
    assert.ok(diffs.length > 0 && diffs.length < 30, `joins batched into few diffs (got ${diffs.length})`);

    // half the storm leaves at once
    const leaving = storm.splice(0, 15);
    leaving.forEach((c) => c.close());
    await settled(storm, 18, "every member's presence to match the room's after the quits");
    assert.equal(first.inbox.filter((m) => m.event === "broadcast_quit").length, 0, "no quit notice per member in a big room");
  });
});
