/**
 * The log of one room: its messages grouped by author, day separators, join and leave notices,
 * and where the view is. One LogView per room the reader is in; only the room on screen is shown.
 *
 * Guarantees: a reader at the newest message stays there as messages arrive and as the log is
 * resized (the composer grows, a notice appears, the phone's keyboard opens); a reader who
 * scrolled up is never moved, and is told how many messages came meanwhile; the reader's own
 * messages always come into view; scrolled to the top, the reader gets the earlier messages, a
 * page at a time, what they were looking at staying where it was, down to the room's start. What
 * the reader sent and the room does not have yet is shown after the newest message, "sending…".
 * Limits: at most LOG_LIMIT messages are kept in the page (the oldest go, and only while the
 * reader is at the newest, so nothing moves under a reader's eyes; scrolling up brings them back).
 */
import type { Outgoing } from "../../src/client/index.js";
import { userKey, type ChatMessage, type PresenceRef } from "../../src/protocol.js";
import { el } from "./dom.js";
import type { Strings } from "./i18n.js";
import { inviteLine } from "./invite.js";
import { mentions, messageTextNodes } from "./message-text.js";
import { dayKey, dayLabel, fullTimeText, timeText } from "./when.js";

/** Messages of one author this close, with nothing between them, share one name and time. */
const GROUP_GAP_MS = 5 * 60_000;
/** The most messages kept per room: a page open all day in a busy room stays light. */
export const LOG_LIMIT = 1000;
/** Trimming waits until this many more than LOG_LIMIT, to drop a batch at once and not one by one. */
const TRIM_SLACK = 100;
/** The longest what arrives waits for a frame before it is put on the page anyway (hidden tabs). */
const FLUSH_FALLBACK_MS = 500;
/** A reader closer than this to the newest message is "at the newest". */
const NEAR_BOTTOM_PX = 40;
/** A reader closer than this to the top of the log gets the earlier messages. */
const NEAR_TOP_PX = 300;

/** What a new message continues: the message line before it, if nothing else came between. */
interface Tail {
  /** The author (see `userKey`: with tokens two people may share a name). */
  key: string;
  ts: number;
}

const tailOf = (m: ChatMessage): Tail => ({ key: userKey(m), ts: m.ts });
const continues = (tail: Tail | undefined, m: ChatMessage) => tail !== undefined && tail.key === userKey(m) && m.ts - tail.ts <= GROUP_GAP_MS;

/** Earlier messages: a page of them before `before` (the oldest message the log shows), oldest first. */
export type OlderPages = (before: string | undefined) => Promise<{ messages: ChatMessage[]; more: boolean }>;

export interface LogViewOptions {
  room: string;
  /**
   * Who the reader is in this room: their own messages are set apart, their mentions marked. A
   * function: with tokens, the name is the token's, known once the page has fetched one.
   */
  me(): PresenceRef;
  t: Strings;
  /** How many messages from others arrived below the view of a reader who scrolled up (0: none). */
  unseen(count: number): void;
  /** Where earlier messages come from, when the reader scrolls to the top. */
  older: OlderPages;
}

export class LogView {
  readonly element: HTMLOListElement;
  private readonly messageOf = new WeakMap<Element, ChatMessage>();
  private messageCount = 0;
  /** The last message line, for grouping; undefined after a notice or at the start. */
  private tail: Tail | undefined;
  private lastDay: string | undefined;
  private invite: HTMLLIElement | undefined;
  private shown = false;
  /** Whether the reader is at the newest message (kept while hidden, from when it was hidden). */
  private pinned = true;
  private savedTop = 0;
  private unseenCount = 0;
  /** Messages and notices not yet on the page (see scheduleFlush), and whether one is the reader's own. */
  private pending: (ChatMessage | { notice: string; ts: number })[] = [];
  private bringIntoView = false;
  private startWanted = false;
  /** What the reader sent that the room does not have yet, to show after the newest message. */
  private outgoing: Outgoing[] | undefined;
  /** Whether there are earlier messages than the log shows: unknown until the first history. */
  private earlier: "unknown" | "more" | "none" = "unknown";
  private loadingEarlier = false;
  private frame = 0;
  private flushTimer: ReturnType<typeof setTimeout> | undefined;

  constructor(private readonly options: LogViewOptions) {
    const log = el("ol", "log");
    log.hidden = true;
    log.tabIndex = 0;
    log.setAttribute("aria-live", "polite");
    log.setAttribute("aria-relevant", "additions");
    log.setAttribute("aria-label", options.t.messages);
    log.addEventListener("scroll", () => {
      if (!this.shown) return;
      this.pinned = this.atBottom();
      if (this.pinned) this.setUnseen(0);
      this.loadEarlierIfAtTop();
    });
    // The log's box changes size (the composer grows, a notice shows, the window or keyboard
    // changes): a reader at the newest message stays at it.
    new ResizeObserver(() => {
      if (this.shown && this.pinned) log.scrollTop = log.scrollHeight;
    }).observe(log);
    this.element = log;
  }

  get unseen(): number {
    return this.unseenCount;
  }

  // ---- on screen or not ----------------------------------------------------------------------

  /** Puts this log on screen (as `#log`), where the reader left it. */
  show(): void {
    this.shown = true;
    this.element.hidden = false;
    this.element.id = "log";
    if (this.pinned) this.scrollToNewest();
    else this.element.scrollTop = this.savedTop;
    this.options.unseen(this.unseenCount);
    this.loadEarlierIfAtTop();
  }

  hide(): void {
    if (this.shown) {
      this.pinned = this.atBottom();
      this.savedTop = this.element.scrollTop;
    }
    this.shown = false;
    this.element.hidden = true;
    this.element.removeAttribute("id");
  }

  /** Scrolls to the newest message; nothing is unseen after that. */
  scrollToNewest(): void {
    this.pinned = true;
    if (this.shown) this.element.scrollTop = this.element.scrollHeight;
    this.setUnseen(0);
  }

  private atBottom(): boolean {
    const log = this.element;
    return log.scrollHeight - log.scrollTop - log.clientHeight < NEAR_BOTTOM_PX;
  }

  private setUnseen(count: number): void {
    if (count === this.unseenCount) return;
    this.unseenCount = count;
    if (this.shown) this.options.unseen(count);
  }

  // ---- what arrives ----------------------------------------------------------------------------

  /**
   * Adds messages at the end. `bringIntoView`: the reader just sent one of them, so the log goes
   * to the newest even if they had scrolled up.
   */
  addMessages(messages: ChatMessage[], bringIntoView = false): void {
    if (messages.length === 0) return;
    this.pending.push(...messages);
    this.bringIntoView ||= bringIntoView;
    this.scheduleFlush();
  }

  /** A line between messages: someone joined or left, older messages were lost. */
  addNotice(text: string, ts: number): void {
    this.pending.push({ notice: text, ts });
    this.scheduleFlush();
  }

  /**
   * What the reader sent and the room does not have yet, in order (the client's outbox): shown
   * after the newest message, each marked "sending…" (at once while the connection is down; after
   * a moment otherwise, so that a quick send does not flicker).
   */
  setOutgoing(items: Outgoing[]): void {
    if (items.length > (this.outgoing ?? []).length) this.bringIntoView = true;
    this.outgoing = items;
    this.scheduleFlush();
  }

  /**
   * Takes a message off the log (the application deleted it). The message after it gets the
   * author's name if it was the first of a group, and a day left with no message loses its
   * separator.
   */
  remove(id: string): void {
    this.pending = this.pending.filter((item) => "notice" in item || item.id !== id);
    const line = this.element.querySelector<HTMLElement>(`.message[data-id="${CSS.escape(id)}"]`);
    if (!line) return;
    const prev = line.previousElementSibling;
    const next = line.nextElementSibling;
    const following = next ? this.messageOf.get(next) : undefined;
    if (next && following && !line.classList.contains("continued") && next.classList.contains("continued")) {
      next.replaceWith(this.messageLine(following, true));
    }
    const wasLast = !next || next.classList.contains("outgoing");
    line.remove();
    this.messageCount--;
    if (prev?.classList.contains("day") && (!next || next.classList.contains("day") || next.classList.contains("outgoing"))) {
      prev.remove();
      const days = this.element.querySelectorAll<HTMLElement>(".day");
      this.lastDay = days.length > 0 ? days[days.length - 1]!.dataset["day"] : undefined;
    }
    if (wasLast) {
      // a message said next continues what is now the last message line, if it is one
      const before = prev && this.messageOf.get(prev);
      this.tail = before ? tailOf(before) : undefined;
    }
  }

  /**
   * Whether the room has messages earlier than the first the log shows (after the first history;
   * false: the log starts at the room's start, which it then says).
   */
  setEarlier(more: boolean): void {
    if (more) {
      this.earlier = "more";
      // once what arrived is on the page (this frame's flush comes first)
      requestAnimationFrame(() => this.loadEarlierIfAtTop());
    } else {
      this.markStart();
    }
  }

  /**
   * What arrives is put on the page once per frame: a busy room's messages come one event each,
   * and adding them one by one would lay the log out again for every one (seconds of work for a
   * few hundred messages in a long log). A hidden tab gets no frames: there a timer flushes, as
   * often as the browser lets a background timer run.
   */
  private scheduleFlush(): void {
    if (this.flushTimer !== undefined) return;
    const flush = () => this.flush();
    this.flushTimer = setTimeout(flush, FLUSH_FALLBACK_MS);
    this.frame = requestAnimationFrame(flush);
  }

  /** Puts everything that arrived since the last flush on the page. */
  flush(): void {
    clearTimeout(this.flushTimer);
    cancelAnimationFrame(this.frame);
    this.flushTimer = undefined;
    const items = this.pending;
    this.pending = [];
    const outgoing = this.outgoing;
    this.outgoing = undefined;
    if (items.length === 0 && outgoing === undefined) {
      if (this.startWanted) this.insertStart();
      return;
    }
    const follow = this.bringIntoView || (this.shown ? this.atBottom() : this.pinned);
    this.bringIntoView = false;
    const lines = document.createDocumentFragment();
    let messages = 0;
    let fromOthers = 0;
    const me = userKey(this.options.me());
    for (const item of items) {
      this.dayBefore(item.ts, lines);
      if ("notice" in item) {
        const line = el("li", "notice", item.notice);
        line.dataset["ts"] = String(item.ts);
        line.title = fullTimeText(item.ts);
        lines.append(line);
        this.tail = undefined;
        continue;
      }
      lines.append(this.messageLine(item, !continues(this.tail, item)));
      this.tail = tailOf(item);
      messages++;
      if (userKey(item) !== me) fromOthers++;
    }
    this.messageCount += messages;
    if (messages > 0) {
      this.invite?.remove();
      this.invite = undefined;
    }
    // messages go above what is still being sent, which stays last
    const firstOutgoing = this.element.querySelector(".outgoing");
    if (firstOutgoing) firstOutgoing.before(lines);
    else this.element.append(lines);
    if (outgoing !== undefined) this.renderOutgoing(outgoing);
    if (this.startWanted) this.insertStart();
    if (follow) {
      this.scrollToNewest();
      this.trim();
    } else {
      this.setUnseen(this.unseenCount + fromOthers);
    }
  }

  private renderOutgoing(items: Outgoing[]): void {
    for (const line of this.element.querySelectorAll(".outgoing")) line.remove();
    for (const item of items) {
      const line = el("li", `outgoing ${item.state}`);
      const bubble = el("div", "bubble");
      bubble.append(el("div", "text", item.text));
      line.append(bubble, el("span", "status", this.options.t.sending));
      this.element.append(line);
    }
  }

  /**
   * The room holds nothing older than what the log shows: says so at the top, and, while nobody
   * has written yet, how to invite people.
   */
  markStart(): void {
    this.earlier = "none";
    this.startWanted = true;
    this.scheduleFlush();
  }

  /**
   * The reader is at the top of the log and the room has earlier messages: loads a page of them
   * (one request at a time; a failed one is tried again at the next scroll).
   */
  private loadEarlierIfAtTop(): void {
    if (!this.shown || this.earlier !== "more" || this.loadingEarlier || this.pending.length > 0 || this.element.scrollTop > NEAR_TOP_PX) return;
    this.loadingEarlier = true;
    this.element.setAttribute("aria-busy", "true");
    const first = this.element.querySelector<HTMLElement>(".message")?.dataset["id"];
    const done = () => {
      this.loadingEarlier = false;
      this.element.removeAttribute("aria-busy");
    };
    this.options.older(first).then(
      ({ messages, more }) => {
        done();
        // the log may have moved on meanwhile (trimmed): only a page that ends where it starts fits
        if (this.element.querySelector<HTMLElement>(".message")?.dataset["id"] !== first) return;
        this.prepend(messages, more);
        // a short page may leave the reader at the top still
        requestAnimationFrame(() => this.loadEarlierIfAtTop());
      },
      // not now (reconnecting, too many requests): tried again at the reader's next scroll
      done,
    );
  }

  private insertStart(): void {
    this.startWanted = false;
    if (this.element.querySelector(".start")) return;
    const start = el("li", "start", this.options.t.start(this.options.room));
    if (this.messageCount === 0) {
      this.invite = inviteLine(this.options.room, this.options.t);
      this.element.prepend(start, this.invite);
    } else {
      this.element.prepend(start);
    }
  }

  /**
   * Scrollback: puts a page of older messages, oldest first, above the first one, keeping what the
   * reader sees where it is. `more` false: the page reaches the room's first message.
   */
  prepend(messages: ChatMessage[], more: boolean): void {
    const log = this.element;
    const fromBottom = log.scrollHeight - log.scrollTop;
    const lines = document.createDocumentFragment();
    let tail: Tail | undefined;
    let day: string | undefined;
    for (const m of messages) {
      if (dayKey(m.ts) !== day) {
        day = dayKey(m.ts);
        lines.append(this.dayLine(m.ts));
        tail = undefined;
      }
      lines.append(this.messageLine(m, !continues(tail, m)));
      tail = tailOf(m);
    }
    const oldFirst = log.firstElementChild;
    log.prepend(lines);
    this.messageCount += messages.length;
    // the seam: one separator per day, and one name over a group that spans it
    let next = oldFirst;
    if (next?.classList.contains("day") && next.getAttribute("data-day") === day) {
      const after = next.nextElementSibling;
      next.remove();
      next = after;
    }
    const first = next ? this.messageOf.get(next) : undefined;
    if (next && first && continues(tail, first)) {
      next.replaceWith(this.messageLine(first, false));
    }
    if (more) this.earlier = "more";
    else {
      this.earlier = "none";
      this.insertStart();
    }
    log.scrollTop = log.scrollHeight - fromBottom;
  }

  /** Writes the day separators again ("Today" becomes "Yesterday" at midnight). */
  relabelDays(now = Date.now()): void {
    for (const line of this.element.querySelectorAll<HTMLElement>(".day")) {
      line.textContent = dayLabel(Number(line.dataset["ts"]), now, this.options.t);
    }
  }

  // ---- lines ------------------------------------------------------------------------------------

  private dayBefore(ts: number, lines: DocumentFragment): void {
    const day = dayKey(ts);
    if (day === this.lastDay) return;
    this.lastDay = day;
    this.tail = undefined;
    lines.append(this.dayLine(ts));
  }

  private dayLine(ts: number): HTMLLIElement {
    const line = el("li", "day", dayLabel(ts, Date.now(), this.options.t));
    line.dataset["day"] = dayKey(ts);
    line.dataset["ts"] = String(ts);
    return line;
  }

  /** A message; the first of a group carries the author's name and the time. */
  private messageLine(m: ChatMessage, startsGroup: boolean): HTMLLIElement {
    const { t } = this.options;
    const me = this.options.me();
    const mine = userKey(m) === userKey(me);
    const line = el("li", "message");
    line.classList.toggle("mine", mine);
    line.classList.toggle("mentions-me", !mine && mentions(m.text, me.username));
    line.classList.toggle("continued", !startsGroup);
    line.dataset["id"] = m.id;
    line.dataset["ts"] = String(m.ts);
    const author = mine ? t.you(m.username) : m.username;
    if (startsGroup) {
      const meta = el("div", "meta");
      const time = el("time", "time", timeText(m.ts));
      time.dateTime = new Date(m.ts).toISOString();
      meta.append(el("span", "author", author), time);
      line.append(meta);
    } else {
      // the name is not shown again, but a screen reader still says who wrote it
      line.append(el("span", "visually-hidden", `${author}: `));
    }
    const bubble = el("div", "bubble");
    bubble.title = fullTimeText(m.ts);
    const text = el("div", "text");
    text.append(...messageTextNodes(m.text, me.username));
    bubble.append(text);
    line.append(bubble);
    this.messageOf.set(line, m);
    return line;
  }

  /**
   * Drops the oldest messages beyond LOG_LIMIT (called only while the reader is at the newest).
   * The line that is then first gets what the lines above it gave it: a day separator, and the
   * author's name if it continued a group.
   */
  private trim(): void {
    if (this.messageCount <= LOG_LIMIT + TRIM_SLACK) return;
    const log = this.element;
    let excess = this.messageCount - LOG_LIMIT;
    // scrolling up brings them back
    this.earlier = "more";
    while (excess > 0 && log.firstElementChild) {
      if (log.firstElementChild.classList.contains("message")) {
        excess--;
        this.messageCount--;
      }
      log.firstElementChild.remove();
    }
    const first = log.firstElementChild as HTMLElement | null;
    if (!first || first.classList.contains("day")) return;
    const message = this.messageOf.get(first);
    const top = message && first.classList.contains("continued") ? this.messageLine(message, true) : first;
    if (top !== first) first.replaceWith(top);
    top.before(this.dayLine(Number(top.dataset["ts"])));
  }
}
