/**
 * The least WebSocket client the bench needs (RFC 6455): an upgrade request, then text frames
 * read straight from the TCP socket's chunks and handed on as Buffers, and small masked text
 * frames sent. No extensions, no fragmented messages (Socket.IO's server sends neither).
 *
 * Written by hand because the generator must cost less than the servers it measures. With `ws`
 * (a Writable stream per connection behind each socket) the generator's CPU in the measured window
 * was 0.9× the two servers' own on classroom at 8 msg/s (4.0–4.2 s against 4.5–4.8 s) and 1.1×
 * on big-room (2.1 s against 1.9 s); with this client, 0.8× (3.2 s against 4.0–4.1 s) and 0.95×
 * (1.9 s against 2.0–2.1 s). Measured with `roomcast bench --procs 2` against a 2-worker cluster.
 * Reading plain TCP with `onread` into one shared buffer (no Buffer, stream push and "data" event
 * per chunk) then took big-room's generator from 4.68 s to 3.14–3.23 s in a 10 s window (the
 * servers, after roomcast's fan-out change: 2.27–2.43 s); what is left there is mostly the
 * kernel's receive of 2000 sockets' frames, which the profile does not see as JavaScript.
 */
import { randomBytes } from "node:crypto";
import { connect as tcpConnect, type Socket } from "node:net";
import { connect as tlsConnect } from "node:tls";

/** The read buffer of every plain-TCP connection of this process (one thread: one read at a time). */
const READ_BUFFER = Buffer.allocUnsafe(64 * 1024);

export interface LeanWebSocketHandlers {
  /** A text message; `data` is only valid during the call (it may be a view of a larger chunk). */
  message(data: Buffer): void;
  close(): void;
}

export class LeanWebSocket {
  private readonly socket: Socket;
  private pending: Buffer | undefined;
  private open = false;
  private closed = false;
  private readonly mask = randomBytes(4);

  /** Connects; `opened` resolves after the server accepted the upgrade. */
  readonly opened: Promise<void>;

  constructor(url: string, private readonly on: LeanWebSocketHandlers) {
    const u = new URL(url);
    const secure = u.protocol === "wss:";
    const port = Number(u.port || (secure ? 443 : 80));
    // Plain TCP reads into one buffer shared by every connection of the process (`onread`: no
    // Buffer, no stream push and no "data" event per chunk); what is kept past a call is copied.
    this.socket = secure
      ? tlsConnect({ host: u.hostname, port, servername: u.hostname })
      : tcpConnect({
          host: u.hostname,
          port,
          onread: {
            buffer: READ_BUFFER,
            callback: (n) => {
              this.received(READ_BUFFER.subarray(0, n));
              return true;
            },
          },
        });
    if (secure) this.socket.on("data", (chunk: Buffer) => this.received(chunk));
    this.socket.setNoDelay(true);
    this.opened = new Promise((resolve, reject) => {
      this.socket.once(secure ? "secureConnect" : "connect", () => {
        this.socket.write(
          `GET ${u.pathname}${u.search} HTTP/1.1\r\nHost: ${u.host}\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n` +
            `Sec-WebSocket-Key: ${randomBytes(16).toString("base64")}\r\nSec-WebSocket-Version: 13\r\n\r\n`,
        );
      });
      this.upgraded = (head) => {
        if (!/^HTTP\/1\.1 101 /.test(head)) {
          reject(new Error(`WebSocket upgrade refused: ${head.split("\r\n")[0]}`));
          this.socket.destroy();
          return false;
        }
        resolve();
        return true;
      };
      this.socket.once("error", reject);
      this.socket.once("close", () => {
        this.closed = true;
        reject(new Error("connection closed before the WebSocket opened"));
        this.on.close();
      });
    });
    // Errors after opening end in "close"; nothing else to do with them.
    this.socket.on("error", () => {});
  }

  /** Told the response head of the upgrade; false when refused. */
  private upgraded: (head: string) => boolean = () => false;

  /** Bytes from the socket, valid only during the call. */
  private received(chunk: Buffer): void {
    if (this.open) return this.read(chunk);
    const data = this.pending ? Buffer.concat([this.pending, chunk]) : chunk;
    const end = data.indexOf("\r\n\r\n");
    if (end < 0) {
      this.pending = Buffer.from(data);
      return;
    }
    this.pending = undefined;
    if (!this.upgraded(data.subarray(0, end).toString("latin1"))) return;
    this.open = true;
    if (data.length > end + 4) this.read(data.subarray(end + 4));
  }

  /** Parses every whole frame in the bytes received; keeps (a copy of) a partial one for the next chunk. */
  private read(chunk: Buffer): void {
    let data = this.pending ? Buffer.concat([this.pending, chunk]) : chunk;
    this.pending = undefined;
    let at = 0;
    while (data.length - at >= 2) {
      const opcode = data[at]! & 0x0f;
      let length = data[at + 1]! & 0x7f;
      let header = 2;
      if (length === 126) {
        if (data.length - at < 4) break;
        length = data.readUInt16BE(at + 2);
        header = 4;
      } else if (length === 127) {
        if (data.length - at < 10) break;
        length = data.readUInt32BE(at + 6); // frames above 4 GiB do not happen here
        header = 10;
      }
      if (data.length - at < header + length) break;
      const payload = data.subarray(at + header, at + header + length);
      at += header + length;
      if (opcode === 1 || opcode === 2) this.on.message(payload);
      else if (opcode === 9) this.frame(0x8a, payload); // ping: pong
      else if (opcode === 8) return void this.socket.end();
    }
    if (at < data.length) {
      data = data.subarray(at);
      this.pending = Buffer.from(data); // a copy: the chunk it views is not kept alive
    }
  }

  send(text: string): void {
    if (this.open && !this.closed) this.frame(0x81, Buffer.from(text));
  }

  /** One masked frame, as a client must send (RFC 6455 §5.3). */
  private frame(first: number, payload: Buffer): void {
    const length = payload.length;
    const header = length < 126 ? 6 : length < 65536 ? 8 : 14;
    const frame = Buffer.allocUnsafe(header + length);
    frame[0] = first;
    if (length < 126) {
      frame[1] = 0x80 | length;
    } else if (length < 65536) {
      frame[1] = 0x80 | 126;
      frame.writeUInt16BE(length, 2);
    } else {
      frame[1] = 0x80 | 127;
      frame.writeUInt32BE(0, 2);
      frame.writeUInt32BE(length, 6);
    }
    this.mask.copy(frame, header - 4);
    for (let i = 0; i < length; i++) frame[header + i] = payload[i]! ^ this.mask[i & 3]!;
    this.socket.write(frame);
  }

  close(): void {
    this.socket.destroy();
  }
}
