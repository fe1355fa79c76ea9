/**
 * The Sentinel and Cluster test topologies do what they promise (failover, promotion, resharding
 * with keys), and ioredis, the engine's client, follows each change without being told.
 */
import assert from "node:assert/strict";
import { after, before, describe, it } from "node:test";
import { Cluster, Redis } from "ioredis";
import { Cleanup, eventually } from "../helpers/processes.js";
import { redisCall, splitAddress } from "../helpers/redis-admin.js";
import { startCluster, type TestCluster } from "../helpers/redis-cluster.js";
import { startSentinel, type TestSentinel } from "../helpers/redis-sentinel.js";

describe("Redis Sentinel: 1 master, 2 replicas, 3 sentinels", () => {
  const cleanup = new Cleanup();
  let sentinel: TestSentinel;
  before(async () => {
    sentinel = await startSentinel();
    cleanup.add(() => sentinel.stop());
  });
  after(() => cleanup.run());

  it("promotes a replica when the master is killed; an ioredis client follows it; the old master returns as a replica", async () => {
    const client = new Redis({ sentinels: sentinel.sentinels.map(splitAddress), name: sentinel.name });
    client.on("error", () => {}); // connection errors while the master is down are expected
    try {
      await client.set("before", "kept");
      // Both replicas have it before the master dies, so whichever is promoted keeps it.
      assert.equal(await client.wait(2, 2000), 2);
      const killed = await sentinel.killMaster();
      const failover = await sentinel.waitForFailover();
      assert.equal(failover.previous, killed);
      assert.notEqual(failover.master, killed);
      assert.ok(sentinel.servers.includes(failover.master));
      assert.equal(await sentinel.masterAddress(), failover.master);
      // The client asks the sentinels again on reconnecting and writes to the new master.
      await eventually(() => client.set("after", "written").then(() => true), 15_000, "the client to write after the failover");
      assert.equal(await client.get("before"), "kept");
      assert.equal(await redisCall(failover.master, "GET", "after"), "written");

      await sentinel.restart(killed);
      assert.equal(await redisCall(killed, "GET", "after"), "written", "the old master replicates from the new one");
      assert.equal(await sentinel.masterAddress(), failover.master);
    } finally {
      client.disconnect();
    }
  });
});

describe("Redis Cluster: 3 masters with a replica each", () => {
  const cleanup = new Cleanup();
  let cluster: TestCluster;
  let client: Cluster;
  before(async () => {
    cluster = await startCluster();
    cleanup.add(() => cluster.stop());
    client = new Cluster(cluster.nodes.map(splitAddress));
    client.on("error", () => {});
    cleanup.add(() => client.disconnect());
  });
  after(() => cleanup.run());

  it("comes up with every slot owned by one of three masters, each with its replica", async () => {
    assert.equal(cluster.nodes.length, 6);
    const masters = await cluster.masters();
    assert.equal(masters.length, 3);
    for (const master of masters) assert.equal((await cluster.replicasOf(master)).length, 1, `${master} has a replica`);
    // Keys land on their slot's master, and the client finds them there.
    const owners = new Set<string>();
    for (const room of ["a", "b", "c", "d", "e", "f"]) {
      await client.set(`{${room}}:k`, room);
      const owner = await cluster.masterOf(`{${room}}:k`);
      assert.equal(await redisCall(owner, "GET", `{${room}}:k`), room);
      owners.add(owner);
    }
    assert.ok(owners.size > 1, "keys are spread over several masters");
  });

  it("moves a slot with its keys to another master while a client keeps writing to it", async () => {
    const slot = await cluster.slotOf("{room1}");
    const from = await cluster.masterOf(slot);
    const to = (await cluster.masters()).find((m) => m !== from);
    assert.ok(to);
    const kept = 300;
    for (let i = 0; i < kept; i++) await client.set(`{room1}:k${i}`, `v${i}`);

    // Traffic during the move: every write must succeed (ioredis follows ASK, then MOVED).
    let written = 0;
    let writing = true;
    const writer = (async () => {
      while (writing) {
        await client.set(`{room1}:w${written}`, "w");
        written++;
      }
    })();
    const result = await cluster.reshard([slot], from, to).finally(() => (writing = false));
    await writer;

    assert.equal(await cluster.masterOf(slot), to);
    assert.ok(result.keys >= kept, `moved ${result.keys} keys`);
    assert.ok(written > 0, "the client wrote while the slot moved");
    assert.equal(await redisCall(from, "CLUSTER", "COUNTKEYSINSLOT", slot), 0);
    assert.equal(await redisCall(to, "CLUSTER", "COUNTKEYSINSLOT", slot), kept + written);
    for (let i = 0; i < kept; i += 37) assert.equal(await client.get(`{room1}:k${i}`), `v${i}`);
    assert.equal(await client.get(`{room1}:w${written - 1}`), "w");
  });

  it("serves a key from the promoted replica once its master is killed", async () => {
    const key = "{room2}:greeting";
    await client.set(key, "hello");
    const master = await cluster.masterOf(key);
    const [replica] = await cluster.replicasOf(master);
    assert.ok(replica);
    // The replica must hold the key before its master dies: read it there (READONLY).
    const direct = new Redis({ ...splitAddress(replica), lazyConnect: true });
    cleanup.add(() => direct.disconnect());
    await direct.connect();
    await direct.readonly();
    await eventually(async () => ((await direct.get(key)) === "hello" ? true : undefined), 5000, "the replica to have the key");

    const failover = await cluster.killMaster(master);
    assert.equal(failover.killed, master);
    assert.equal(failover.promoted, replica);
    assert.equal(await cluster.masterOf(key), replica);
    assert.equal(await eventually(() => client.get(key), 15_000, "the client to read the key again"), "hello");
    await client.set(key, "again");
    assert.equal(await redisCall(replica, "GET", key), "again");

    await cluster.restart(master);
    assert.deepEqual(await cluster.replicasOf(replica), [master], "the old master came back as the new master's replica");
  });
});
