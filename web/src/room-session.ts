/**
 * One room the reader is in: its connection (the client SDK, `roomcast/client`, which recovers
 * after every reconnect, keeps presence, holds what is sent while offline and renews tokens), its
 * log, and what the page shows for it when it is on screen (connection state, who is online, who
 * is typing, the composer's draft and notice). Rooms off screen keep all of this, so switching
 * rooms loses nothing.
 */
import { connect, userKey, type RoomcastError, type Arrival, type ChatMessage, type ClientState, type PresenceRef, type PresenceUser, type RoomcastClient } from "../../src/client/index.js";
import type { Strings } from "./i18n.js";
import { LogView } from "./log-view.js";

/** How long a "… is typing" stays without news from its author (they may have closed the tab). */
const TYPING_TIMEOUT_MS = 6000;
/** Earlier messages asked for at once, when the reader scrolls to the top of the log. */
const EARLIER_PAGE = 50;
/** More people than this arriving (or leaving) at once are one line: "12 people joined". */
const CROWD = 3;

/** Who the reader is: a nickname, or (a server with tokens) a function that fetches a token. */
export type Identity = { nickname: string } | { token: () => Promise<string> };

/** What the page does with a room's events. */
export interface RoomHost {
  /** The connection state, who is online or who is typing changed. */
  changed(session: RoomSession): void;
  /** The room is connected (again): joined, with everything it missed. */
  connected(session: RoomSession): void;
  /** A message reached the room's log. */
  arrived(session: RoomSession, message: ChatMessage, arrival: Arrival): void;
  /** Messages from others below the view of a reader who scrolled up. */
  unseen(session: RoomSession, count: number): void;
  /**
   * A notice from the server that passes (the token expired, the connection fell behind): the
   * client reconnects by itself. A refused message is the composer's.
   */
  notice(session: RoomSession, error: RoomcastError): void;
  /** The room's connection stopped for good (kicked, banned, refused), with the reason. */
  closed(session: RoomSession, error: RoomcastError): void;
}

export class RoomSession {
  readonly log: LogView;
  readonly client: RoomcastClient;
  state: ClientState = "connecting";
  presence: PresenceUser[] = [];
  /** Messages from others that arrived while the room was not on screen. */
  unread = 0;
  /** The composer's text while another room is on screen. */
  draft = "";
  /** The composer's notice for this room, which send set it, and whether it passes on reconnecting (see Composer). */
  notice = "";
  noticeSeq = 0;
  noticeBrief = false;
  /** Messages sent and not yet answered: the reader's own message then comes into view. */
  sendsInFlight = 0;
  /** Who is typing: by user key, with the name to show. */
  private readonly typingNow = new Map<string, { name: string; timer: ReturnType<typeof setTimeout> }>();
  private joinedOnce = false;
  /** Arrivals and departures of this turn, shown together (a crowd as one line). */
  private comings: { join: string[]; quit: string[]; ts: number } | undefined;

  /** `nickname`: what the room was entered with ("" with tokens); remembered with the room. */
  constructor(
    readonly room: string,
    readonly nickname: string,
    identity: Identity,
    private readonly t: Strings,
    host: RoomHost,
  ) {
    this.client = connect(undefined, "token" in identity ? { room, token: identity.token } : { room, username: identity.nickname });
    const client = this.client;
    this.log = new LogView({
      room,
      me: () => client.me,
      t,
      unseen: (count) => host.unseen(this, count),
      older: (before) => client.older(EARLIER_PAGE, before),
    });
    client.on("state", (state) => {
      this.state = state;
      if (state === "connected" && !this.joinedOnce) {
        this.joinedOnce = true;
        // the reader's own arrival is in the presence the room sent them: said here
        this.log.addNotice(t.joined(client.me.username), Date.now());
        this.log.setEarlier(client.hasOlder);
      }
      if (state === "connected") host.connected(this);
      host.changed(this);
    });
    client.on("message", (message, arrival) => {
      const own = this.isMine(message);
      this.log.addMessages([message], own && this.sendsInFlight > 0);
      host.arrived(this, message, arrival);
    });
    client.on("delete", (id) => this.log.remove(id));
    client.on("presence", (users) => {
      this.presence = users;
      host.changed(this);
    });
    client.on("arrive", (who, ts) => this.coming("join", who, ts));
    client.on("leave", (who, ts) => {
      this.setTyping(who, false, host);
      this.coming("quit", who, ts);
    });
    client.on("typing", (who, typing) => this.setTyping(who, typing, host));
    client.on("gap", () => this.log.addNotice(t.historyGap, Date.now()));
    client.on("outbox", (pending) => this.log.setOutgoing(pending));
    client.on("error", (error) => host.notice(this, error));
    client.on("closed", (error) => {
      if (error.code !== "CLOSED") host.closed(this, error);
    });
  }

  /** Who the reader is in this room (with tokens, the token's name and user id). */
  get me(): PresenceRef {
    return this.client.me;
  }

  isMine(who: { username: string; user?: string }): boolean {
    return userKey(who) === userKey(this.client.me);
  }

  /**
   * One line per person who arrived or left: the client tells a first connection from a second
   * tab or a reconnect. Those of one turn (a big room's batch, a dead process's members) are
   * shown together, a crowd as one line.
   */
  private coming(kind: "join" | "quit", who: PresenceRef, ts: number): void {
    if (!this.comings) {
      this.comings = { join: [], quit: [], ts };
      queueMicrotask(() => {
        const { join, quit, ts } = this.comings!;
        this.comings = undefined;
        for (const [names, one, many] of [[join, this.t.joined, this.t.joinedMany], [quit, this.t.left, this.t.leftMany]] as const) {
          if (names.length > CROWD) this.log.addNotice(many(names.length), ts);
          else for (const name of names) this.log.addNotice(one(name), ts);
        }
      });
    }
    this.comings[kind].push(who.username);
  }

  private setTyping(who: PresenceRef, typing: boolean, host: RoomHost): void {
    const key = userKey(who);
    const was = this.typingNow.get(key);
    if (!was && !typing) return;
    clearTimeout(was?.timer);
    if (typing) this.typingNow.set(key, { name: who.username, timer: setTimeout(() => this.setTyping(who, false, host), TYPING_TIMEOUT_MS) });
    else this.typingNow.delete(key);
    host.changed(this);
  }

  /** Who is typing now, in the order they started. */
  get typing(): string[] {
    return [...this.typingNow.values()].map((t) => t.name);
  }

  close(): void {
    for (const { timer } of this.typingNow.values()) clearTimeout(timer);
    this.client.close();
    this.log.element.remove();
  }
}
