/**
 * Peer (b): Socket.IO's official stack: socket.io with @socket.io/redis-adapter, Redis 7 sharded
 * pub/sub with dynamic room subscriptions (a channel per room, subscribed while the room has local
 * members), node-redis clients, as its documentation sets it up.
 */
import { createServer } from "node:http";
import { fileURLToPath } from "node:url";
import { createShardedAdapter } from "@socket.io/redis-adapter";
import { createClient } from "redis";
import { Server } from "socket.io";
import { metricsHandler } from "./metrics.js";
import { runPool } from "./pool.js";

runPool(fileURLToPath(import.meta.url), async ({ port, redis }) => {
  const pubClient = createClient({ url: redis });
  const subClient = pubClient.duplicate();
  await Promise.all([pubClient.connect(), subClient.connect()]);
  const http = createServer(metricsHandler());
  const io = new Server(http, { adapter: createShardedAdapter(pubClient, subClient, { subscriptionMode: "dynamic" }) });
  let seq = 0;
  io.on("connection", (socket) => {
    const room = String(socket.handshake.query["roomid"]);
    let username = "";
    socket.on("join", (data: { username: string }, ack?: (a: unknown) => void) => {
      username = data.username;
      void socket.join(room);
      io.to(room).emit("message", { event: "join", data: { username, ts: Date.now() } });
      socket.emit("message", { event: "history", data: { messages: [], truncated: false } });
      ack?.({ ok: true });
    });
    socket.on("say", (data: { text: string }, ack?: (a: unknown) => void) => {
      const id = `${port}-${seq++}`;
      io.to(room).emit("message", { event: "broadcast_say", data: { id, username, text: data.text, ts: Date.now() } });
      ack?.({ ok: true, id });
    });
    socket.on("disconnect", () => {
      if (username) io.to(room).emit("message", { event: "broadcast_quit", data: { username, ts: Date.now() } });
    });
  });
  await new Promise<void>((resolve) => http.listen(port, "127.0.0.1", resolve));
});
