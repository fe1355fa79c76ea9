/**
 * The fan-out (src/server/fanout.ts): room events written straight to each WebSocket member's TCP
 * socket, several of them in one write, through Engine.IO for every other member. Real
 * socket.io-client connections over WebSocket, long-polling and polling-then-upgrade, against a
 * real `roomcast serve` (memory and Redis), and against the sink on an in-process Socket.IO server
 * for what must happen within one turn of the event loop.
 */
import assert from "node:assert/strict";
import { after, before, describe, it } from "node:test";
import { createServer } from "node:http";
import type { AddressInfo } from "node:net";
import { pino } from "pino";
import { Server } from "socket.io";
import type { ChatMessage, RoomEvent } from "../../src/protocol.js";
import { createMetrics } from "../../src/server/metrics.js";
import { QueueGuard } from "../../src/server/queue.js";
import { socketSink } from "../../src/server/socket.js";
import { TestClient } from "../helpers/client.js";
import { Cleanup } from "../helpers/processes.js";
import { metric, startServeIn, type Roomcast } from "../helpers/roomcast.js";

const ids = (messages: ChatMessage[]) => messages.map((m) => m.id);

for (const mode of ["memory", "redis"] as const) {
  describe(`fan-out (${mode})`, () => {
    const cleanup = new Cleanup();
    let plain: Roomcast;
    const clients: TestClient[] = [];
    const joined = async (server: Roomcast, room: string, username: string, transports: ("websocket" | "polling")[] = ["websocket"]) => {
      const c = new TestClient(server.url, room, { transports });
      clients.push(c);
      assert.deepEqual(await c.join(username), { ok: true });
      return c;
    };

    before(async () => {
      plain = await startServeIn(mode, ["--rate-limit", "1000", "--rate-burst", "1000", "--max-text-length", "30000", "--max-payload", "300000"], cleanup);
      cleanup.add(() => clients.forEach((c) => c.close()));
    });
    after(() => cleanup.run());

    it("writes frames of every WebSocket length encoding (7-bit, 16-bit, 64-bit)", async () => {
      const room = `${mode}-lengths`;
      const ws = await joined(plain, room, "ws");
      const polling = await joined(plain, room, "polling", ["polling"]);
      // 5 bytes; ~1,000 bytes; 20,000 emoji of 4 bytes each: 80,000 bytes, above 65,535
      const texts = ["short", "x".repeat(1000), "😀".repeat(20_000)];
      for (const text of texts) assert.equal((await ws.request("say", { text })).ok, true);
      for (const c of [ws, polling]) assert.deepEqual((await c.waitForSaid(3, 20_000)).map((m) => m.text), texts);
    });

    it("gives WebSocket, long-polling and upgrading members the same messages, once each, in one order", async () => {
      const room = `${mode}-mixed`;
      const ws = await joined(plain, room, "ws");
      const polling = await joined(plain, room, "polling", ["polling"]);
      const upgrading = await joined(plain, room, "upgrading", ["polling", "websocket"]);
      const before = { delivered: await metric(plain.url, "roomcast_messages_delivered_total"), writes: await metric(plain.url, "roomcast_fanout_writes_total") };
      // 2 × 100 messages sent without waiting for answers: many reach the fan-out in one turn
      const acks = [];
      for (let i = 0; i < 100; i++) acks.push(ws.request("say", { text: `w${i}` }), polling.request("say", { text: `p${i}` }));
      for (const ack of await Promise.all(acks)) assert.equal(ack.ok, true);
      const got = await Promise.all([ws, polling, upgrading].map((c) => c.waitForSaid(200, 20_000)));
      for (const said of got) {
        assert.equal(said.length, 200);
        assert.equal(new Set(ids(said)).size, 200, "each message once");
        assert.deepEqual(ids(said), ids(got[0]!), "one order for every member");
      }
      // each sender's messages in the order it sent them
      const texts = got[0]!.map((m) => m.text);
      assert.deepEqual(texts.filter((t) => t.startsWith("w")), Array.from({ length: 100 }, (_, i) => `w${i}`));
      assert.deepEqual(texts.filter((t) => t.startsWith("p")), Array.from({ length: 100 }, (_, i) => `p${i}`));
      // 600 deliveries; messages that arrived together went out together
      const delivered = (await metric(plain.url, "roomcast_messages_delivered_total")) - before.delivered;
      const writes = (await metric(plain.url, "roomcast_fanout_writes_total")) - before.writes;
      assert.equal(delivered, 600);
      assert.ok(writes < delivered, `${writes} writes for ${delivered} deliveries`);
    });
  });
}

describe("fan-out within one turn (socketSink on an in-process Socket.IO server)", () => {
  const cleanup = new Cleanup();
  let io: Server;
  let url: string;
  before(async () => {
    const http = createServer();
    io = new Server(http);
    await new Promise<void>((resolve) => http.listen(0, "127.0.0.1", resolve));
    url = `http://127.0.0.1:${(http.address() as AddressInfo).port}`;
    cleanup.add(() => new Promise<void>((resolve) => io.close(() => resolve())));
  });
  after(() => cleanup.run());

  it("writes a turn's events in order, behind what was sent before, not to a member that entered after them, typing not to its author", async () => {
    const metrics = createMetrics();
    const sink = socketSink(io, metrics, new QueueGuard(1 << 20, metrics, pino({ level: "silent" })));
    const connect = async (transports: ("websocket" | "polling")[]) => {
      const c = new TestClient(url, "r", { transports });
      cleanup.add(() => c.close());
      await c.connected();
      return c;
    };
    const [ann, joiner, polling] = await Promise.all([connect(["websocket"]), connect(["websocket"]), connect(["polling"])]);
    const say = (id: string): RoomEvent => ({ event: "broadcast_say", data: { id, username: "ann", text: `text ${id}`, ts: 1 } });
    sink.enter(ann.socket.id!, "r");
    sink.enter(polling.socket.id!, "r");
    // one turn: two packets of ann's own (the second queued in Engine.IO behind the first), then
    // a message, ann's typing, the joiner entering, another message
    sink.send(ann.socket.id!, { event: "presence", data: { users: [{ username: "x", connections: 1 }] } });
    sink.send(ann.socket.id!, { event: "presence", data: { users: [{ username: "y", connections: 1 }] } });
    sink.broadcast("r", say("1-0"), undefined);
    sink.broadcast("r", { event: "typing", data: { username: "ann", typing: true } }, ann.socket.id);
    sink.enter(joiner.socket.id!, "r");
    sink.broadcast("r", say("2-0"), undefined);
    for (const c of [ann, joiner, polling]) await c.waitFor((m) => m.event === "broadcast_say" && m.data.id === "2-0");
    const seen = (c: TestClient) => c.inbox.map((m) => (m.event === "broadcast_say" ? m.data.id : m.event === "presence" ? m.data.users[0]!.username : m.event));
    assert.deepEqual(seen(ann), ["x", "y", "1-0", "2-0"]);
    assert.deepEqual(seen(polling), ["1-0", "typing", "2-0"]);
    assert.deepEqual(seen(joiner), ["2-0"]);
    // deliveries of chat messages: 1-0 to two members, 2-0 to three
    assert.equal((await metrics.delivered.get()).values[0]?.value, 5);
  });
});
