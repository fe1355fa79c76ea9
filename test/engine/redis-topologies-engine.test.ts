/**
 * The Redis engine on Redis's distributed topologies: the whole Engine contract on a master with
 * replicas behind Sentinel, and on a Redis Cluster (3 masters, 3 replicas: rooms on every shard,
 * sharded pub/sub); and on the Cluster, a dead process's members taken out of presence in rooms
 * of different shards (the node registry and each room live on different slots).
 */
import assert from "node:assert/strict";
import { randomUUID } from "node:crypto";
import { after, before, describe, it } from "node:test";
import { pino } from "pino";
import { RedisEngine } from "../../src/engine/redis/redis-engine.js";
import type { RedisTarget } from "../../src/engine/redis/topology.js";
import type { PresenceDiff } from "../../src/protocol.js";
import { Cleanup } from "../helpers/processes.js";
import { startCluster } from "../helpers/redis-cluster.js";
import { startSentinel } from "../helpers/redis-sentinel.js";
import { engineContract, recorder } from "./contract.js";

const logger = pino({ level: "silent" });
const hostPort = (address: string) => ({ host: address.split(":")[0]!, port: Number(address.split(":")[1]) });

const cleanup = new Cleanup();
let sentinelTarget: RedisTarget;
let clusterTarget: RedisTarget;
before(async () => {
  const [sentinel, cluster] = await Promise.all([startSentinel("contract"), startCluster()]);
  cleanup.add(() => sentinel.stop());
  cleanup.add(() => cluster.stop());
  sentinelTarget = { kind: "sentinel", sentinels: sentinel.sentinels.map(hostPort), name: sentinel.name };
  clusterTarget = { kind: "cluster", nodes: cluster.nodes.map(hostPort) };
});
after(() => cleanup.run());

function engineOn(target: () => RedisTarget, prefix: string, historySize = 1000, nodeTtlMs = 15_000) {
  return new RedisEngine({ target: target(), prefix, historySize, nodeTtlMs, logger });
}

for (const [name, target] of [
  ["redis sentinel", () => sentinelTarget],
  ["redis cluster", () => clusterTarget],
] as const) {
  engineContract(name, {
    async create({ historySize }) {
      const engine = engineOn(target, `t${randomUUID().slice(0, 8)}:`, historySize);
      await engine.start();
      return engine;
    },
  });
}

describe("Redis Cluster: presence of a dead process in rooms on every shard", () => {
  it("takes its members out of each room once, with a presence_diff per room", async () => {
    const prefix = `d${randomUUID().slice(0, 8)}:`;
    const ttl = 1500;
    const a = engineOn(() => clusterTarget, prefix, 1000, ttl);
    const b = engineOn(() => clusterTarget, prefix, 1000, ttl);
    await Promise.all([a.start(), b.start()]);
    try {
      // rooms whose hash tags fall on different shards
      const rooms = ["alpha", "bravo", "charlie", "delta", "echo", "foxtrot"];
      const recs = rooms.map(() => recorder());
      for (const [i, room] of rooms.entries()) {
        await a.subscribe(room, recs[i]!.listener);
        await b.addPresence(room, { member: `m${i}`, username: `user${i}` });
      }
      await b.crash();
      for (const [i, rec] of recs.entries()) {
        const [diff] = await rec.waitFor(1, ttl + 4000);
        assert.equal(diff!.event.event, "presence_diff");
        assert.deepEqual((diff!.event.data as PresenceDiff).left, [{ username: `user${i}` }]);
      }
      for (const room of rooms) assert.deepEqual(await a.presence(room), []);
      assert.deepEqual(await a.rooms(), []);
    } finally {
      await a.close();
    }
  });
});
