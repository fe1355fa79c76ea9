/**
 * The composer of the room on screen: the text box (Enter sends, Shift+Enter is a new line), the
 * character counter, "typing" signals, and the notice that explains a refused message.
 *
 * A sent message leaves the box at once: until the room has it, it waits in the client's outbox,
 * shown in the log as "sending…" (also while the connection is down: it goes out by itself when
 * the connection is back, once, in order). A refused message comes back to the box with its
 * notice. Sends are numbered: the notice set by a send is cleared only by the success of a later
 * send (in a fast burst, the answer to an earlier message may arrive after a later one was
 * refused: the refusal's notice stays), by Esc, or when the box is emptied. A notice from the
 * server that passes (an expired token) goes when the room is connected again. Each room keeps
 * its own draft and notice.
 */
import { RoomcastError } from "../../src/client/index.js";
import { charLength } from "../../src/protocol.js";
import { byId } from "./dom.js";
import type { Strings } from "./i18n.js";
import type { RoomSession } from "./room-session.js";

/** The counter shows from this share of the longest message on. */
const COUNTER_FROM = 0.8;
/** Without a keystroke for this long, the reader is no longer typing. */
const TYPING_IDLE_MS = 3000;

export class Composer {
  readonly box = byId<HTMLTextAreaElement>("text");
  private readonly counter = byId("counter");
  private readonly noticeLine = byId("notice");
  private session: RoomSession | undefined;
  /** The number of the newest send; a notice remembers the number of the send that set it. */
  private seq = 0;
  private typingSent = false;
  private typingIdle: ReturnType<typeof setTimeout> | undefined;

  constructor(
    private readonly t: Strings,
    private readonly maxText: number,
  ) {
    this.box.addEventListener("input", () => {
      this.updateCounter();
      if (this.box.value === "" && this.session) this.setNotice(this.session, "", this.seq);
      if (!this.typingSent && this.box.value.trim()) {
        this.session?.client.typing(true);
        this.typingSent = true;
      }
      clearTimeout(this.typingIdle);
      this.typingIdle = setTimeout(() => this.stopTyping(), TYPING_IDLE_MS);
    });
    this.box.addEventListener("keydown", (e) => {
      if (e.key === "Enter" && !e.shiftKey && !e.isComposing) {
        e.preventDefault();
        void this.send();
      }
    });
    byId("composer").addEventListener("submit", (e) => {
      e.preventDefault();
      void this.send();
    });
    this.updateCounter();
  }

  /** Makes the composer that of `session` (or of no room), keeping the last room's draft. */
  attach(session: RoomSession | undefined): void {
    if (this.session === session) return;
    this.stopTyping();
    if (this.session) this.session.draft = this.box.value;
    this.session = session;
    this.box.value = session?.draft ?? "";
    this.noticeLine.textContent = session?.notice ?? "";
    this.updateCounter();
  }

  /** Esc: clears the notice if there is one; says whether there was. */
  dismissNotice(): boolean {
    if (!this.session || this.session.notice === "") return false;
    this.setNotice(this.session, "", this.seq);
    return true;
  }

  /**
   * A notice for `session` from outside the composer (the server's). `brief`: it passes when the
   * room is connected again (see `connected`).
   */
  notify(session: RoomSession, text: string, brief = false): void {
    this.setNotice(session, text, this.seq, brief);
  }

  /** `session` is connected again: a brief notice has done its job. */
  connected(session: RoomSession): void {
    if (session.noticeBrief) this.setNotice(session, "", session.noticeSeq);
  }

  private setNotice(session: RoomSession, text: string, seq: number, brief = false): void {
    session.notice = text;
    session.noticeSeq = seq;
    session.noticeBrief = brief && text !== "";
    if (session === this.session) this.noticeLine.textContent = text;
  }

  private updateCounter(): void {
    const n = charLength(this.box.value);
    this.counter.textContent = n >= this.maxText * COUNTER_FROM ? `${n}/${this.maxText}` : "";
    this.counter.classList.toggle("over", n > this.maxText);
  }

  private stopTyping(): void {
    clearTimeout(this.typingIdle);
    if (this.typingSent) this.session?.client.typing(false);
    this.typingSent = false;
  }

  private async send(): Promise<void> {
    const session = this.session;
    const text = this.box.value;
    if (!session || !text.trim()) return;
    const seq = ++this.seq;
    if (charLength(text) > this.maxText) return this.setNotice(session, this.t.errors.BAD_TEXT, seq);
    this.stopTyping();
    // out of the box, into the outbox: the reader may write the next one at once
    this.box.value = "";
    this.updateCounter();
    session.sendsInFlight++;
    try {
      await session.client.say(text);
      if (session.noticeSeq < seq) this.setNotice(session, "", seq);
      session.log.scrollToNewest();
    } catch (err) {
      const error = err instanceof RoomcastError ? err : new RoomcastError("UNAVAILABLE", String(err));
      this.giveBack(session, text);
      // a room left meanwhile has nobody to tell; a room closed for good says why (see main)
      if (error.code !== "CLOSED") this.setNotice(session, this.t.errors[error.code as keyof Strings["errors"]] ?? error.message, seq, false);
    } finally {
      session.sendsInFlight--;
    }
  }

  /**
   * A refused message goes back to the box it was sent from, before what the reader wrote since
   * (nothing the reader wrote is lost).
   */
  private giveBack(session: RoomSession, text: string): void {
    if (session === this.session) {
      this.box.value = this.box.value === "" ? text : `${text}\n${this.box.value}`;
      this.updateCounter();
    } else {
      session.draft = session.draft === "" ? text : `${text}\n${session.draft}`;
    }
  }
}
