/**
 * A fault scenario on the multi-host lab: one of two app machines is lost (every process SIGKILLed)
 * while two members, one on each machine, keep talking in a room of members from six client hosts.
 */
import assert from "node:assert/strict";
import { after, before, describe, it } from "node:test";
import { Lab } from "../../lab/lab.js";
import { labUnavailable } from "../../lab/netns.js";
import { openSides, roomHistory, type Side } from "../../lab/scenario.js";
import type { PresenceUser } from "../../src/protocol.js";
import { Cleanup, eventually } from "../helpers/processes.js";

const unavailable = labUnavailable();
/** Seconds after which a silent roomcast process counts as dead (--node-ttl), short for the test. */
const NODE_TTL = 5;
const MEMBERS_PER_HOST = 4;

describe("the multi-host lab: a machine lost", { skip: unavailable }, () => {
  const cleanup = new Cleanup();
  let lab: Lab;
  const room = "lost";
  const sides: Side[] = [];
  const on = (app: string) => sides.filter((s) => s.app === app);
  /** When app1 was lost. */
  let killedAt = 0;

  before(async () => {
    lab = await Lab.start({
      clientHosts: 6,
      // a big room once 10 members are in: joins and quits reach the members as presence_diff
      roomcastFlags: ["--rate-limit", "200", "--rate-burst", "200", "--node-ttl", String(NODE_TTL), "--big-room", "10"],
    });
    cleanup.add(() => lab.stop());
    sides.push(
      ...(await openSides(lab, { room, perHost: MEMBERS_PER_HOST, open: { trackPresence: true, reconnect: { delayMs: 100, delayMaxMs: 1000 } } })),
    );
    assert.ok(on("app1").length > 0 && on("app2").length > 0, `members on both app hosts: ${sides.map((s) => `${s.host}→${s.app}`)}`);
  });
  after(() => cleanup.run());

  it("loses app1 mid-conversation: every message reaches every member once, in order (app1's after re-joining with since)", async (t) => {
    const senders = [on("app1")[0]!, on("app2")[0]!].map((side) => ({ runner: side.runner, name: side.members[0]! }));
    const streams = senders.map((s) => s.runner.sayMany({ name: s.name, prefix: `${s.name}: `, count: 80, intervalMs: 25, timeoutMs: 20_000 }));
    // lose the machine once the conversation is under way
    const watcher = on("app2")[0]!;
    await eventually(async () => ((await watcher.runner.report({ names: [watcher.members[0]!] })).totals.received >= 30 ? true : undefined), 10_000, "30 messages");
    killedAt = Date.now();
    const killed = lab.killHost("app1");
    const [first, second] = await Promise.all(streams);
    for (const stream of [first!, second!]) assert.deepEqual(stream.refused, [], "every message accepted in the end");
    const acked = [...first!.ids, ...second!.ids];

    const expected = await roomHistory(lab, room);
    for (const id of acked) assert.ok(expected.includes(id), `acknowledged ${id} is in the room's history`);
    let recoveredAt = 0;
    for (const side of sides) {
      const settled = await side.runner.settle({ expected, timeoutMs: 30_000 });
      recoveredAt = Math.max(recoveredAt, Date.now());
      assert.ok(settled.done, `${side.host}: every member connected, joined, with every message: ${JSON.stringify(settled).slice(0, 1500)}`);
      assert.equal(settled.wrong, 0, `${side.host}: once each, in order: ${JSON.stringify(settled.reports).slice(0, 1500)}`);
      if (side.app === "app1") assert.ok(settled.totals.rejoins >= MEMBERS_PER_HOST, `${side.host}'s members re-joined`);
    }
    const moved = on("app1").length * MEMBERS_PER_HOST;
    t.diagnostic(
      `app1 lost (${killed.length} processes SIGKILLed) after 30 messages: ${acked.length} messages acknowledged (${expected.length} in the history), ` +
        `${moved} members re-joined through app2, all ${sides.length * MEMBERS_PER_HOST} members had every message once, in order, ` +
        `${recoveredAt - killedAt} ms after the loss`,
    );
  });

  it(
    "loses app1: the room's presence and every member's view of it forget app1's connections, pushed to them within the node TTL",
    async (t) => {
      const everyone: PresenceUser[] = sides
        .flatMap((s) => s.members)
        .sort()
        .map((username) => ({ username, connections: 1 }));
      const roomPresence = async () =>
        (JSON.parse((await lab.get(`${lab.edgeUrl}/api/rooms/${room}/presence`)).body) as { users: PresenceUser[] }).users;
      await eventually(
        async () => (JSON.stringify(await roomPresence()) === JSON.stringify(everyone) ? true : undefined),
        (NODE_TTL + 10) * 1000,
        "the room's presence (/api/rooms/:room/presence) to list every member once with one connection",
      ).catch(async (err: unknown) => {
        throw new Error(`${(err as Error).message}; it lists ${JSON.stringify((await roomPresence()).filter((u) => u.connections !== 1))} with more than one`);
      });
      t.diagnostic(`the room's presence right ${Date.now() - killedAt} ms after the loss (--node-ttl ${NODE_TTL})`);
      const views = async () => {
        const wrong: string[] = [];
        for (const side of sides) {
          for (const name of side.members) {
            const view = await side.runner.presence(name);
            if (JSON.stringify(view.users) !== JSON.stringify(everyone)) {
              const extra = view.users.filter((u) => u.connections !== 1).map((u) => `${u.username}×${u.connections}`);
              wrong.push(`${name} (on ${side.app === "app1" ? "app1, then app2" : side.app}): ${extra.join(" ") || `${view.users.length} users`}`);
            }
          }
        }
        return wrong;
      };
      await eventually(async () => ((await views()).length === 0 ? true : undefined), (NODE_TTL + 10) * 1000, "every member's view").catch(
        async (err: unknown) => {
          const wrong = await views();
          throw new Error(`${(err as Error).message}: ${wrong.length} members see lost connections, e.g. ${wrong.slice(0, 3).join("; ")}`);
        },
      );
      const healed = Date.now() - killedAt;
      t.diagnostic(`every member's own view (pushed, no HTTP) healed ${healed} ms after the loss (--node-ttl ${NODE_TTL})`);
      assert.ok(healed < NODE_TTL * 1000 + 1500, `within the node TTL: ${healed} ms`);
    },
  );
});
