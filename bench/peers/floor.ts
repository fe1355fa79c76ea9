/**
 * Peer (c): the floor. One process, raw `ws`, just enough Engine.IO/Socket.IO framing for the
 * bench's clients; a message is encoded once and the same string written to every member. No
 * history, no presence, no Redis: what fan-out costs when nothing else is done.
 */
import { createServer } from "node:http";
import { parseArgs } from "node:util";
import { WebSocketServer, type WebSocket } from "ws";

const { values } = parseArgs({ options: { port: { type: "string" } } });
const port = Number(values.port ?? 7001);
const rooms = new Map<string, Set<WebSocket>>();
let seq = 0;

const http = createServer((req, res) => {
  if (req.url !== "/metrics") return void res.writeHead(404).end();
  const cpu = process.cpuUsage();
  res.writeHead(200, { "content-type": "text/plain" }).end(`process_cpu_seconds_total ${(cpu.user + cpu.system) / 1e6}\n`);
});
const wss = new WebSocketServer({ server: http, path: "/socket.io/", perMessageDeflate: false });
wss.on("connection", (ws, req) => {
  const room = new URL(req.url ?? "/", "http://x").searchParams.get("roomid") ?? "";
  ws.send('0{"sid":"floor","upgrades":[],"pingInterval":25000,"pingTimeout":20000,"maxPayload":1000000}');
  ws.on("message", (data: Buffer) => {
    const frame = data.toString();
    if (frame === "40") return void ws.send('40{"sid":"floor"}');
    if (!frame.startsWith("42")) return;
    const bracket = frame.indexOf("[");
    const ackId = frame.slice(2, bracket);
    if (frame.startsWith('["join"', bracket)) {
      let members = rooms.get(room);
      if (!members) rooms.set(room, (members = new Set()));
      members.add(ws);
      ws.on("close", () => members.delete(ws));
      ws.send(`43${ackId}[{"ok":true}]`);
    } else if (frame.startsWith('["say"', bracket)) {
      const text = frame.slice(frame.indexOf('"text":') + 7, frame.lastIndexOf("}"));
      const id = `1-${seq++}`;
      ws.send(`43${ackId}[{"ok":true,"id":"${id}"}]`);
      const out = `42["message",{"event":"broadcast_say","data":{"id":"${id}","username":"u","text":${text},"ts":${Date.now()}}}]`;
      for (const member of rooms.get(room) ?? []) member.send(out);
    }
  });
});
http.listen(port, "127.0.0.1", () => process.stdout.write(`listening ${port}\n`));
