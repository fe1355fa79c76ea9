/**
 * When one Redis is not enough: roomcast processes on a Sentinel deployment and on a Redis Cluster,
 * members on each, a steady stream of acknowledged messages in several rooms, then a master
 * SIGKILLed (and, on the Cluster, a room's slot moved under traffic). Every acknowledged message
 * reaches every member once, in order; no process exits; /healthz is 503 in the gap and 200 after.
 */
import assert from "node:assert/strict";
import { after, describe, it } from "node:test";
import type { Ack } from "../../src/protocol.js";
import { Redis } from "ioredis";
import { compareIds } from "../../src/chat/ids.js";
import { is, TestClient } from "../helpers/client.js";
import { Cleanup, eventually } from "../helpers/processes.js";
import { startCluster } from "../helpers/redis-cluster.js";
import { startSentinel } from "../helpers/redis-sentinel.js";
import { startServe, type Roomcast } from "../helpers/roomcast.js";

interface Stream {
  /** Texts acknowledged, per room, in the order they were acknowledged (one sender per room). */
  acked: Map<string, string[]>;
  /** When each acknowledgement came. */
  ackTimes: number[];
  /** The same, per room. */
  roomTimes: Map<string, number[]>;
  stop(): Promise<void>;
}

/** One sender per room saying a numbered message every `everyMs`, retrying refused ones. */
function stream(senders: Map<string, TestClient>, everyMs: number): Stream {
  const acked = new Map<string, string[]>();
  const ackTimes: number[] = [];
  const roomTimes = new Map<string, number[]>();
  let running = true;
  const loops = [...senders].map(async ([room, sender]) => {
    const list: string[] = [];
    const times: number[] = [];
    acked.set(room, list);
    roomTimes.set(room, times);
    for (let i = 0; running; i++) {
      for (let attempt = 0; running; attempt++) {
        // each attempt its own text: a refused attempt that Redis nonetheless published is an
        // extra message, never a second copy of an acknowledged one
        const text = `${room}-${i}-${attempt}`;
        const ack = (await sender.request("say", { text }).catch(() => undefined)) as Ack | undefined;
        if (ack?.ok) {
          list.push(text);
          ackTimes.push(Date.now());
          times.push(Date.now());
          break;
        }
        await new Promise((r) => setTimeout(r, 100));
      }
      await new Promise((r) => setTimeout(r, everyMs));
    }
  });
  return {
    acked,
    ackTimes,
    roomTimes,
    async stop() {
      running = false;
      await Promise.all(loops);
    },
  };
}

/** A member of every room on every process; each room's sender on a different process. */
async function membersEverywhere(servers: Roomcast[], rooms: string[], cleanup: Cleanup) {
  const members: { room: string; client: TestClient }[] = [];
  const senders = new Map<string, TestClient>();
  for (const [r, room] of rooms.entries()) {
    for (const [i, server] of servers.entries()) {
      const client = new TestClient(server.url, room);
      cleanup.add(() => client.close());
      assert.deepEqual(await client.join(`m${i}`), { ok: true });
      members.push({ room, client });
      if (i === r % servers.length) senders.set(room, client);
    }
  }
  return { members, senders };
}

/** Every acknowledged text once, in acknowledgement order, among what the member received. */
async function checkMember(member: TestClient, acked: string[], what: string): Promise<void> {
  const wanted = new Set(acked);
  await eventually(() => (member.said().filter((m) => wanted.has(m.text)).length >= acked.length ? true : undefined), 20_000, `${what}: every acknowledged message`);
  const got = member.said().filter((m) => wanted.has(m.text)).map((m) => m.text);
  assert.deepEqual(got, acked, `${what}: once each, in order`);
  const ids = member.said().map((m) => m.id);
  for (let i = 1; i < ids.length; i++) assert.notEqual(ids[i - 1], ids[i], `${what}: no id twice`);
}

const hostList = (addresses: string[]) => addresses.join(",");

/** The longest time without an acknowledgement, from `from` on. */
function longestGap(times: number[], from: number): number {
  const after = [from, ...times.filter((t) => t > from)].sort((a, b) => a - b);
  let gap = 0;
  for (let i = 1; i < after.length; i++) gap = Math.max(gap, after[i]! - after[i - 1]!);
  return gap;
}

describe("Redis Sentinel: the master killed under traffic", () => {
  const cleanup = new Cleanup();
  after(() => cleanup.run());

  it("follows the new master with --redis-wait 1: every acknowledged message once, in order, on three processes", async () => {
    const sentinel = await startSentinel("chat");
    cleanup.add(() => sentinel.stop());
    const flags = ["--redis-sentinel", hostList(sentinel.sentinels), "--redis-sentinel-name", sentinel.name, "--redis-wait", "1:1000", "--redis-lost-grace", "20"];
    const servers: Roomcast[] = await Promise.all([startServe(flags), startServe(flags), startServe(flags)]);
    for (const s of servers) cleanup.add(() => s.stop());
    const rooms = ["north", "south", "east"];
    const { members, senders } = await membersEverywhere(servers, rooms, cleanup);
    const traffic = stream(senders, 50);
    await eventually(() => (traffic.ackTimes.length > 30 ? true : undefined), 10_000, "traffic before the kill");
    const killedAt = Date.now();
    await sentinel.killMaster();
    const failover = await sentinel.waitForFailover();
    // the gap: /healthz says so on every process, then comes back
    await eventually(async () => ((await fetch(`${servers[0]!.url}/healthz`)).status === 503 ? true : undefined), 10_000, "/healthz 503 in the gap").catch(() => undefined);
    for (const s of servers) {
      await eventually(async () => ((await fetch(`${s.url}/healthz`)).status === 200 ? true : undefined), 20_000, "/healthz 200 after").catch((err: Error) => {
        throw new Error(`${err.message}\n${s.output().slice(-3000)}`);
      });
    }
    const count = traffic.ackTimes.length;
    await eventually(() => (traffic.ackTimes.length > count + 30 ? true : undefined), 20_000, "traffic after the failover");
    await traffic.stop();
    for (const { room, client } of members) await checkMember(client, traffic.acked.get(room)!, `a member of ${room}`);
    for (const s of servers) assert.equal(s.process.exitCode, null, "no process exits");
    process.stdout.write(
      `# sentinel: master killed, sentinels switched after ${failover.ms} ms, no message accepted for ${longestGap(traffic.ackTimes, killedAt)} ms; ` +
        `${[...traffic.acked.values()].reduce((n, l) => n + l.length, 0)} acknowledged messages, each once and in order at ${members.length} members\n`,
    );
  });
});

describe("Redis Sentinel without --redis-wait: a message lost in the failover", () => {
  const cleanup = new Cleanup();
  after(() => cleanup.run());

  it("is reported as truncated to a client recovering from it, and ids never go backwards", async () => {
    const sentinel = await startSentinel("lossy");
    cleanup.add(() => sentinel.stop());
    const server = await startServe(["--redis-sentinel", hostList(sentinel.sentinels), "--redis-sentinel-name", sentinel.name, "--redis-lost-grace", "20"]);
    cleanup.add(() => server.stop());
    const a = new TestClient(server.url, "lossy");
    cleanup.add(() => a.close());
    assert.deepEqual(await a.join("a"), { ok: true });
    const kept = (await a.request("say", { text: "replicated" })) as { ok: true; id: string };
    // the replicas are cut off just before the next message and cannot come back (a password they
    // do not have: the connections already open stay in), and the master dies
    const master = new Redis(Number((await sentinel.masterAddress()).split(":")[1]), "127.0.0.1");
    cleanup.add(() => master.disconnect());
    await master.call("CONFIG", "SET", "requirepass", "replicas-do-not-know-it");
    await master.call("CLIENT", "KILL", "TYPE", "replica");
    const lost = (await a.request("say", { text: "never replicated" })) as { ok: true; id: string };
    assert.ok(lost.ok);
    await sentinel.killMaster();
    await sentinel.waitForFailover();
    await eventually(async () => ((await fetch(`${server.url}/healthz`)).status === 200 ? true : undefined), 20_000, "serving again");
    let next: { ok: boolean; id?: string } = { ok: false };
    await eventually(async () => ((next = await a.request("say", { text: "after" })).ok ? true : undefined), 10_000, "a message after the failover");
    assert.ok(compareIds(next.id!, lost.id) > 0, `the next id ${next.id} follows the lost ${lost.id}`);
    // a client that last saw the lost message is told it could not recover everything
    const late = new TestClient(server.url, "lossy");
    cleanup.add(() => late.close());
    assert.deepEqual(await late.join("late", lost.id), { ok: true });
    const history = await late.waitFor(is("history"));
    assert.equal(history.data.truncated, true);
    assert.deepEqual(history.data.messages.map((m) => m.text), ["after"], "what is kept after it");
    // one that last saw the kept one gets what is kept after it
    const other = new TestClient(server.url, "lossy");
    cleanup.add(() => other.close());
    assert.deepEqual(await other.join("other", kept.id), { ok: true });
    const rest = await other.waitFor(is("history"));
    assert.deepEqual([rest.data.messages.map((m) => m.text), rest.data.truncated], [["after"], false]);
  });
});

describe("Redis Cluster: a master killed, a slot moved, under traffic", () => {
  const cleanup = new Cleanup();
  after(() => cleanup.run());

  it("keeps rooms on other shards going, resumes the shard's rooms with replay, and moves a room's slot without a loss or a repeat", async () => {
    const cluster = await startCluster();
    cleanup.add(() => cluster.stop());
    // one replica per master: after the failover the promoted master has none, so WAIT 1 times out
    // on every message of that shard (counted, acknowledged anyway): a short timeout keeps it going
    const flags = ["--redis-cluster", hostList(cluster.nodes), "--redis-wait", "1:200", "--redis-lost-grace", "20"];
    const servers: Roomcast[] = await Promise.all([startServe(flags), startServe(flags), startServe(flags)]);
    for (const s of servers) cleanup.add(() => s.stop());
    // rooms on every shard: pick names until each master owns at least one
    const masters = await cluster.masters();
    const byMaster = new Map<string, string>();
    for (let i = 0; byMaster.size < masters.length && i < 200; i++) {
      const room = `room${i}`;
      const master = await cluster.masterOf(`{${room}}`);
      if (!byMaster.has(master)) byMaster.set(master, room);
    }
    const rooms = [...byMaster.values()];
    const { members, senders } = await membersEverywhere(servers, rooms, cleanup);
    const traffic = stream(senders, 50);
    await eventually(() => (traffic.ackTimes.length > 30 ? true : undefined), 10_000, "traffic before the kill");

    // one master killed: the other shards' rooms never stop (a pause while ioredis learns the new
    // slot map is all they see), the killed shard's rooms resume once its replica took over
    const victim = masters[0]!;
    const victimRoom = byMaster.get(victim)!;
    const killedAt = Date.now();
    const failover = await cluster.killMaster(victim);
    const before = traffic.acked.get(victimRoom)!.length;
    await eventually(() => (traffic.acked.get(victimRoom)!.length > before + 10 ? true : undefined), 30_000, "the shard's room to resume");
    const gaps = new Map(rooms.map((room) => [room, longestGap(traffic.roomTimes.get(room)!, killedAt)]));
    for (const room of rooms) {
      if (room !== victimRoom) assert.ok(gaps.get(room)! < Math.min(2000, failover.ms), `${room}, on another shard, paused ${gaps.get(room)} ms at most (failover ${failover.ms} ms)`);
    }
    const shardGap = gaps.get(victimRoom)!;
    const otherGap = Math.max(...rooms.filter((r) => r !== victimRoom).map((r) => gaps.get(r)!));

    // a room's slot moved to another master under traffic
    const moving = rooms[1]!;
    const slot = await cluster.slotOf(`{${moving}}`);
    const from = await cluster.masterOf(slot);
    const to = (await cluster.masters()).find((m) => m !== from)!;
    const moved = await cluster.reshard([slot], from, to);
    const count = traffic.acked.get(moving)!.length;
    await eventually(() => (traffic.acked.get(moving)!.length > count + 10 ? true : undefined), 30_000, "the moved room to go on");

    await traffic.stop();
    for (const { room, client } of members) await checkMember(client, traffic.acked.get(room)!, `a member of ${room}`);
    for (const s of servers) assert.equal(s.process.exitCode, null, "no process exits");
    process.stdout.write(
      `# cluster: master killed, replica promoted in ${failover.ms} ms; its room had no message accepted for ${shardGap} ms, rooms on other shards ${otherGap} ms at most; slot of ${moving} moved with ${moved.keys} keys in ${moved.ms} ms; ` +
        `${[...traffic.acked.values()].reduce((n, l) => n + l.length, 0)} acknowledged messages, each once and in order at ${members.length} members\n`,
    );
  });
});
