/**
 * `roomcast cluster` behind nginx started from `roomcast nginx` output: the article's layout, with
 * failover that loses nothing.
 */
import assert from "node:assert/strict";
import { after, before, describe, it } from "node:test";
import { Redis } from "ioredis";
import { compareIds } from "../../src/chat/ids.js";
import { TestClient } from "../helpers/client.js";
import { startNginx, type TestNginx } from "../helpers/nginx.js";
import { Cleanup } from "../helpers/processes.js";
import { startRedis, type TestRedis } from "../helpers/redis.js";
import { getJson, metric, startCluster, type Cluster } from "../helpers/roomcast.js";

describe("cluster behind nginx", () => {
  const cleanup = new Cleanup();
  let redis: TestRedis;
  let cluster: Cluster;
  let nginx: TestNginx;
  const clients: TestClient[] = [];
  const track = (c: TestClient) => {
    clients.push(c);
    return c;
  };
  const closeAll = () => {
    for (const c of clients.splice(0)) c.close();
  };
  /** A reconnecting client through nginx from its own /24 of the loopback range, so the hash spreads them. */
  const viaNginx = (room: string, subnet: number) =>
    track(new TestClient(nginx.url, room, { localAddress: `127.0.${subnet}.1`, reconnection: true, reconnectionDelay: 100, reconnectionDelayMax: 500 } as object));
  const connectionsOf = (worker: number) => metric(cluster.url(worker), "roomcast_connections");

  before(async () => {
    redis = await startRedis();
    cleanup.add(() => redis.stop());
    cluster = await startCluster(redis.url, 2, ["--rate-limit", "200", "--rate-burst", "200", "--trust-proxy", "yes"]);
    cleanup.add(() => cluster.stop("SIGKILL"));
    nginx = await startNginx([`127.0.0.1:${cluster.portBase}-${cluster.portBase + 1}`]);
    cleanup.add(() => nginx.stop());
    cleanup.add(closeAll);
  });
  after(() => cleanup.run());

  it("shares rooms between workers, and the primary counts every connection", async () => {
    const a = track(new TestClient(cluster.url(0), "shared"));
    const b = track(new TestClient(cluster.url(1), "shared"));
    const c = track(new TestClient(cluster.url(1), "shared"));
    for (const [client, name] of [[a, "a"], [b, "b"], [c, "c"]] as const) assert.deepEqual(await client.join(name), { ok: true });
    await a.request("say", { text: "to both workers" });
    for (const client of [a, b, c]) await client.waitForSaid(1);
    await cluster.waitForLine((l) => l.includes('"msg":"connections"') && l.includes('"connections":3'), 10_000, "the primary to count 3");
    closeAll();
    await cluster.waitForLine((l) => l.includes('"msg":"connections"') && l.includes('"connections":0'), 10_000, "the primary to count 0");
  });

  it("restarts a SIGKILLed worker on its port within seconds", async (t) => {
    const offset = cluster.outputLength();
    const killedAt = Date.now();
    process.kill(cluster.workerPid(0), "SIGKILL");
    await cluster.waitForLine((l) => l.includes('"msg":"worker listening"') && l.includes('"worker":0,'), 10_000, "worker 0 to be back", offset);
    const back = track(new TestClient(cluster.url(0), "after-restart"));
    assert.deepEqual(await back.join("back"), { ok: true });
    const seconds = (Date.now() - killedAt) / 1000;
    assert.ok(seconds < 5, `back after ${seconds} s`);
    t.diagnostic(`SIGKILLed worker back on its port and serving a join after ${seconds} s`);
    closeAll();
  });

  it("serves WebSocket, polling-only and direct clients in one room through nginx", async () => {
    const page = await fetch(`${nginx.url}/`);
    assert.equal(page.status, 200);
    assert.match(await page.text(), /<title>roomcast<\/title>/);
    const ws = track(new TestClient(nginx.url, "mixed", { transports: ["websocket"] }));
    const polling = track(new TestClient(nginx.url, "mixed", { transports: ["polling"] }));
    const direct = track(new TestClient(cluster.url(1), "mixed"));
    for (const [client, name] of [[ws, "ws"], [polling, "polling"], [direct, "direct"]] as const) {
      assert.deepEqual(await client.join(name), { ok: true });
    }
    assert.equal(polling.socket.io.engine.transport.name, "polling");
    await ws.request("say", { text: "from ws" });
    await polling.request("say", { text: "from polling" });
    await direct.request("say", { text: "from direct" });
    for (const client of [ws, polling, direct]) {
      const said = await client.waitForSaid(3);
      assert.deepEqual(said.map((m) => m.text).sort(), ["from direct", "from polling", "from ws"]);
    }
    closeAll();
  });

  it("fails over a killed worker's clients through nginx: every message exactly once, in order", async (t) => {
    const room = "failover";
    // Source addresses in different /24s of the loopback range, so that the hash spreads them.
    const receivers = Array.from({ length: 16 }, (_, i) => viaNginx(room, i + 1));
    await Promise.all(receivers.map((r, i) => r.join(`r${i}`)));
    receivers.forEach((r, i) => r.autoRejoin(`r${i}`));
    const perWorker = [await connectionsOf(0), await connectionsOf(1)];
    assert.ok(perWorker[0]! > 0 && perWorker[1]! > 0, `the hash spread the clients over both workers: ${perWorker}`);

    const sender = track(new TestClient(cluster.url(1), room));
    await sender.join("sender");
    const total = 100;
    let killedAt = 0;
    const onWorker0 = new Set<TestClient>();
    for (const r of receivers) r.socket.once("disconnect", () => onWorker0.add(r));
    for (let i = 0; i < total; i++) {
      if (i === 30) {
        killedAt = Date.now();
        process.kill(cluster.workerPid(0), "SIGKILL");
      }
      await sender.sayReliably(`n${i}`);
      await new Promise((r) => setTimeout(r, 20)); // a steady 40–50 messages a second
    }
    await Promise.all(receivers.map((r) => r.waitForSaid(total, 20_000))).catch((err: unknown) => {
      const state = receivers.map((r, i) => `r${i}: ${r.said().length} messages, ${r.rejoins} rejoins, connected ${r.socket.connected}`);
      throw new Error(`${state.join("; ")}\n${String(err).slice(0, 300)}`);
    });
    const recoveredAt = Date.now();
    assert.equal(onWorker0.size, perWorker[0], "the killed worker's receivers lost their connection");
    const expected = Array.from({ length: total }, (_, i) => `n${i}`);
    for (const r of receivers) {
      const said = r.said();
      assert.deepEqual(said.map((m) => m.text), expected, "every message exactly once, in order");
      assert.deepEqual(said.map((m) => m.id), [...said.map((m) => m.id)].sort(compareIds));
    }
    for (const r of onWorker0) assert.ok(r.rejoins >= 1, "re-joined after the kill");
    const rejoined = Math.max(...[...onWorker0].map((r) => r.rejoinedAt));
    t.diagnostic(
      `failover: ${onWorker0.size} of 16 receivers moved; kill → all of them re-joined with what they missed ` +
        `${rejoined - killedAt} ms; kill → last message received ${recoveredAt - killedAt} ms (the sender kept sending until then)`,
    );
    closeAll();
  });

  it("keeps messages flowing with no gap and no duplicate through a rolling restart (SIGHUP)", async (t) => {
    const room = "rolling";
    const receivers = Array.from({ length: 8 }, (_, i) => viaNginx(room, i + 20));
    await Promise.all(receivers.map((r, i) => r.join(`r${i}`)));
    receivers.forEach((r, i) => r.autoRejoin(`r${i}`));
    const sender = viaNginx(room, 99);
    await sender.join("sender");
    sender.autoRejoin("sender");

    const offset = cluster.outputLength();
    let sent = 0;
    let longestPause = 0;
    let last = Date.now();
    const send = async () => {
      await sender.sayReliably(`k${sent++}`);
      longestPause = Math.max(longestPause, Date.now() - last);
      last = Date.now();
      await new Promise((r) => setTimeout(r, 25));
    };
    for (let i = 0; i < 20; i++) await send();
    cluster.process.kill("SIGHUP");
    let done = false;
    void cluster
      .waitForLine((l) => l.includes('"msg":"rolling restart done"'), 30_000, "the rolling restart", offset)
      .then(() => (done = true));
    while (!done) await send();
    for (let i = 0; i < 20; i++) await send();

    const history = await getJson<{ messages: { id: string; text: string }[] }>(`${nginx.url}/api/rooms/${room}/history?limit=1000`);
    const ids = history.body.messages.map((m) => m.id);
    for (const r of receivers) {
      const said = await r.waitForSaid(ids.length, 20_000);
      assert.deepEqual(said.map((m) => m.id), ids, "the room's messages, each once, in order");
    }
    const texts = new Set(history.body.messages.map((m) => m.text));
    for (let i = 0; i < sent; i++) assert.ok(texts.has(`k${i}`), `k${i} arrived`);
    assert.ok(longestPause < 3000, `messages kept flowing (longest pause ${longestPause} ms)`);
    t.diagnostic(`rolling restart: ${sent} messages, longest pause between accepted messages ${longestPause} ms, receivers rejoined ${receivers.reduce((n, r) => n + r.rejoins, 0)} times`);
    closeAll();
  });

  it("stops gracefully on SIGTERM within 10 s and removes its presence at once", async () => {
    const a = track(new TestClient(cluster.url(0), "last"));
    const b = track(new TestClient(cluster.url(1), "last"));
    await a.join("a");
    await b.join("b");
    const pids = [cluster.workerPid(0), cluster.workerPid(1)];
    const started = Date.now();
    await cluster.stop("SIGTERM", 12_000);
    assert.equal(await cluster.exited, 0);
    assert.ok(Date.now() - started < 10_000);
    const admin = new Redis(redis.url);
    try {
      assert.equal(await admin.exists("roomcast:presence:last"), 0, "presence removed");
      // (the workers SIGKILLed above stay listed until their heartbeat expires)
      const nodes = await admin.zrange("roomcast:nodes", "0", "-1");
      for (const pid of pids) assert.ok(!nodes.some((n) => n.includes(`-${pid}-`)), `worker ${pid} removed its node record`);
    } finally {
      admin.disconnect();
    }
  });
});

describe("cluster failures", () => {
  const cleanup = new Cleanup();
  let redis: TestRedis;
  before(async () => {
    redis = await startRedis();
    cleanup.add(() => redis.stop());
  });
  after(() => cleanup.run());

  it("gives up with the reason when a worker keeps crashing (5 times in a minute), exit code 1", async () => {
    const cluster = await startCluster(redis.url, 2);
    cleanup.add(() => cluster.stop("SIGKILL"));
    for (let crash = 1; crash <= 5; crash++) {
      const offset = cluster.outputLength();
      process.kill(cluster.workerPid(0), "SIGKILL");
      if (crash < 5) {
        await cluster.waitForLine(
          (l) => l.includes('"msg":"worker listening"') && l.includes('"worker":0,'),
          15_000,
          `worker 0 back after crash ${crash}`,
          offset,
        );
      }
    }
    assert.equal(await cluster.exited, 1);
    assert.match(cluster.output(), /roomcast: worker 0 \(port \d+\) crashed 5 times in a minute \(killed by SIGKILL\); stopping/);
  });

  it("refuses to start, in one line, when a worker's port is taken", async () => {
    const { createServer } = await import("node:net");
    const cluster = await startCluster(redis.url, 1); // find a free range, then hold its port
    const port = cluster.portBase;
    await cluster.stop("SIGTERM");
    const blocker = createServer();
    await new Promise<void>((resolve) => blocker.listen(port, "127.0.0.1", resolve));
    cleanup.add(() => blocker.close());
    const { runCli } = await import("../helpers/roomcast.js");
    const result = await runCli(["cluster", "--redis", redis.url, "--workers", "1", "--port-base", String(port), "--host", "127.0.0.1", "--log-level", "silent"]);
    assert.equal(result.code, 1);
    assert.equal(result.output.trim(), `roomcast: port ${port} is already in use on 127.0.0.1`);
  });
});
