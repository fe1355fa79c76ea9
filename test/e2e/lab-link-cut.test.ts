/**
 * A fault scenario on the multi-host lab: app1's cable pulled for 20 s, then plugged back, while two
 * members, one on each app host, keep talking in a room of members from six client hosts.
 */
import assert from "node:assert/strict";
import { after, before, describe, it } from "node:test";
import { Lab } from "../../lab/lab.js";
import { labUnavailable } from "../../lab/netns.js";
import { openSides, roomHistory, type Side } from "../../lab/scenario.js";
import { Cleanup, eventually } from "../helpers/processes.js";

const unavailable = labUnavailable();
/**
 * Seconds after which a silent roomcast process counts as dead (--node-ttl), short for the test.
 * Presence after the cut is not asserted yet: the members first on app1 are missing from the
 * room's presence after they re-joined (seen 2 runs in 2); see the branch's report.
 */
const NODE_TTL = 5;
const MEMBERS_PER_HOST = 3;
const CUT_SECONDS = 20;

describe("the multi-host lab: app1's link cut", { skip: unavailable }, () => {
  const cleanup = new Cleanup();
  let lab: Lab;
  const room = "cut";
  const sides: Side[] = [];
  const on = (app: string) => sides.filter((s) => s.app === app);

  before(async () => {
    lab = await Lab.start({
      clientHosts: 6,
      roomcastFlags: ["--rate-limit", "200", "--rate-burst", "200", "--node-ttl", String(NODE_TTL), "--big-room", "10"],
    });
    cleanup.add(() => lab.stop());
    sides.push(
      ...(await openSides(lab, { room, perHost: MEMBERS_PER_HOST, open: { trackPresence: true, reconnect: { delayMs: 100, delayMaxMs: 1000 } } })),
    );
    assert.ok(on("app1").length > 0 && on("app2").length > 0, `members on both app hosts: ${sides.map((s) => `${s.host}→${s.app}`)}`);
  });
  after(async () => {
    await cleanup.run();
    if (lab) assert.deepEqual(lab.leftovers(), { netns: [], links: [] }, "the lab is fully torn down");
  });

  it("cuts app1's link for 20 s: every message reaches every member once, in order; app1 serves again", async (t) => {
    const senders = [on("app1")[0]!, on("app2")[0]!].map((side) => ({ runner: side.runner, name: side.members[0]! }));
    // a stream that outlasts the cut: 10 messages a second for 30 s from each side
    const streams = senders.map((s) => s.runner.sayMany({ name: s.name, prefix: `${s.name}: `, count: 300, intervalMs: 100, timeoutMs: 45_000 }));
    const received = async (side: Side) => (await side.runner.report({ names: [side.members[0]!] })).totals.received;
    await eventually(async () => ((await received(on("app2")[0]!)) >= 30 ? true : undefined), 10_000, "30 messages");
    // the longest time a member went without a new message, sampled every 200 ms: one on each app host
    const gaps = new Map<string, number>();
    let streaming = true;
    const gapWatch = Promise.all(
      [on("app1")[0]!, on("app2")[0]!].map(async (side) => {
        let last = await received(side);
        let lastAt = Date.now();
        while (streaming) {
          await new Promise((r) => setTimeout(r, 200));
          const now = await received(side);
          if (now > last) [last, lastAt] = [now, Date.now()];
          else gaps.set(side.app, Math.max(gaps.get(side.app) ?? 0, Date.now() - lastAt));
        }
      }),
    );
    await lab.cutLink("app1", CUT_SECONDS);
    const backAt = Date.now();
    const [first, second] = await Promise.all(streams);
    const streamedAt = Date.now();
    streaming = false;
    await gapWatch;
    for (const stream of [first!, second!]) assert.deepEqual(stream.refused, [], "every message accepted in the end");
    const acked = [...first!.ids, ...second!.ids];
    const expected = await roomHistory(lab, room);
    for (const id of acked) assert.ok(expected.includes(id), `acknowledged ${id} is in the room's history`);
    let settledAt = 0;
    for (const side of sides) {
      const settled = await side.runner.settle({ expected, timeoutMs: 30_000 });
      settledAt = Math.max(settledAt, Date.now());
      assert.ok(settled.done, `${side.host}: every member connected, joined, with every message: ${JSON.stringify(settled).slice(0, 1500)}`);
      assert.equal(settled.wrong, 0, `${side.host}: once each, in order: ${JSON.stringify(settled.reports).slice(0, 1500)}`);
    }
    // app1 serves again: its workers are healthy and a new member sent there joins and hears the room
    for (let i = 0; i < 2; i++) {
      const url = `http://${lab.host("app1").address}:${6001 + i}/healthz`;
      await eventually(async () => ((await lab.fetchFrom("edge", url)).status === 200 ? true : undefined), 15_000, `${url} 200`);
    }
    const late = on("app1")[0]!;
    const before = await lab.connectionsOn("app1");
    await late.runner.open({ url: lab.edgeUrl, room, names: [`${late.host}-late`], trackPresence: true, reconnect: { delayMs: 100, delayMaxMs: 1000 } });
    assert.equal(await lab.connectionsOn("app1"), before + 1, "the new member is on app1");
    late.members.push(`${late.host}-late`);
    const said = await senders[1]!.runner.sayMany({ name: senders[1]!.name, prefix: "after: ", count: 3 });
    assert.deepEqual(said.refused, []);
    await eventually(
      async () => ((await late.runner.report({ names: [`${late.host}-late`] })).totals.received >= 3 ? true : undefined),
      10_000,
      "the new member on app1 receives messages",
    );
    t.diagnostic(
      `app1's link down ${CUT_SECONDS} s: ${acked.length} messages acknowledged, all ${sides.length * MEMBERS_PER_HOST} members had every one once, in order; ` +
        `longest delivery gap ${gaps.get("app1") ?? 0} ms for a member first on app1, ${gaps.get("app2") ?? 0} ms for one on app2; ` +
        `all settled ${settledAt - backAt} ms after the link came back (the streams ended ${streamedAt - backAt} ms after it)`,
    );
  });
});
