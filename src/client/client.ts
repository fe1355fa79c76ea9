/**
 * The roomcast client: one connection to one room, with recovery built in. After every reconnect
 * it joins again with `since` = the newest message id it has, so the application gets each
 * message once, in order, whatever happened to the connection (a worker killed, a token that
 * expired and was renewed, a slow connection closed by the server). Text said while offline waits
 * in an outbox and is sent when the connection is back, once, in order.
 *
 * Runs in browsers (bundled into the web page) and in Node (`roomcast bench`'s Socket.IO path).
 */
import { io, type Socket } from "socket.io-client";
import { compareIds } from "../chat/ids.js";
import { userKey, type Ack, type ChatMessage, type ErrorCode, type PresenceRef, type PresenceUser, type ServerMessage } from "../protocol.js";
import { Emitter } from "./emitter.js";
import { PresenceState } from "./presence.js";

export interface ConnectOptions {
  /** The room to join. */
  room: string;
  /** Without tokens: the name to show (1–32 characters). */
  username?: string;
  /**
   * With tokens: the JWT your backend minted, or a function that fetches a fresh one; a function
   * is called before every connection, so an expired token is replaced without the user noticing.
   */
  token?: string | (() => string | Promise<string>);
  /** @default ["polling", "websocket"] (long-polling first, then an upgrade: works behind any proxy) */
  transports?: ("polling" | "websocket")[];
  /** First delay before a reconnect; it doubles up to `reconnectDelayMaxMs`, each ±50 % at random. @default 500 */
  reconnectDelayMs?: number;
  /** @default 10000 */
  reconnectDelayMaxMs?: number;
  /** Join as soon as connected. @default true */
  autoJoin?: boolean;
}

export type ClientState = "connecting" | "connected" | "reconnecting" | "offline" | "closed";

/** A refusal with its protocol code (RATE_LIMITED, BAD_TEXT, KICKED, …). */
export class RoomcastError extends Error {
  constructor(
    readonly code: ErrorCode | "CLOSED",
    message: string,
  ) {
    super(message);
    this.name = "RoomcastError";
  }
}

/** Text said but not yet acknowledged by the server. */
export interface Outgoing {
  text: string;
  /** queued: waiting for the connection; sending: sent, no answer yet. */
  state: "queued" | "sending";
}

/**
 * How a message reached the client: `history` is the room's recent past, sent on the first join
 * (old news: nothing to notify); `missed` was said while the client was disconnected and recovered
 * on a rejoin (new to the reader, but not live: a burst of them is no reason for a burst of
 * notifications); `live` has just been said.
 */
export type Arrival = "history" | "missed" | "live";

export interface ClientEvents {
  state: (state: ClientState) => void;
  /** A chat message, each once and in order (history on joining, then live), and how it came. */
  message: (message: ChatMessage, arrival: Arrival) => void;
  /** A message removed by the application: take it off the log. */
  delete: (id: string) => void;
  /** Who is in the room now (after every change). */
  presence: (users: PresenceUser[]) => void;
  /** Someone arrived (their first connection; reconnects are not arrivals). */
  arrive: (who: PresenceRef, ts: number) => void;
  /** Someone left (their last connection). */
  leave: (who: PresenceRef, ts: number) => void;
  typing: (who: PresenceRef, typing: boolean) => void;
  /** Messages were missed and could not be recovered (the history no longer reached back). */
  gap: () => void;
  /** A notice from the server (TOKEN_EXPIRED, SLOW_CONSUMER, …) or a refusal nobody awaited. */
  error: (error: RoomcastError) => void;
  /** The client stopped for good: kicked, banned, refused (UNAUTHORIZED, FORBIDDEN, BAD_ROOM…), or closed. */
  closed: (reason: RoomcastError) => void;
  /** The outbox changed: what is still waiting to be sent or acknowledged, in order. */
  outbox: (pending: Outgoing[]) => void;
}

interface Pending extends Outgoing {
  resolve: (id: string) => void;
  reject: (err: RoomcastError) => void;
  /** Sent, and the connection went before the answer: it may or may not have been accepted. */
  uncertain: boolean;
}

/** Codes after which the client does not come back by itself. */
const FINAL: ReadonlySet<string> = new Set(["KICKED", "BANNED", "UNAUTHORIZED", "FORBIDDEN", "BAD_ROOM", "BAD_USERNAME", "RATE_LIMITED"]);
const ACK_TIMEOUT_MS = 15_000;

export class RoomcastClient extends Emitter<ClientEvents> {
  readonly room: string;
  private readonly socket: Socket;
  private readonly presenceState = new PresenceState();
  private stateNow: ClientState = "connecting";
  private wantJoin: boolean;
  private joined = false;
  private joinWaiters: { resolve: () => void; reject: (err: RoomcastError) => void }[] = [];
  private lastId: string | undefined;
  /** Whether a join was answered before: the history of a later join is what was missed. */
  private everJoined = false;
  private oldestId: string | undefined;
  private olderKept = false;
  private readonly outbox: Pending[] = [];
  private flushing = false;
  /** Who this client is in the room (to recognise its own messages after a reconnect). */
  private identity: PresenceRef;
  /** Messages received since the last reconnect: where an unacknowledged say may have landed. */
  private recentOwn: ChatMessage[] = [];
  /** Timers that come back to the server (a refused handshake or join, tried again): cleared on close. */
  private readonly retries = new Set<ReturnType<typeof setTimeout>>();
  private finalError: RoomcastError | undefined;
  private authFailures = 0;

  constructor(url: string | undefined, private readonly options: ConnectOptions) {
    super();
    this.room = options.room;
    this.wantJoin = options.autoJoin ?? true;
    this.identity = { username: (options.username ?? "").trim() };
    const token = options.token;
    const auth =
      token === undefined
        ? undefined
        : (cb: (data: object) => void) => {
            Promise.resolve(typeof token === "function" ? token() : token).then(
              (t) => {
                this.identity = identityOf(t) ?? this.identity;
                cb({ token: t });
              },
              () => cb({}), // the token endpoint failed: refused as UNAUTHORIZED, tried again
            );
          };
    const socketOptions = {
      query: { roomid: options.room },
      transports: options.transports ?? ["polling", "websocket"],
      forceNew: true,
      reconnectionDelay: options.reconnectDelayMs ?? 500,
      reconnectionDelayMax: options.reconnectDelayMaxMs ?? 10_000,
      // ±50 %: thousands of clients of a lost worker do not all come back in the same millisecond
      randomizationFactor: 0.5,
      ...(auth ? { auth } : {}),
    };
    this.socket = url === undefined ? io(socketOptions) : io(url, socketOptions);
    this.socket.on("connect", () => {
      this.authFailures = 0;
      if (this.wantJoin) this.sendJoin();
    });
    this.socket.on("disconnect", (reason) => this.onDisconnect(reason));
    this.socket.on("connect_error", (err: Error & { data?: { code?: ErrorCode; message?: string } }) => this.onConnectError(err));
    this.socket.on("message", (m: ServerMessage) => this.receive(m));
  }

  get state(): ClientState {
    return this.stateNow;
  }

  /** Who is in the room now. */
  get presence(): PresenceUser[] {
    return this.presenceState.list;
  }

  /** Whether older messages than the oldest one the client has are kept (see `older`). */
  get hasOlder(): boolean {
    return this.olderKept;
  }

  /**
   * Who this client is in the room: the username it was given, or, with tokens, the token's name
   * and `sub` (known once the first token was fetched: from the first `state` change on). Compare
   * with `userKey` from messages and presence to tell the user's own.
   */
  get me(): PresenceRef {
    return { ...this.identity };
  }

  /** Joins the room (at once if `autoJoin`); resolves once joined. Rejoins after every reconnect. */
  join(): Promise<void> {
    if (this.joined) return Promise.resolve();
    if (this.finalError) return Promise.reject(this.finalError);
    return new Promise((resolve, reject) => {
      this.joinWaiters.push({ resolve, reject });
      if (!this.wantJoin) {
        this.wantJoin = true;
        if (this.socket.connected) this.sendJoin();
      }
    });
  }

  /**
   * Says something; resolves with the message's id once the room has it, or rejects with the
   * refusal (RATE_LIMITED, BAD_TEXT, UNAVAILABLE…). While offline it waits in the outbox.
   */
  say(text: string): Promise<string> {
    if (this.finalError) return Promise.reject(this.finalError);
    return new Promise((resolve, reject) => {
      this.outbox.push({ text, state: "queued", uncertain: false, resolve, reject });
      this.outboxChanged();
      void this.flush();
    });
  }

  /**
   * Tells the others this user is (or stopped) typing. Sent with an acknowledgement, so that a
   * refusal (typing notices are rate limited too) comes back as an answer, which is dropped, and
   * not as an `error` event that an application would take for a refused message.
   */
  typing(typing: boolean): void {
    if (this.joined) this.socket.emit("typing", { typing }, () => undefined);
  }

  /**
   * Scrollback: the `limit` messages before the oldest one the client has, oldest first. They are
   * not given to `message` listeners (they are older): show them above the log. `before`: page
   * back from this message id instead (an application that dropped its oldest messages to stay
   * light pages back from the oldest one it still shows).
   */
  async older(limit = 50, before?: string): Promise<{ messages: ChatMessage[]; more: boolean }> {
    if (!this.joined) throw new RoomcastError("NOT_JOINED", "not in the room yet");
    const from = before ?? this.oldestId;
    if (from === undefined) return { messages: [], more: false };
    const ack = (await this.socket.timeout(ACK_TIMEOUT_MS).emitWithAck("history", { before: from, limit })) as Ack;
    if (!ack.ok) throw new RoomcastError(ack.error.code, ack.error.message);
    const messages = ack.messages ?? [];
    const more = ack.more ?? false;
    // the client's own cursor moves only back, so that `hasOlder` stays about what it has
    const first = messages[0]?.id;
    if (first !== undefined && (this.oldestId === undefined || compareIds(first, this.oldestId) < 0)) {
      this.oldestId = first;
      this.olderKept = more;
    } else if (from === this.oldestId) {
      this.olderKept = more;
    }
    return { messages, more };
  }

  /** Leaves the room and closes the connection for good. */
  close(): void {
    this.finish(new RoomcastError("CLOSED", "closed by the application"));
    this.socket.disconnect();
  }

  // ---- connection ------------------------------------------------------------------------------

  private setState(state: ClientState): void {
    if (state === this.stateNow) return;
    this.stateNow = state;
    this.emit("state", state);
  }

  private sendJoin(): void {
    const since = this.lastId;
    const payload = since === undefined ? { username: this.identity.username } : { username: this.identity.username, since };
    this.socket
      .timeout(ACK_TIMEOUT_MS)
      .emitWithAck("join", payload)
      .then(
        (ack: Ack) => {
          if (ack.ok) return this.onJoined();
          const error = new RoomcastError(ack.error.code, ack.error.message);
          if (FINAL.has(error.code) && error.code !== "RATE_LIMITED") return this.fail(error);
          // UNAVAILABLE (Redis lost) or too many attempts: try again shortly
          this.emit("error", error);
          this.later(() => this.socket.connected && !this.joined && this.sendJoin(), 1000 + Math.random() * 1000);
        },
        () => undefined, // no answer: the connection went; the next connect joins again
      );
  }

  private onJoined(): void {
    this.joined = true;
    this.everJoined = true;
    this.setState("connected");
    for (const waiter of this.joinWaiters.splice(0)) waiter.resolve();
    this.settleUncertain();
    void this.flush();
  }

  private onDisconnect(reason: Socket.DisconnectReason): void {
    this.joined = false;
    for (const item of this.outbox) if (item.state === "sending") item.uncertain = true;
    if (this.finalError || reason === "io client disconnect") return this.finish(this.finalError ?? new RoomcastError("CLOSED", "closed"));
    if (reason === "io server disconnect") {
      // the server closed this connection on purpose (a kick, a flood): it is not to come back
      return this.fail(new RoomcastError("KICKED", "the server closed the connection"));
    }
    this.setState(online() ? "reconnecting" : "offline");
  }

  private onConnectError(err: Error & { data?: { code?: ErrorCode; message?: string } }): void {
    const code = err.data?.code;
    if (code === undefined) return this.setState(online() ? "reconnecting" : "offline");
    const error = new RoomcastError(code, err.data?.message ?? err.message);
    // A refused handshake is not retried by socket.io-client. A token function may give a good
    // token next time (it expired on the way), and a per-address limit passes: try a few times.
    const retry = (code === "UNAUTHORIZED" && typeof this.options.token === "function" && ++this.authFailures <= 3) || code === "RATE_LIMITED";
    if (!retry) return this.fail(error);
    this.emit("error", error);
    this.setState("reconnecting");
    this.later(() => this.socket.connect(), 1000 * 2 ** Math.min(this.authFailures, 4) * (0.5 + Math.random()));
  }

  /** Runs `fn` after `ms`, unless the client is closed for good meanwhile. */
  private later(fn: () => void, ms: number): void {
    const timer = setTimeout(() => {
      this.retries.delete(timer);
      if (!this.finalError) fn();
    }, ms);
    this.retries.add(timer);
  }

  /** Stops for good with this reason. */
  private fail(error: RoomcastError): void {
    this.finish(error);
    this.socket.disconnect();
  }

  private finish(error: RoomcastError): void {
    if (this.stateNow === "closed") return;
    this.finalError = error;
    for (const timer of this.retries) clearTimeout(timer);
    this.retries.clear();
    this.joined = false;
    this.setState("closed");
    for (const waiter of this.joinWaiters.splice(0)) waiter.reject(error);
    for (const item of this.outbox.splice(0)) item.reject(error);
    this.outboxChanged();
    this.emit("closed", error);
  }

  // ---- what the server sends ---------------------------------------------------------------------

  private receive(m: ServerMessage): void {
    switch (m.event) {
      case "history": {
        if (m.data.truncated && this.lastId !== undefined) this.emit("gap");
        if (this.lastId === undefined) this.olderKept = m.data.truncated;
        this.accept(m.data.messages, this.everJoined ? "missed" : "history");
        break;
      }
      case "broadcast_say":
        this.accept([m.data], "live");
        break;
      case "delete":
        this.emit("delete", m.data.id);
        break;
      case "presence":
        this.presenceState.reset(m.data.users, m.data.version);
        this.emit("presence", this.presenceState.list);
        break;
      case "join":
      case "broadcast_quit": {
        const ref: PresenceRef = m.data.user === undefined ? { username: m.data.username } : { username: m.data.username, user: m.data.user };
        if (m.event === "join" && m.data.rejoin) ref.rejoin = true;
        this.presenceChanged(m.data.version, m.event === "join" ? [ref] : [], m.event === "join" ? [] : [ref], m.data.ts);
        break;
      }
      case "presence_diff":
        this.presenceChanged(m.data.version, m.data.joined, m.data.left, m.data.ts);
        break;
      case "typing":
        this.emit("typing", m.data.user === undefined ? { username: m.data.username } : { username: m.data.username, user: m.data.user }, m.data.typing);
        break;
      case "error": {
        const error = new RoomcastError(m.data.code, m.data.message);
        if (error.code === "KICKED") this.finalError = error; // the disconnect follows
        this.emit("error", error);
        break;
      }
    }
  }

  private presenceChanged(version: number | undefined, joined: PresenceRef[], left: PresenceRef[], ts: number): void {
    const change = this.presenceState.apply(version, joined, left);
    if (!change) return; // already in the presence we have (our own join, or older than our snapshot)
    for (const who of change.arrived) this.emit("arrive", who, ts);
    for (const who of change.left) this.emit("leave", who, ts);
    this.emit("presence", this.presenceState.list);
  }

  private accept(messages: ChatMessage[], arrival: Arrival): void {
    for (const message of messages) {
      if (this.lastId !== undefined && compareIds(message.id, this.lastId) <= 0) continue;
      this.lastId = message.id;
      this.oldestId ??= message.id;
      // Our own messages, kept only while a send of ours waits for its answer: where it may have landed.
      if (this.outbox.some((item) => item.state === "sending") && userKey(message) === userKey(this.identity)) {
        this.recentOwn.push(message);
        if (this.recentOwn.length > 200) this.recentOwn.shift();
      }
      this.emit("message", message, arrival);
    }
  }

  // ---- the outbox ------------------------------------------------------------------------------

  /**
   * After a reconnect: a message sent without an answer either reached the room (it is among our
   * own messages received since it was sent — live before the connection went, or recovered with
   * `since` — with its text) or did not (it is sent again).
   */
  private settleUncertain(): void {
    const mine = this.recentOwn;
    for (const item of this.outbox) {
      if (!item.uncertain) continue;
      item.uncertain = false;
      const at = mine.findIndex((m) => m.text === item.text);
      if (at >= 0) {
        item.resolve(mine[at]!.id);
        mine.splice(0, at + 1);
        this.outbox.splice(this.outbox.indexOf(item), 1);
      } else {
        item.state = "queued";
      }
    }
    if (!this.outbox.some((item) => item.state === "sending")) this.recentOwn = [];
    this.outboxChanged();
  }

  /** Sends the outbox in order, one at a time, while joined. */
  private async flush(): Promise<void> {
    if (this.flushing) return;
    this.flushing = true;
    try {
      while (this.joined && this.outbox.length > 0) {
        const item = this.outbox[0]!;
        if (item.uncertain) return;
        item.state = "sending";
        this.outboxChanged();
        let ack: Ack;
        try {
          ack = (await this.socket.timeout(ACK_TIMEOUT_MS).emitWithAck("say", { text: item.text })) as Ack;
        } catch {
          // No answer: the connection went (or is going), settled after the rejoin. If it still
          // looks up, it is not carrying anything: drop the transport, so the rejoin comes.
          item.uncertain = true;
          if (this.socket.connected) (this.socket.io as unknown as { engine?: { close(): void } }).engine?.close();
          return;
        }
        this.outbox.shift();
        // answered: what arrived of ours meanwhile is no longer a place an unanswered send may be
        if (!this.outbox.some((other) => other.state === "sending")) this.recentOwn = [];
        if (ack.ok) item.resolve(ack.id!);
        else item.reject(new RoomcastError(ack.error.code, ack.error.message));
        this.outboxChanged();
      }
    } finally {
      this.flushing = false;
    }
  }

  private outboxChanged(): void {
    this.emit("outbox", this.outbox.map(({ text, state }) => ({ text, state })));
  }
}

/** Who a token says the user is (its payload, read without checking: the server checks it). */
function identityOf(token: string): PresenceRef | undefined {
  try {
    const part = token.split(".")[1];
    if (!part) return undefined;
    const base64 = part.replace(/-/g, "+").replace(/_/g, "/");
    const json = decodeURIComponent(
      Array.from(atob(base64), (c) => `%${c.charCodeAt(0).toString(16).padStart(2, "0")}`).join(""),
    );
    const claims = JSON.parse(json) as { sub?: unknown; name?: unknown };
    if (typeof claims.sub !== "string") return undefined;
    return { username: typeof claims.name === "string" ? claims.name : claims.sub, user: claims.sub };
  } catch {
    return undefined;
  }
}

/** False when a browser knows it is offline (Node has no `navigator.onLine`: always online). */
function online(): boolean {
  const nav = (globalThis as { navigator?: { onLine?: boolean } }).navigator;
  return nav?.onLine !== false;
}
