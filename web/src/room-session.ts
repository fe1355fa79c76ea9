/**
 * One room the reader is in: its connection (a ChatClient), its log, and what the page shows for
 * it when it is on screen (connection state, who is online, who is typing, the composer's draft
 * and notice). Rooms off screen keep all of this, so switching rooms loses nothing.
 */
import type { ChatMessage, ErrorCode, PresenceUser } from "../../src/protocol.js";
import { ChatClient, type Arrival, type ConnectionState } from "./chat-client.js";
import type { Strings } from "./i18n.js";
import { LogView } from "./log-view.js";

/** How long a "… is typing" stays without news from its author (they may have closed the tab). */
const TYPING_TIMEOUT_MS = 6000;

/** What the page does with a room's events. */
export interface RoomHost {
  /** The connection state, who is online or who is typing changed. */
  changed(session: RoomSession): void;
  /** Messages reached the room's log. */
  arrived(session: RoomSession, messages: ChatMessage[], arrival: Arrival): void;
  /** Messages from others below the view of a reader who scrolled up. */
  unseen(session: RoomSession, count: number): void;
  /** The server refused something that was not a message (a refused message is the composer's). */
  refused(session: RoomSession, code: ErrorCode, message: string): void;
}

export class RoomSession {
  readonly log: LogView;
  readonly client: ChatClient;
  state: ConnectionState = "connecting";
  presence: PresenceUser[] = [];
  /** Messages from others that arrived while the room was not on screen. */
  unread = 0;
  /** The composer's text while another room is on screen. */
  draft = "";
  /** The composer's notice for this room, and which send set it (see Composer). */
  notice = "";
  noticeSeq = 0;
  /** Messages sent and not yet answered: the reader's own message then comes into view. */
  sendsInFlight = 0;
  private readonly typingNow = new Map<string, ReturnType<typeof setTimeout>>();

  constructor(
    readonly room: string,
    readonly nickname: string,
    t: Strings,
    host: RoomHost,
  ) {
    this.log = new LogView({ room, me: nickname, t, unseen: (count) => host.unseen(this, count) });
    this.client = new ChatClient(room, nickname, {
      state: (state) => {
        this.state = state;
        host.changed(this);
      },
      messages: (messages, arrival) => {
        const ownSent = this.sendsInFlight > 0 && messages.some((m) => m.username === nickname);
        this.log.addMessages(messages, ownSent);
        host.arrived(this, messages, arrival);
      },
      start: () => this.log.markStart(),
      notice: (kind, name, ts) => this.log.addNotice(kind === "join" ? t.joined(name) : t.left(name), ts),
      crowd: (kind, count, ts) => this.log.addNotice(kind === "join" ? t.joinedMany(count) : t.leftMany(count), ts),
      presence: (users) => {
        this.presence = users;
        host.changed(this);
      },
      typing: (name, typing) => this.setTyping(name, typing, host),
      gap: () => this.log.addNotice(t.historyGap, Date.now()),
      error: (code, message) => host.refused(this, code, message),
    });
  }

  private setTyping(name: string, typing: boolean, host: RoomHost): void {
    clearTimeout(this.typingNow.get(name));
    if (typing) this.typingNow.set(name, setTimeout(() => this.setTyping(name, false, host), TYPING_TIMEOUT_MS));
    else this.typingNow.delete(name);
    host.changed(this);
  }

  /** Who is typing now, in the order they started. */
  get typing(): string[] {
    return [...this.typingNow.keys()];
  }

  close(): void {
    for (const timer of this.typingNow.values()) clearTimeout(timer);
    this.client.close();
    this.log.element.remove();
  }
}
