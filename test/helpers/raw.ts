/**
 * Raw Engine.IO/Socket.IO clients for tests that behave as a hostile or broken client would: one
 * over a WebSocket on a plain TCP socket that can stop reading (`pause()`), one over HTTP
 * long-polling that can stop polling. They speak just enough of the protocol (Engine.IO v4
 * packets, Socket.IO `42[…]` events) to join a room and send events.
 */
import { randomBytes } from "node:crypto";
import { connect, type Socket } from "node:net";
import { withTimeout } from "./processes.js";

/** A Socket.IO event packet as the client sends it: `42<ack id>["event",payload]`. */
export function eventPacket(event: string, payload: unknown, ackId?: number): string {
  return `42${ackId ?? ""}${JSON.stringify([event, payload])}`;
}

/** A WebSocket (RFC 6455) client on a raw TCP socket: text frames only, masked as clients must. */
export class RawWebSocket {
  readonly socket: Socket;
  /** Text frames received, in order (Engine.IO packets). */
  readonly frames: string[] = [];
  /** Bytes received in all (read from the socket). */
  received = 0;
  readonly closed: Promise<void>;
  private buffer = Buffer.alloc(0);
  private upgraded = false;
  private readonly waiters: { match: (f: string) => boolean; resolve: (f: string) => void }[] = [];

  private constructor(socket: Socket) {
    this.socket = socket;
    this.closed = new Promise((resolve) => socket.once("close", () => resolve()));
    socket.on("error", () => {});
    socket.on("data", (chunk: Buffer) => this.onData(chunk));
  }

  /** Connects to roomcast's Socket.IO endpoint over WebSocket and opens the main namespace. */
  static async open(url: string, room: string): Promise<RawWebSocket> {
    const u = new URL(url);
    const socket = connect({ host: u.hostname, port: Number(u.port) });
    const raw = new RawWebSocket(socket);
    await withTimeout(new Promise<void>((resolve, reject) => {
      socket.once("connect", () => resolve());
      socket.once("error", reject);
    }), 5000, "TCP connect");
    socket.write(
      `GET /socket.io/?EIO=4&transport=websocket&roomid=${encodeURIComponent(room)} HTTP/1.1\r\nHost: ${u.host}\r\n` +
        `Upgrade: websocket\r\nConnection: Upgrade\r\nSec-WebSocket-Key: ${randomBytes(16).toString("base64")}\r\n` +
        `Sec-WebSocket-Version: 13\r\n\r\n`,
    );
    await raw.waitFor((f) => f.startsWith("0"), "the Engine.IO open packet");
    raw.send("40");
    await raw.waitFor((f) => f.startsWith("40"), "the namespace to open");
    return raw;
  }

  private onData(chunk: Buffer): void {
    this.received += chunk.length;
    this.buffer = Buffer.concat([this.buffer, chunk]);
    if (!this.upgraded) {
      const end = this.buffer.indexOf("\r\n\r\n");
      if (end < 0) return;
      const head = this.buffer.subarray(0, end).toString("latin1");
      if (!head.startsWith("HTTP/1.1 101")) {
        this.socket.destroy();
        return;
      }
      this.upgraded = true;
      this.buffer = this.buffer.subarray(end + 4);
    }
    for (;;) {
      if (this.buffer.length < 2) return;
      let length = this.buffer[1]! & 0x7f;
      let header = 2;
      if (length === 126) {
        if (this.buffer.length < 4) return;
        length = this.buffer.readUInt16BE(2);
        header = 4;
      } else if (length === 127) {
        if (this.buffer.length < 10) return;
        length = this.buffer.readUInt32BE(6);
        header = 10;
      }
      if (this.buffer.length < header + length) return;
      const opcode = this.buffer[0]! & 0x0f;
      const payload = this.buffer.subarray(header, header + length).toString("utf8");
      this.buffer = this.buffer.subarray(header + length);
      if (opcode === 1) {
        // Engine.IO ping from the server: answer, as a live client does
        if (payload === "2") this.send("3");
        this.frames.push(payload);
        for (const w of [...this.waiters]) {
          if (w.match(payload)) {
            this.waiters.splice(this.waiters.indexOf(w), 1);
            w.resolve(payload);
          }
        }
      } else if (opcode === 8) {
        this.socket.end();
      }
    }
  }

  /** The first frame (received or still to come) that `match` accepts. */
  waitFor(match: (f: string) => boolean, what: string, timeoutMs = 10_000): Promise<string> {
    const seen = this.frames.find(match);
    if (seen !== undefined) return Promise.resolve(seen);
    return withTimeout(new Promise<string>((resolve) => this.waiters.push({ match, resolve })), timeoutMs, () => `timed out waiting for ${what}`);
  }

  /** Sends one text frame. */
  send(text: string): void {
    const payload = Buffer.from(text);
    const n = payload.length;
    const header = n < 126 ? 2 : n < 65536 ? 4 : 10;
    const frame = Buffer.alloc(header + 4 + n);
    frame[0] = 0x81;
    if (n < 126) frame[1] = 0x80 | n;
    else if (n < 65536) {
      frame[1] = 0x80 | 126;
      frame.writeUInt16BE(n, 2);
    } else {
      frame[1] = 0x80 | 127;
      frame.writeUInt32BE(n, 6);
    }
    const mask = randomBytes(4);
    mask.copy(frame, header);
    for (let i = 0; i < n; i++) frame[header + 4 + i] = payload[i]! ^ mask[i & 3]!;
    if (!this.socket.destroyed) this.socket.write(frame);
  }

  /** Stops reading: what the server sends piles up in the kernel's buffers, then in the server. */
  pause(): void {
    this.socket.pause();
  }

  resume(): void {
    this.socket.resume();
  }

  close(): void {
    this.socket.destroy();
  }
}

/** An Engine.IO long-polling client whose polls (GETs) happen only when the test says so. */
export class RawPolling {
  private constructor(
    private readonly base: string,
    readonly sid: string,
  ) {}

  static async open(url: string, room: string): Promise<RawPolling> {
    const base = `${url}/socket.io/?EIO=4&transport=polling&roomid=${encodeURIComponent(room)}`;
    const open = await (await fetch(base)).text();
    const sid = (JSON.parse(open.slice(open.indexOf("{"))) as { sid: string }).sid;
    const raw = new RawPolling(base, sid);
    await raw.post("40");
    const connected = await raw.poll();
    if (!connected.startsWith("40")) throw new Error(`namespace not opened: ${connected}`);
    return raw;
  }

  /** Sends Engine.IO packets (joined with the record separator); resolves with the HTTP status. */
  async post(...packets: string[]): Promise<number> {
    const res = await fetch(`${this.base}&sid=${this.sid}`, { method: "POST", body: packets.join("\x1e"), headers: { "content-type": "text/plain;charset=UTF-8" } });
    await res.text();
    return res.status;
  }

  /** One GET: what the server had queued for this client (packets separated by \x1e). */
  async poll(): Promise<string> {
    const res = await fetch(`${this.base}&sid=${this.sid}`);
    return `${res.status === 200 ? "" : `HTTP ${res.status} `}${await res.text()}`;
  }
}
