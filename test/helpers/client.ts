/** A real socket.io-client connection with an inbox of the `message` events it received. */
import { io, type Socket, type ManagerOptions, type SocketOptions } from "socket.io-client";
import type { Ack, ChatMessage, ServerMessage } from "../../src/protocol.js";
import { withTimeout } from "./processes.js";

/** A type guard for one kind of `message` event: `inbox.find(is("history"))`. */
export const is =
  <E extends ServerMessage["event"]>(event: E) =>
  (m: ServerMessage): m is Extract<ServerMessage, { event: E }> =>
    m.event === event;

export class TestClient {
  readonly socket: Socket;
  readonly inbox: ServerMessage[] = [];
  private waiters: { match: (m: ServerMessage) => boolean; resolve: (m: ServerMessage) => void }[] = [];

  constructor(url: string, room: string | undefined, options: Partial<ManagerOptions & SocketOptions> = {}) {
    this.socket = io(url, {
      query: room === undefined ? {} : { roomid: room },
      transports: ["websocket"],
      forceNew: true,
      reconnection: false,
      ...options,
    });
    this.socket.on("message", (m: ServerMessage) => {
      this.inbox.push(m);
      for (const w of [...this.waiters]) {
        if (w.match(m)) {
          this.waiters.splice(this.waiters.indexOf(w), 1);
          w.resolve(m);
        }
      }
    });
  }

  connected(timeoutMs = 10_000): Promise<void> {
    if (this.socket.connected) return Promise.resolve();
    return withTimeout(
      new Promise<void>((resolve, reject) => {
        this.socket.once("connect", () => resolve());
        this.socket.once("connect_error", (err) => reject(err));
      }),
      timeoutMs,
      "timed out connecting",
    );
  }

  /** Emits with an acknowledgement and resolves with the server's answer. */
  request(event: string, ...args: unknown[]): Promise<Ack> {
    return this.socket.timeout(10_000).emitWithAck(event, ...args) as Promise<Ack>;
  }

  /** Reconnects counted by autoRejoin, and when the last re-join was answered. */
  rejoins = 0;
  rejoinedAt = 0;
  /** True between a reconnect and the answer to its re-join. */
  private rejoining = false;

  /**
   * Behaves like the web client: after every reconnect, joins again with `since` = the id of the
   * last message received, so nothing is missed and nothing is shown twice.
   */
  autoRejoin(username: string): void {
    // the first "connect" is the join the test makes itself, unless it has happened already
    let first = !this.socket.connected;
    this.socket.on("connect", () => {
      if (first) {
        first = false;
        return;
      }
      this.rejoins++;
      this.rejoining = true;
      const since = this.said().at(-1)?.id;
      this.socket.emit("join", since === undefined ? { username } : { username, since }, () => {
        this.rejoining = false;
        this.rejoinedAt = Date.now();
      });
    });
  }

  /** Sends until the server accepts (retrying across reconnects); resolves with the message id. */
  async sayReliably(text: string, deadlineMs = 20_000): Promise<string> {
    const deadline = Date.now() + deadlineMs;
    for (;;) {
      if (this.socket.connected && !this.rejoining) {
        try {
          const ack = (await this.socket.timeout(2000).emitWithAck("say", { text })) as Ack;
          if (ack.ok) return ack.id!;
        } catch {
          // no answer: the connection went away; try again once it is back
        }
      }
      if (Date.now() > deadline) throw new Error(`could not send ${text}`);
      await new Promise((r) => setTimeout(r, 50));
    }
  }

  /** The first message (already received or still to come) that `match` accepts. */
  waitFor<T extends ServerMessage>(match: (m: ServerMessage) => m is T, timeoutMs?: number, what?: string): Promise<T>;
  waitFor(match: (m: ServerMessage) => boolean, timeoutMs?: number, what?: string): Promise<ServerMessage>;
  waitFor(match: (m: ServerMessage) => boolean, timeoutMs = 10_000, what = "a message"): Promise<ServerMessage> {
    const seen = this.inbox.find(match);
    if (seen) return Promise.resolve(seen);
    return withTimeout(
      new Promise<ServerMessage>((resolve) => this.waiters.push({ match, resolve })),
      timeoutMs,
      () => `timed out waiting for ${what}; inbox: ${JSON.stringify(this.inbox).slice(0, 2000)}`,
    );
  }

  /** The chat messages received (history and live), in order of arrival. */
  said(): ChatMessage[] {
    const out: ChatMessage[] = [];
    for (const m of this.inbox) {
      if (m.event === "history") out.push(...m.data.messages);
      else if (m.event === "broadcast_say") out.push(m.data);
    }
    return out;
  }

  /** Waits until `count` chat messages have arrived. */
  async waitForSaid(count: number, timeoutMs = 10_000): Promise<ChatMessage[]> {
    if (this.said().length >= count) return this.said();
    await this.waitFor(() => this.said().length >= count, timeoutMs, `${count} chat messages`);
    return this.said();
  }

  /** Joins and waits for the history and presence that answer the join. */
  async join(username: string, since?: string): Promise<Ack> {
    const ack = await this.request("join", since === undefined ? { username } : { username, since });
    return ack;
  }

  close(): void {
    this.socket.disconnect();
  }
}

/**
 * A member that joins `room` as `name` and says what it is told (each message must be accepted):
 * a second person in a page test. Closed by `cleanup`.
 */
export async function talker(url: string, room: string, name: string, cleanup: { add(step: () => unknown): void }): Promise<(text: string) => Promise<void>> {
  const client = new TestClient(url, room);
  cleanup.add(() => client.close());
  const joined = await client.request("join", { username: name });
  if (!joined.ok) throw new Error(`${name} could not join ${room}: ${joined.error.code}`);
  return async (text) => {
    const ack = await client.request("say", { text });
    if (!ack.ok) throw new Error(`"${text}" refused: ${ack.error.code}`);
  };
}
