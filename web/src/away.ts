/**
 * For a page kept open in a background tab: the number of new messages in the title while the page
 * is hidden (`(3) tea · roomcast`, cleared as soon as it is seen), and desktop notifications, opted
 * into by the reader, for messages that mention them or for every message.
 */
import type { Arrival, ChatMessage } from "../../src/client/index.js";
import type { Strings } from "./i18n.js";

export type NotifyMode = "off" | "mentions" | "all";
const MODES: readonly NotifyMode[] = ["off", "mentions", "all"];
const KEY = "roomcast.notify";
/** The longest message text put in a notification. */
const BODY_MAX = 200;

export const notificationsSupported = (): boolean => typeof Notification !== "undefined";

export class Away {
  private unread = 0;
  private base = "roomcast";
  private chosen: NotifyMode;

  /** `open(room)`: shows that room; a click on its notification calls it. */
  constructor(
    private readonly t: Strings,
    private readonly open: (room: string) => void,
  ) {
    const saved = localStorage.getItem(KEY) as NotifyMode | null;
    this.chosen = saved !== null && MODES.includes(saved) ? saved : "off";
    document.addEventListener("visibilitychange", () => {
      if (!this.hidden) {
        this.unread = 0;
        this.render();
      }
    });
  }

  private get hidden(): boolean {
    return document.visibilityState === "hidden";
  }

  /** The title without the count: the room on screen, or the site's name. */
  setTitle(base: string): void {
    this.base = base;
    this.render();
  }

  private render(): void {
    document.title = this.unread > 0 ? `(${this.unread}) ${this.base}` : this.base;
  }

  /**
   * What the reader gets notified of. A choice the browser's permission does not allow (denied,
   * or reset to "ask" since) is "off": the page cannot ask again without the reader's click.
   */
  get mode(): NotifyMode {
    return notificationsSupported() && Notification.permission === "granted" ? this.chosen : "off";
  }

  /**
   * The reader picked `mode`: asks the browser's permission if it was never given (the browser's
   * own prompt), remembers the choice, and resolves with what is now in force ("off" if refused).
   */
  async choose(mode: NotifyMode): Promise<NotifyMode> {
    if (mode !== "off") {
      if (!notificationsSupported()) return "off";
      const permission = Notification.permission === "default" ? await Notification.requestPermission() : Notification.permission;
      if (permission !== "granted") return "off";
    }
    this.chosen = mode;
    localStorage.setItem(KEY, mode);
    return mode;
  }

  /** A message from someone else reached `room`. */
  arrived(room: string, m: ChatMessage, arrival: Arrival, mentionsReader: boolean, roomOnScreen: boolean): void {
    if (arrival === "history") return; // old news: the room's past, shown on entering
    if (this.hidden) {
      this.unread++;
      this.render();
    }
    // Only live messages notify: after a reconnect, a burst of recovered ones would be noise.
    const mode = this.mode;
    const wanted = mode === "all" || (mode === "mentions" && mentionsReader);
    if (arrival !== "live" || !wanted || (!this.hidden && roomOnScreen)) return;
    const notification = new Notification(this.t.notifyTitle(m.username, room), {
      body: m.text.length > BODY_MAX ? `${m.text.slice(0, BODY_MAX)}…` : m.text,
      // one notification per room on screen at a time: a busy room does not pile them up
      tag: `roomcast:${room}`,
    });
    notification.addEventListener("click", () => {
      window.focus();
      this.open(room);
      notification.close();
    });
  }
}
