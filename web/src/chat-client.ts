/**
 * The browser's side of the protocol, without any DOM: connects to a room, joins, and after every
 * reconnect joins again with `since` = the newest message id it has, so nothing is missed and
 * nothing is shown twice (messages are also de-duplicated by id).
 */
import { io, type Socket } from "socket.io-client";
import { byUsername, type Ack, type ChatMessage, type ErrorCode, type PresenceRef, type PresenceUser, type ServerMessage } from "../../src/protocol.js";
import { compareIds } from "../../src/chat/ids.js";

export type ConnectionState = "connecting" | "connected" | "reconnecting" | "offline";

/**
 * How messages reached the client: `history` is the room's recent past, sent on the first join
 * (old news); `missed` was sent while this client was disconnected, recovered on a re-join (new to
 * the reader, but not live); `live` has just been said.
 */
export type Arrival = "history" | "missed" | "live";

export interface ChatClientHandlers {
  state(state: ConnectionState): void;
  /** New messages, in order, each once. */
  messages(messages: ChatMessage[], arrival: Arrival): void;
  /** The first history reaches back to the room's first message still kept: there is nothing older. */
  start(): void;
  notice(kind: "join" | "quit", username: string, ts: number): void;
  /** Many joins or quits at once (a big room's presence_diff): one line, not one per person. */
  crowd(kind: "join" | "quit", count: number, ts: number): void;
  presence(users: PresenceUser[]): void;
  typing(username: string, typing: boolean): void;
  /** The server could not give every missed message (the history did not reach back far enough). */
  gap(): void;
  error(code: ErrorCode, message: string): void;
}

export class ChatClient {
  private readonly socket: Socket;
  private lastId: string | undefined;
  private joined = false;
  private presenceTimer: ReturnType<typeof setTimeout> | undefined;
  /** Who is online (username → connections): from `presence`, then kept by `presence_diff`. */
  private online = new Map<string, number>();
  private presenceVersion = 0;
  private started = false;

  constructor(
    readonly room: string,
    readonly username: string,
    private readonly on: ChatClientHandlers,
  ) {
    on.state("connecting");
    // One connection per room: forceNew, because socket.io-client would otherwise reuse a cached
    // connection made with another room's query.
    this.socket = io({ query: { roomid: room }, forceNew: true });
    this.socket.on("connect", () => this.join());
    this.socket.on("disconnect", (reason) => {
      this.joined = false;
      if (reason === "io client disconnect") return;
      on.state("reconnecting");
      // The server closed this connection on purpose: come back anyway (another worker answers).
      if (reason === "io server disconnect") this.socket.connect();
    });
    this.socket.on("connect_error", (err: Error & { data?: { code?: ErrorCode; message?: string } }) => {
      if (err.data?.code) {
        on.state("offline");
        on.error(err.data.code, err.data.message ?? err.message);
        this.socket.disconnect();
        return;
      }
      on.state(navigator.onLine ? "reconnecting" : "offline");
    });
    this.socket.on("message", (m: ServerMessage) => this.receive(m));
  }

  private join(): void {
    const since = this.lastId;
    this.socket.emit("join", since === undefined ? { username: this.username } : { username: this.username, since }, (ack: Ack) => {
      if (ack.ok) {
        this.joined = true;
        this.on.state("connected");
        // our own `join` is already in the presence snapshot the server sent: say it here
        if (since === undefined) this.on.notice("join", this.username, Date.now());
      } else {
        this.on.error(ack.error.code, ack.error.message);
      }
    });
  }

  private receive(m: ServerMessage): void {
    switch (m.event) {
      case "history": {
        const first = this.lastId === undefined;
        if (m.data.truncated && !first) this.on.gap();
        if (first && !m.data.truncated && !this.started) {
          this.started = true;
          this.on.start();
        }
        this.accept(m.data.messages, first ? "history" : "missed");
        break;
      }
      case "broadcast_say":
        this.accept([m.data], "live");
        break;
      case "join":
      case "broadcast_quit": {
        const joined = m.event === "join";
        const version = m.data.version;
        if (version === undefined) {
          this.on.notice(joined ? "join" : "quit", m.data.username, m.data.ts);
          this.refreshPresence();
          break;
        }
        if (version <= this.presenceVersion) break; // already in the presence we have
        this.presenceVersion = version;
        const ref = [{ username: m.data.username, ...(m.data.user === undefined ? {} : { user: m.data.user }) }];
        // a reconnect that recovered is the same person coming back: no "joined" line
        this.applyDiff(joined ? ref : [], joined ? [] : ref, m.data.ts, m.event === "join" && m.data.rejoin === true);
        break;
      }
      case "presence":
        this.presenceVersion = -1; // the join's own snapshot: always taken
        this.setPresence(m.data.users, m.data.version ?? 0);
        break;
      case "presence_diff":
        if (m.data.version <= this.presenceVersion) break; // already in the presence we have
        this.presenceVersion = m.data.version;
        this.applyDiff(m.data.joined, m.data.left, m.data.ts, false);
        break;
      case "typing":
        this.on.typing(m.data.username, m.data.typing);
        break;
      case "error":
        this.on.error(m.data.code, m.data.message);
        break;
    }
  }

  private accept(messages: ChatMessage[], arrival: Arrival): void {
    const fresh: ChatMessage[] = [];
    for (const message of messages) {
      if (this.lastId !== undefined && compareIds(message.id, this.lastId) <= 0) continue;
      this.lastId = message.id;
      fresh.push(message);
    }
    if (fresh.length > 0) this.on.messages(fresh, arrival);
  }

  /** A whole presence list, unless what we have is newer (a diff applied after it was read). */
  private setPresence(users: PresenceUser[], version: number): void {
    if (version < this.presenceVersion) return;
    this.presenceVersion = version;
    this.online = new Map(users.map((u) => [u.username, u.connections]));
    this.on.presence(users);
  }

  /**
   * Joins and quits, one by one or a big room's batch: kept here, so nobody asks the server for
   * the whole list again. A line is shown only when someone really arrives (not a reconnect) or
   * really leaves (their last connection).
   */
  private applyDiff(joined: PresenceRef[], left: PresenceRef[], ts: number, rejoin: boolean): void {
    const arrived: string[] = [];
    const gone: string[] = [];
    for (const ref of joined) {
      const n = this.online.get(ref.username) ?? 0;
      this.online.set(ref.username, n + 1);
      if (n === 0 && !rejoin && !ref.rejoin) arrived.push(ref.username);
    }
    for (const ref of left) {
      const n = (this.online.get(ref.username) ?? 0) - 1;
      if (n > 0) this.online.set(ref.username, n);
      else {
        this.online.delete(ref.username);
        gone.push(ref.username);
      }
    }
    for (const [kind, names] of [["join", arrived], ["quit", gone]] as const) {
      if (names.length > 3) this.on.crowd(kind, names.length, ts);
      else for (const name of names) this.on.notice(kind, name, ts);
    }
    const users = [...this.online].map(([username, connections]) => ({ username, connections }));
    this.on.presence(users.sort(byUsername));
  }

  /** Joins and quits change who is online: ask again, once for a burst of them. */
  private refreshPresence(): void {
    clearTimeout(this.presenceTimer);
    this.presenceTimer = setTimeout(() => {
      fetch(`/api/rooms/${encodeURIComponent(this.room)}/presence`)
        .then((res) => (res.ok ? (res.json() as Promise<{ users: PresenceUser[]; version: number }>) : undefined))
        .then((body) => body && this.setPresence(body.users, body.version))
        .catch(() => {});
    }, 250);
  }

  /** Sends a message; resolves with the server's answer (a refusal keeps the text in the box). */
  say(text: string): Promise<Ack> {
    if (!this.socket.connected || !this.joined) {
      return Promise.resolve({ ok: false, error: { code: "UNAVAILABLE", message: "not connected" } });
    }
    return this.socket.timeout(10_000).emitWithAck("say", { text }).catch(
      (): Ack => ({ ok: false, error: { code: "UNAVAILABLE", message: "no answer" } }),
    ) as Promise<Ack>;
  }

  /**
   * Tells the room whether this member is typing. Sent with an acknowledgement so that a refusal
   * (typing notices are rate limited too) comes back as an answer, which is dropped, and not as an
   * `error` event that would read to the user as if a message had been refused.
   */
  typing(typing: boolean): void {
    if (this.joined) this.socket.emit("typing", { typing }, () => {});
  }

  close(): void {
    clearTimeout(this.presenceTimer);
    this.socket.disconnect();
  }
}
