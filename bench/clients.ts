/**
 * The bench's clients. Over WebSocket, a lean raw-frame client that speaks Engine.IO/Socket.IO
 * framing itself and parses only what it counts (no JSON.parse, no event emitter per frame), so that
 * the generator costs less than the servers it measures. Over long-polling, the client SDK.
 */
import { LeanWebSocket } from "./lean-websocket.js";
import { connect, RoomcastError, type RoomcastClient } from "../src/client/index.js";

export interface BenchClientHandlers {
  /** A chat message arrived: its text (the bench's own encoding, see run.ts). */
  said(text: string): void;
}

export interface BenchClient {
  /**
   * Connects and joins; resolves once the join is answered (history and presence received). With
   * a token, it goes in the handshake (roomcast --auth-secret), and the name is the token's.
   */
  join(username: string, token?: string): Promise<void>;
  /** Sends a message; resolves with the refusal code, or undefined when accepted. */
  say(text: string): Promise<string | undefined>;
  close(): void;
}

export function createClient(
  transport: "websocket" | "polling",
  url: string,
  room: string,
  handlers: BenchClientHandlers,
): BenchClient {
  return transport === "websocket" ? new RawClient(url, room, handlers) : new PollingClient(url, room, handlers);
}

/** A chat message frame starts with SAY_BYTES; its text follows TEXT_BYTES (the bench's texts need no JSON escapes). */
const SAY_BYTES = Buffer.from('42["message",{"event":"broadcast_say"');
const TEXT_BYTES = Buffer.from('"text":"');

class RawClient implements BenchClient {
  private ws: LeanWebSocket | undefined;
  private nextAck = 0;
  private readonly acks = new Map<number, (answer: string) => void>();

  constructor(
    private readonly url: string,
    private readonly room: string,
    private readonly handlers: BenchClientHandlers,
  ) {}

  join(username: string, token?: string): Promise<void> {
    const u = new URL(this.url);
    const wsUrl = `${u.protocol === "https:" ? "wss" : "ws"}://${u.host}/socket.io/?EIO=4&transport=websocket&roomid=${encodeURIComponent(this.room)}`;
    return new Promise((resolve, reject) => {
      const ws = new LeanWebSocket(wsUrl, {
        close: () => {
          for (const ack of this.acks.values()) ack('[{"ok":false,"error":{"code":"CLOSED"}}]');
          this.acks.clear();
          reject(new Error("connection closed before the join was answered"));
        },
        message: (data) => onMessage(data),
      });
      this.ws = ws;
      ws.opened.catch(reject);
      const onMessage = (data: Buffer) => {
        if (data[0] === 52 && data[1] === 50) {
          // "42": an event. Chat messages are read on their bytes, without decoding the frame;
          // notices (join, presence, presence_diff, typing: most of a join storm) are skipped.
          if (SAY_BYTES.compare(data, 0, SAY_BYTES.length) !== 0) return;
          const start = data.indexOf(TEXT_BYTES, SAY_BYTES.length);
          if (start < 0) return;
          const from = start + TEXT_BYTES.length;
          this.handlers.said(data.toString("latin1", from, data.indexOf(34 /* " */, from)));
          return;
        }
        const frame = data.toString();
        const type = frame.charCodeAt(0);
        if (type === 52 /* 4: message */) {
          if (frame.charCodeAt(1) === 51 /* 3: ack */) {
            const bracket = frame.indexOf("[");
            const id = Number(frame.slice(2, bracket));
            const ack = this.acks.get(id);
            this.acks.delete(id);
            ack?.(frame.slice(bracket));
          } else if (frame.startsWith("40")) {
            this.request(`["join",${JSON.stringify({ username })}]`).then((answer) =>
              answer.includes('"ok":true') ? resolve() : reject(new Error(`join refused: ${answer}`)),
            );
          } else if (frame.startsWith("44")) {
            reject(new Error(`connect refused: ${frame.slice(2)}`));
          }
        } else if (type === 50 /* 2: ping */) {
          ws.send("3");
        } else if (type === 48 /* 0: open */) {
          // the CONNECT packet carries the handshake's auth: 40{"token":"…"}
          ws.send(token === undefined ? "40" : `40${JSON.stringify({ token })}`);
        }
      };
    });
  }

  private request(payload: string): Promise<string> {
    const id = this.nextAck++;
    return new Promise((resolve) => {
      this.acks.set(id, resolve);
      this.ws?.send(`42${id}${payload}`);
    });
  }

  async say(text: string): Promise<string | undefined> {
    const answer = await this.request(`["say",{"text":"${text}"}]`);
    if (answer.includes('"ok":true')) return undefined;
    return /"code":"([A-Z_]+)"/.exec(answer)?.[1] ?? "UNKNOWN";
  }

  close(): void {
    this.ws?.close();
  }
}

/** Over long-polling: the client SDK (`roomcast/client`), as an application would use it. */
class PollingClient implements BenchClient {
  private client: RoomcastClient | undefined;

  constructor(
    private readonly url: string,
    private readonly room: string,
    private readonly handlers: BenchClientHandlers,
  ) {}

  async join(username: string, token?: string): Promise<void> {
    this.client = connect(this.url, token === undefined ? { room: this.room, username, transports: ["polling"] } : { room: this.room, token, transports: ["polling"] });
    this.client.on("message", (m) => this.handlers.said(m.text));
    await this.client.join();
  }

  async say(text: string): Promise<string | undefined> {
    try {
      await this.client!.say(text);
      return undefined;
    } catch (err) {
      return err instanceof RoomcastError ? err.code : "UNKNOWN";
    }
  }

  close(): void {
    this.client?.close();
  }
}
