/**
 * The bench counts right: against servers that drop, repeat or reorder deliveries on purpose (real
 * Socket.IO servers, faulty by design), and against a real roomcast process.
 */
import assert from "node:assert/strict";
import { createServer } from "node:http";
import type { AddressInfo } from "node:net";
import { after, describe, it } from "node:test";
import { Server } from "socket.io";
import { planShares, runBench, type BenchOptions } from "../../bench/bench.js";
import { Cleanup } from "../helpers/processes.js";
import { startServe } from "../helpers/roomcast.js";

const cleanup = new Cleanup();
after(() => cleanup.run());

type Fault = "drop" | "repeat" | "reorder" | "slow";

/**
 * A Socket.IO server of the roomcast protocol that mistreats every 10th message of each sender
 * (drop, repeat, reorder), or delivers every message 400 ms late (slow).
 */
async function faultyServer(fault: Fault) {
  const http = createServer((_req, res) => res.writeHead(404).end()); // no /metrics here
  const io = new Server(http);
  const faults = { count: 0 };
  let nextId = 0;
  const held = new Map<string, unknown>();
  io.on("connection", (socket) => {
    const room = String(socket.handshake.query["roomid"]);
    socket.on("join", (_p: unknown, ack: (a: unknown) => void) => {
      void socket.join(room);
      socket.emit("message", { event: "history", data: { messages: [], truncated: false } });
      ack({ ok: true });
    });
    socket.on("say", (p: { text: string }, ack: (a: unknown) => void) => {
      const id = `1-${nextId++}`;
      ack({ ok: true, id });
      const frame = { event: "broadcast_say", data: { id, username: "u", text: p.text, ts: Date.now() } };
      const [phase, sender, seq] = p.text.split(".");
      const faulty = phase === "m" && Number(seq) % 10 === 0;
      const members = io.sockets.adapter.rooms.get(room)?.size ?? 0;
      const key = `${room}.${sender}`;
      if (faulty && fault === "drop") {
        faults.count += members;
        return;
      }
      if (faulty && fault === "reorder") {
        held.set(key, frame); // delivered after the sender's next message
        faults.count += members;
        return;
      }
      if (fault === "slow") {
        setTimeout(() => io.to(room).emit("message", frame), 400);
        return;
      }
      io.to(room).emit("message", frame);
      if (faulty && fault === "repeat") {
        io.to(room).emit("message", frame);
        faults.count += members;
      }
      const late = held.get(key);
      if (late) {
        held.delete(key);
        io.to(room).emit("message", late);
      }
    });
  });
  await new Promise<void>((resolve) => http.listen(0, "127.0.0.1", resolve));
  cleanup.add(() => io.close());
  return { url: `http://127.0.0.1:${(http.address() as AddressInfo).port}`, faults };
}

const small = (url: string, extra: Partial<BenchOptions> = {}): BenchOptions => ({
  urls: [url],
  rooms: 2,
  clients: 4,
  senders: 2,
  rate: 25,
  durationS: 1.5,
  warmupS: 0.3,
  transport: "websocket",
  procs: 1,
  joinWindowS: 0,
  roomPrefix: `t${Math.random().toString(36).slice(2, 8)}`,
  ...extra,
});

describe("roomcast bench counting", () => {
  it("counts every dropped delivery as lost", async () => {
    const server = await faultyServer("drop");
    const r = await runBench(small(server.url));
    assert.ok(server.faults.count > 0);
    assert.equal(r.lost, server.faults.count);
    assert.equal(r.duplicated, 0);
    assert.equal(r.outOfOrder, 0);
    assert.ok(r.deliveryRatio < 1);
  });

  it("counts every repeated delivery as duplicated, and does not count it twice", async () => {
    const server = await faultyServer("repeat");
    const r = await runBench(small(server.url));
    assert.ok(server.faults.count > 0);
    assert.equal(r.duplicated, server.faults.count);
    assert.equal(r.lost, 0);
    assert.equal(r.outOfOrder, 0);
    assert.equal(r.deliveryRatio, 1);
  });

  it("counts every late delivery as out of order, and none as lost", async () => {
    const server = await faultyServer("reorder");
    const r = await runBench(small(server.url, { durationS: 1.5 }));
    assert.ok(server.faults.count > 0);
    // a message held back at the very end of the window has no successor to release it
    assert.ok(r.outOfOrder >= server.faults.count - 2 * 4 * 2 && r.outOfOrder <= server.faults.count, `${r.outOfOrder} of ${server.faults.count}`);
    assert.equal(r.duplicated, 0);
  });

  it("waits for late deliveries in every generator process, also in those without a sender", async () => {
    const server = await faultyServer("slow");
    // one room across two generator processes, its only sender in one of them
    const r = await runBench(small(server.url, { procs: 2, rooms: 1, clients: 6, senders: 1, durationS: 1 }));
    assert.ok(r.expectedPerS > 0);
    assert.equal(r.lost, 0);
    assert.equal(r.deliveryRatio, 1);
    assert.ok(r.latencyMs.p50 >= 400, `every delivery was 400 ms late (p50 ${r.latencyMs.p50} ms)`);
  });

  it("splits rooms over generator processes, and a big room across them", () => {
    const many = planShares({ ...small("http://x"), rooms: 5, procs: 2 });
    assert.deepEqual(many.map((s) => s.rooms.length), [3, 2]);
    const big = planShares({ ...small("http://x"), rooms: 1, clients: 11, senders: 1, procs: 3 });
    assert.deepEqual(big.map((s) => s.rooms[0]!.clients), [3, 4, 4]);
    assert.deepEqual(big.map((s) => s.rooms[0]!.members), [11, 11, 11]);
    assert.equal(big.reduce((n, s) => n + s.rooms[0]!.senders, 0), 1);
  });

  it("measures a real roomcast process with two generator processes: everything delivered, server CPU read", async () => {
    const server = await startServe(["--rate-limit", "1000", "--rate-burst", "1000"]);
    cleanup.add(() => server.stop());
    const r = await runBench(small(server.url, { procs: 2, rooms: 3 }));
    assert.equal(r.clients, 12);
    assert.equal(r.lost, 0);
    assert.equal(r.duplicated, 0);
    assert.equal(r.outOfOrder, 0);
    assert.ok(r.expectedPerS > 0 && r.deliveryRatio === 1);
    assert.ok(r.serverCpuS !== undefined && r.serverCpuS > 0);
    assert.ok(r.serverCpuUsPerDelivery !== undefined && r.serverCpuUsPerDelivery > 0);
    assert.ok(r.latencyMs.p50 > 0 && r.latencyMs.p50 <= r.latencyMs.p99);
    assert.ok(r.generatorWindowCpuS > 0 && r.generatorWindowCpuS < r.generatorCpuS, "the window's CPU is a part of the whole");
  });
});

describe("roomcast bench with tokens (--auth-secret)", () => {
  it("joins a storm of clients that each carry a signed token, over WebSocket and over polling", async () => {
    const secret = "a-bench-secret-of-at-least-32-characters";
    const server = await startServe(["--auth-secret", secret, "--rate-limit", "1000", "--rate-burst", "1000"]);
    cleanup.add(() => server.stop());
    for (const transport of ["websocket", "polling"] as const) {
      const r = await runBench(small(server.url, { transport, rooms: 1, clients: 20, senders: 2, durationS: 1, joinWindowS: 0.5, authSecret: secret }));
      assert.equal(r.clients, 20, transport);
      assert.equal(r.lost, 0, transport);
      assert.ok(r.expectedPerS > 0 && r.deliveryRatio === 1, transport);
      assert.equal(r.options.tokens, true);
      assert.ok(!JSON.stringify(r).includes(secret), "the secret is not in the report");
    }
  });

  it("is refused without a token, and with a token of another secret", async () => {
    const server = await startServe(["--auth-secret", "a-bench-secret-of-at-least-32-characters"]);
    cleanup.add(() => server.stop());
    await assert.rejects(runBench(small(server.url, { rooms: 1, clients: 2, senders: 0 })), /connect refused: .*UNAUTHORIZED/);
    await assert.rejects(runBench(small(server.url, { rooms: 1, clients: 2, senders: 0, authSecret: "another-secret-of-at-least-32-characters" })), /connect refused: .*UNAUTHORIZED/);
  });
});
