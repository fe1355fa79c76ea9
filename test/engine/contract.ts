/**
 * The Engine contract: what every engine guarantees, run against each implementation
 * (memory-engine.test.ts, redis-engine.test.ts).
 */
import assert from "node:assert/strict";
import { describe, it } from "node:test";
import { compareIds } from "../../src/chat/ids.js";
import type { Engine, RoomTraffic } from "../../src/engine/engine.js";
import type { PresenceDiff } from "../../src/protocol.js";
import { withTimeout } from "../helpers/processes.js";

export interface EngineFactory {
  /** A fresh engine over a fresh, empty chat (history size as given), started. */
  create(options: { historySize: number }): Promise<Engine>;
}

/**
 * Collects what a listener receives and lets a test wait for a count. `events` leaves out `resync`
 * (a hint to refresh, which an engine may give at any time, also when nothing was lost: on a Redis
 * Cluster whenever ioredis restarts its shard subscribers); `all` keeps everything.
 */
export function recorder() {
  const events: { event: RoomTraffic; except: string | undefined }[] = [];
  const all: { event: RoomTraffic; except: string | undefined }[] = [];
  let wake: (() => void) | undefined;
  return {
    events,
    all,
    listener: (event: RoomTraffic, except: string | undefined) => {
      all.push({ event, except });
      if (event.event !== "resync") events.push({ event, except });
      wake?.();
    },
    async waitFor(count: number, ms = 5000) {
      await withTimeout(
        (async () => {
          while (events.length < count) await new Promise<void>((r) => (wake = r));
        })(),
        ms,
        () => `expected ${count} events, got ${events.length}: ${JSON.stringify(events)}`,
      );
      return events;
    },
  };
}

export function engineContract(name: string, factory: EngineFactory): void {
  describe(`Engine contract: ${name}`, () => {
    const draft = (text: string) => ({ username: "ann", text, ts: Date.now() });

    it("gives messages increasing ids of the form <int>-<int> and keeps them in history", async () => {
      const engine = await factory.create({ historySize: 100 });
      try {
        const ids: string[] = [];
        for (let i = 0; i < 5; i++) ids.push((await engine.publishMessage("r1", draft(`m${i}`))).id);
        for (const id of ids) assert.match(id, /^\d+-\d+$/);
        for (let i = 1; i < ids.length; i++) assert.ok(compareIds(ids[i - 1]!, ids[i]!) < 0, `${ids[i - 1]} < ${ids[i]}`);
        const history = await engine.history("r1", { limit: 50 });
        assert.deepEqual(history.messages.map((m) => m.text), ["m0", "m1", "m2", "m3", "m4"]);
        assert.deepEqual(history.messages.map((m) => m.id), ids);
        assert.equal(history.truncated, false);
        assert.deepEqual(await engine.history("other", { limit: 50 }), { messages: [], truncated: false });
      } finally {
        await engine.close();
      }
    });

    it("sends the newest `limit` messages, oldest first, and says when older ones are kept", async () => {
      const engine = await factory.create({ historySize: 100 });
      try {
        for (let i = 0; i < 10; i++) await engine.publishMessage("r", draft(`m${i}`));
        const last3 = await engine.history("r", { limit: 3 });
        assert.deepEqual(last3.messages.map((m) => m.text), ["m7", "m8", "m9"]);
        assert.equal(last3.truncated, true);
        assert.equal((await engine.history("r", { limit: 10 })).truncated, false);
      } finally {
        await engine.close();
      }
    });

    it("answers `since` with exactly the messages after it, and truncated when it is not kept", async () => {
      const engine = await factory.create({ historySize: 20 });
      try {
        const sent = [];
        for (let i = 0; i < 10; i++) sent.push(await engine.publishMessage("r", draft(`m${i}`)));
        const after = await engine.history("r", { since: sent[6]!.id, limit: 2 });
        assert.deepEqual(after.messages.map((m) => m.text), ["m7", "m8", "m9"], "all after since, not only `limit`");
        assert.equal(after.truncated, false);
        const none = await engine.history("r", { since: sent[9]!.id, limit: 50 });
        assert.deepEqual(none, { messages: [], truncated: false });
        // An id this history never held (lost stream, or another chat's id) cannot be recovered from.
        const unknown = await engine.history("r", { since: "1-0", limit: 50 });
        assert.equal(unknown.truncated, true);
        assert.equal(unknown.messages.length, 10);
        // Push the first ones out of the kept history (at least historySize are kept).
        for (let i = 10; i < 400; i++) await engine.publishMessage("r", draft(`m${i}`));
        const trimmed = await engine.history("r", { since: sent[0]!.id, limit: 50 });
        assert.equal(trimmed.truncated, true);
        assert.ok(trimmed.messages.length >= 20);
        assert.equal(trimmed.messages.at(-1)?.text, "m399");
      } finally {
        await engine.close();
      }
    });

    it("delivers a room's messages, notices and control signals to its subscriber in order, and stops after unsubscribe", async () => {
      const engine = await factory.create({ historySize: 100 });
      try {
        const rec = recorder();
        const other = recorder();
        await engine.subscribe("r", rec.listener);
        await engine.subscribe("elsewhere", other.listener);
        const joinVersion = await engine.addPresence("r", { member: "member-1", username: "ann" }, { ts: 1, rejoin: false });
        const m1 = await engine.publishMessage("r", draft("hello"));
        await engine.publishNotice("r", { event: "typing", data: { username: "ann", typing: true } }, "member-1");
        const m2 = await engine.publishMessage("r", draft("again"));
        await engine.publishNotice("r", { event: "kick", data: { user: "bob" } });
        await engine.removePresence("r", "member-1", { ts: 2 });
        const events = await rec.waitFor(6);
        assert.deepEqual(
          events.map((e) => e.event.event),
          ["join", "broadcast_say", "typing", "broadcast_say", "kick", "broadcast_quit"],
        );
        assert.deepEqual(events[0]!.event.data, { username: "ann", ts: 1, version: joinVersion });
        assert.deepEqual(events[1]!.event.data, m1);
        assert.deepEqual(events[3]!.event.data, m2);
        assert.equal(events[2]!.except, "member-1");
        assert.equal(events[1]!.except, undefined);
        assert.deepEqual(events[4]!.event.data, { user: "bob" });
        const quit = events[5]!.event.data as { username: string; version: number };
        assert.equal(quit.username, "ann");
        assert.ok(quit.version > joinVersion, "a quit's version follows the join's");
        assert.equal(other.events.length, 0, "no event of room r in another room");

        await engine.unsubscribe("r");
        await engine.publishMessage("r", draft("unheard"));
        // A message to the other room, published after, proves the unheard one had its chance.
        await engine.publishMessage("elsewhere", draft("marker"));
        await other.waitFor(1);
        assert.equal(rec.events.length, 6);
      } finally {
        await engine.close();
      }
    });

    it("announces a join with `since` as a rejoin, and adds presence silently without an announcement", async () => {
      const engine = await factory.create({ historySize: 100 });
      try {
        const rec = recorder();
        await engine.subscribe("rj", rec.listener);
        await engine.addPresence("rj", { member: "m1", username: "ann" }, { ts: 3, rejoin: true });
        await engine.addPresence("rj", { member: "m2", username: "bob" });
        await engine.removePresence("rj", "m2");
        await engine.publishMessage("rj", draft("marker"));
        const events = await rec.waitFor(2);
        assert.deepEqual(events.map((e) => e.event.event), ["join", "broadcast_say"]);
        assert.equal((events[0]!.event.data as { rejoin?: boolean }).rejoin, true);
      } finally {
        await engine.close();
      }
    });

    it("deletes a message: gone from history, `delete` to the room, and `since` naming it still recovers exactly", async () => {
      const engine = await factory.create({ historySize: 100 });
      try {
        const rec = recorder();
        await engine.subscribe("d", rec.listener);
        const sent = [];
        for (let i = 0; i < 5; i++) sent.push(await engine.publishMessage("d", draft(`m${i}`)));
        assert.equal(await engine.deleteMessage("d", sent[2]!.id), true);
        assert.equal(await engine.deleteMessage("d", sent[2]!.id), false, "only once");
        assert.equal(await engine.deleteMessage("d", "1-0"), false, "no such message");
        const events = await rec.waitFor(6);
        assert.deepEqual(events[5]!.event, { event: "delete", data: { id: sent[2]!.id } });
        assert.deepEqual((await engine.history("d", { limit: 50 })).messages.map((m) => m.text), ["m0", "m1", "m3", "m4"]);
        const after = await engine.history("d", { since: sent[2]!.id, limit: 50 });
        assert.deepEqual([after.messages.map((m) => m.text), after.truncated], [["m3", "m4"], false]);
        const fromStart = await engine.history("d", { since: "0-0", limit: 50 });
        assert.deepEqual([fromStart.messages.length, fromStart.truncated], [4, false]);
        // the oldest message deleted: still a known position, also after more messages
        assert.equal(await engine.deleteMessage("d", sent[0]!.id), true);
        await engine.publishMessage("d", draft("m5"));
        const fromOldest = await engine.history("d", { since: sent[0]!.id, limit: 50 });
        assert.deepEqual([fromOldest.messages.map((m) => m.text), fromOldest.truncated], [["m1", "m3", "m4", "m5"], false]);
      } finally {
        await engine.close();
      }
    });

    it("stops counting a deleted id as known once a message after it was trimmed", async () => {
      const engine = await factory.create({ historySize: 20 });
      try {
        const sent = [];
        for (let i = 0; i < 10; i++) sent.push(await engine.publishMessage("dt", draft(`m${i}`)));
        assert.equal(await engine.deleteMessage("dt", sent[5]!.id), true);
        // a deleted id near the head while nothing after it was trimmed yet
        const before = await engine.history("dt", { since: sent[5]!.id, limit: 50 });
        assert.equal(before.truncated, false);
        // then far past it (at least historySize are kept, so push well beyond)
        for (let i = 10; i < 400; i++) await engine.publishMessage("dt", draft(`m${i}`));
        const after = await engine.history("dt", { since: sent[5]!.id, limit: 50 });
        assert.equal(after.truncated, true, "messages after the deleted id were trimmed");
        assert.equal(after.messages.at(-1)?.text, "m399");
        assert.equal((await engine.history("dt", { since: "0-0", limit: 50 })).truncated, true);
      } finally {
        await engine.close();
      }
    });

    it("pages back through history with `before`", async () => {
      const engine = await factory.create({ historySize: 100 });
      try {
        const sent = [];
        for (let i = 0; i < 10; i++) sent.push(await engine.publishMessage("b", draft(`m${i}`)));
        const page1 = await engine.history("b", { before: sent[7]!.id, limit: 3 });
        assert.deepEqual([page1.messages.map((m) => m.text), page1.truncated], [["m4", "m5", "m6"], true]);
        const page2 = await engine.history("b", { before: page1.messages[0]!.id, limit: 5 });
        assert.deepEqual([page2.messages.map((m) => m.text), page2.truncated], [["m0", "m1", "m2", "m3"], false]);
        const edge = await engine.history("b", { before: "18446744073709551615-18446744073709551615", limit: 2 });
        assert.deepEqual(edge.messages.map((m) => m.text), ["m8", "m9"]);
      } finally {
        await engine.close();
      }
    });

    it("bans a user from a room until the ban ends", async () => {
      const engine = await factory.create({ historySize: 100 });
      try {
        await engine.ban("banned-room", "mallory", Date.now() + 600);
        assert.equal(await engine.banned("banned-room", "mallory"), true);
        assert.equal(await engine.banned("banned-room", "alice"), false);
        assert.equal(await engine.banned("other-room", "mallory"), false);
        await new Promise((r) => setTimeout(r, 700)); // the ban's own expiry: there is no event to await
        assert.equal(await engine.banned("banned-room", "mallory"), false);
      } finally {
        await engine.close();
      }
    });

    it("keeps presence per connection and lists each username once with its connection count", async () => {
      const engine = await factory.create({ historySize: 100 });
      try {
        await engine.addPresence("p", { member: "c1", username: "ann" });
        await engine.addPresence("p", { member: "c2", username: "ann" });
        await engine.addPresence("p", { member: "c3", username: "bob" });
        await engine.addPresence("q", { member: "c4", username: "cid" });
        // with tokens, users are told apart by id: two "sam"s are two users
        await engine.addPresence("t", { member: "c5", username: "sam", user: "u1" });
        await engine.addPresence("t", { member: "c6", username: "sam", user: "u2" });
        await engine.addPresence("t", { member: "c7", username: "sam", user: "u2" });
        assert.deepEqual(await engine.presence("t"), [
          { username: "sam", user: "u1", connections: 1 },
          { username: "sam", user: "u2", connections: 2 },
        ]);
        await engine.removePresence("t", "c5");
        await engine.removePresence("t", "c6");
        await engine.removePresence("t", "c7");
        assert.deepEqual(await engine.presence("p"), [
          { username: "ann", connections: 2 },
          { username: "bob", connections: 1 },
        ]);
        const rooms = await engine.rooms();
        assert.deepEqual(
          rooms.map((r) => [r.room, r.users]).sort(),
          [
            ["p", 2],
            ["q", 1],
          ],
        );
        await engine.removePresence("p", "c1");
        assert.deepEqual(await engine.presence("p"), [
          { username: "ann", connections: 1 },
          { username: "bob", connections: 1 },
        ]);
        await engine.removePresence("q", "c4");
        assert.deepEqual(await engine.presence("q"), []);
        assert.deepEqual((await engine.rooms()).map((r) => r.room), ["p"]);
      } finally {
        await engine.close();
      }
    });

    it("applies a batch of presence changes as one versioned presence_diff, ordered against snapshots", async () => {
      const engine = await factory.create({ historySize: 100 });
      try {
        const rec = recorder();
        await engine.subscribe("big", rec.listener);
        const empty = await engine.presenceSnapshot("big");
        assert.deepEqual(empty.users, []);
        await engine.addPresence("big", { member: "c0", username: "zed" });
        const afterAdd = await engine.presenceSnapshot("big");
        assert.ok(afterAdd.version > empty.version, "a single add moves the version too");

        await engine.changePresence("big", {
          joined: [
            { member: "c1", username: "ann" },
            { member: "c2", username: "ann" },
            { member: "c3", username: "bob" },
          ],
          left: [],
          ts: 5,
        });
        const [first] = await rec.waitFor(1);
        assert.equal(first!.event.event, "presence_diff");
        const diff1 = first!.event.data as PresenceDiff;
        assert.deepEqual([diff1.joined, diff1.left, diff1.ts], [[{ username: "ann" }, { username: "ann" }, { username: "bob" }], [], 5]);
        const snapshot = await engine.presenceSnapshot("big");
        assert.equal(snapshot.version, diff1.version, "the snapshot holds exactly what the diff announced");
        assert.deepEqual(snapshot.users, [
          { username: "ann", connections: 2 },
          { username: "bob", connections: 1 },
          { username: "zed", connections: 1 },
        ]);

        // members of this process that left, by member id; unknown members are not announced
        await engine.changePresence("big", { joined: [{ member: "c4", username: "cid", user: "u4", rejoin: true }], left: ["c1", "c3", "nobody"], ts: 6 });
        const events = await rec.waitFor(2);
        const diff2 = events[1]!.event.data as PresenceDiff;
        assert.deepEqual([diff2.joined, diff2.left.map((l) => l.username).sort()], [[{ username: "cid", user: "u4", rejoin: true }], ["ann", "bob"]]);
        assert.ok(diff2.version > diff1.version);
        assert.deepEqual(await engine.presence("big"), [
          { username: "ann", connections: 1 },
          { username: "cid", user: "u4", connections: 1 },
          { username: "zed", connections: 1 },
        ]);
        assert.deepEqual((await engine.rooms()).find((r) => r.room === "big")?.users, 3);
      } finally {
        await engine.close();
      }
    });

    it("counts this process and its connections in stats", async () => {
      const engine = await factory.create({ historySize: 100 });
      try {
        engine.setConnectionCount(7);
        assert.deepEqual(await engine.stats(), { nodes: 1, connections: 7 });
        assert.deepEqual(engine.health(), { ok: true });
      } finally {
        await engine.close();
      }
    });
  });
}
