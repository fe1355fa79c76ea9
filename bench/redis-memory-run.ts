/**
 * `npm run bench:redis-memory`: what roomcast keeps in Redis per room, per message and per member,
 * read from a private redis-server (`MEMORY USAGE`, `INFO memory`) after real traffic through a
 * real `roomcast serve --redis`.
 */
import { spawn, type ChildProcess } from "node:child_process";
import { mkdtempSync, rmSync } from "node:fs";
import { createServer } from "node:net";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { fileURLToPath } from "node:url";
import { Redis } from "ioredis";
import { io, type Socket } from "socket.io-client";

const CLI = fileURLToPath(new URL("../src/cli/main.js", import.meta.url));
const TEXT = "m".repeat(100);

function freePort(): Promise<number> {
  return new Promise((resolve) => {
    const s = createServer();
    s.listen(0, "127.0.0.1", () => {
      const port = (s.address() as { port: number }).port;
      s.close(() => resolve(port));
    });
  });
}

function started(child: ChildProcess, ready: RegExp): Promise<string> {
  return new Promise((resolve, reject) => {
    let out = "";
    const check = (d: Buffer) => {
      out += d.toString();
      const m = ready.exec(out);
      if (m) resolve(m[1] ?? "");
    };
    child.stdout!.on("data", check);
    child.stderr!.on("data", check);
    child.once("exit", (code) => reject(new Error(`exited (${code}): ${out}`)));
  });
}

const redisPort = await freePort();
const dir = mkdtempSync(join(tmpdir(), "roomcast-redis-memory-"));
const redis = spawn("redis-server", ["--port", String(redisPort), "--bind", "127.0.0.1", "--save", "", "--appendonly", "no", "--dir", dir], { stdio: ["ignore", "pipe", "pipe"] });
await started(redis, /Ready to accept connections/);
const url = `redis://127.0.0.1:${redisPort}`;
const server = spawn(process.execPath, [CLI, "serve", "--host", "127.0.0.1", "--port", "0", "--redis", url, "--rate-limit", "10000", "--rate-burst", "10000"], { stdio: ["ignore", "pipe", "pipe"] });
const port = await started(server, /"port":(\d+)/);
const inspect = new Redis(url);

async function member(room: string, username: string): Promise<Socket> {
  const socket = io(`http://127.0.0.1:${port}`, { query: { roomid: room }, transports: ["websocket"], forceNew: true });
  await socket.timeout(10_000).emitWithAck("join", { username });
  return socket;
}
const usedMemory = async () => Number(/used_memory:(\d+)/.exec(await inspect.info("memory"))![1]);

// Per message: one room, 1000 messages of 100 characters (the default history size).
const sender = await member("messages", "sender");
const before = await usedMemory();
for (let i = 0; i < 1000; i++) await sender.timeout(10_000).emitWithAck("say", { text: TEXT });
const streamBytes = Number(await inspect.memory("USAGE", "roomcast:history:messages", "SAMPLES", "0"));
const afterMessages = await usedMemory();
sender.disconnect();

// Per room with members: 100 rooms × 2 members, then all leave.
const rooms: Socket[] = [];
const beforeRooms = await usedMemory();
for (let r = 0; r < 100; r++) rooms.push(await member(`room-${r}`, "a"), await member(`room-${r}`, "b"));
await new Promise((r) => setTimeout(r, 300));
const presenceBytes = Number(await inspect.memory("USAGE", "roomcast:presence:room-0", "SAMPLES", "0"));
const withMembers = await usedMemory();
for (const s of rooms) s.disconnect();
await new Promise((r) => setTimeout(r, 1000));
const leftKeys = (await inspect.keys("roomcast:presence*")).length;
const afterLeave = await usedMemory();

process.stdout.write(
  [
    `| what | bytes in Redis |`,
    `|---|---|`,
    `| one room's history of 1000 messages of ${TEXT.length} characters (MEMORY USAGE of the stream) | ${streamBytes} (${(streamBytes / 1000).toFixed(0)} per message) |`,
    `| used_memory grown by those 1000 messages | ${afterMessages - before} (${((afterMessages - before) / 1000).toFixed(0)} per message) |`,
    `| a room's presence hash with 2 members | ${presenceBytes} |`,
    `| used_memory grown by 100 rooms × 2 members | ${withMembers - beforeRooms} (${((withMembers - beforeRooms) / 100).toFixed(0)} per room) |`,
    `| presence keys left after everyone left | ${leftKeys}; used_memory ${afterLeave - beforeRooms} bytes above before the rooms |`,
    "",
  ].join("\n"),
);
inspect.disconnect();
server.kill("SIGTERM");
redis.kill("SIGKILL");
rmSync(dir, { recursive: true, force: true });
process.exit(0);
