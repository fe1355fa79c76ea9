/**
 * Peer (a): the article's design as it stands (cluster.js + fork_server.js), ported to roomcast's
 * protocol (acks, history and presence answers) with its per-message console.log removed:
 * a worker subscribes to a room's Redis channel on the first join, publishes every join and
 * message as JSON, and emits what the channel brings to its local room. No history, no order
 * guarantee across processes, no unsubscribe.
 */
import { createServer } from "node:http";
import { fileURLToPath } from "node:url";
import { Redis } from "ioredis";
import { Server } from "socket.io";
import { metricsHandler } from "./metrics.js";
import { runPool } from "./pool.js";

runPool(fileURLToPath(import.meta.url), async ({ port, redis }) => {
  const pub = new Redis(redis);
  const sub = new Redis(redis);
  const http = createServer(metricsHandler());
  const io = new Server(http);
  const roomSet: Record<string, Record<string, { username: string }>> = {};
  let seq = 0;
  io.on("connection", (socket) => {
    const roomid = String(socket.handshake.query["roomid"]);
    socket.on("join", (data: { username: string }, ack?: (a: unknown) => void) => {
      void socket.join(roomid);
      if (!roomSet[roomid]) {
        roomSet[roomid] = {};
        void sub.subscribe(roomid);
      }
      roomSet[roomid][socket.id] = { username: data.username };
      void pub.publish(roomid, JSON.stringify({ event: "join", data: { username: data.username, ts: Date.now() } }));
      socket.emit("message", { event: "history", data: { messages: [], truncated: false } });
      ack?.({ ok: true });
    });
    socket.on("say", (data: { text: string }, ack?: (a: unknown) => void) => {
      const id = `${port}-${seq++}`;
      void pub.publish(roomid, JSON.stringify({ event: "broadcast_say", data: { id, username: roomSet[roomid]?.[socket.id]?.username, text: data.text, ts: Date.now() } }));
      ack?.({ ok: true, id });
    });
    socket.on("disconnect", () => {
      const member = roomSet[roomid]?.[socket.id];
      if (member) void pub.publish(roomid, JSON.stringify({ event: "broadcast_quit", data: { username: member.username, ts: Date.now() } }));
      delete roomSet[roomid]?.[socket.id];
    });
  });
  sub.on("message", (channel: string, message: string) => {
    io.to(channel).emit("message", JSON.parse(message));
  });
  await new Promise<void>((resolve) => http.listen(port, "127.0.0.1", resolve));
});
