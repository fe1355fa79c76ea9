/**
 * The roomcast web page: the entry page (nickname, room, active rooms) and the chat (the rooms
 * the reader is in, the room on screen, who is online, the composer). Every piece of user text
 * reaches the page through textContent (never innerHTML), and the page's Content-Security-Policy
 * forbids inline script besides.
 *
 * Navigation uses history entries: entering a room or switching to another pushes `?room=NAME`,
 * so Back returns to the previous room or to the entry page and Forward comes back. Rooms stay
 * joined while the entry page is shown; only Leave leaves one.
 *
 * A server with tokens says so on the page (`<html data-auth="token" data-auth-token-url="…">`):
 * then the page asks for no nickname, gets a token from the application's address with the user's
 * cookies (again whenever one expires), and the name shown is the token's.
 */
import type { Arrival, ChatMessage, RoomcastError } from "../../src/client/index.js";
import { ROOM_ID, USERNAME_MAX } from "../../src/protocol.js";
import { Away, notificationsSupported, type NotifyMode } from "./away.js";
import { Composer } from "./composer.js";
import { byId, el } from "./dom.js";
import { pickStrings } from "./i18n.js";
import { mentions } from "./message-text.js";
import { firstGraphemes, graphemeLength } from "./names.js";
import { RoomList } from "./room-list.js";
import { RoomSession, type Identity, type RoomHost } from "./room-session.js";
import { loadRooms, saveRooms } from "./rooms.js";
import { untilMidnight } from "./when.js";

const { lang, t } = pickStrings(navigator.languages?.length ? navigator.languages : [navigator.language]);
document.documentElement.lang = lang === "zh" ? "zh-CN" : "en";
const maxText = Number(document.documentElement.dataset["maxTextLength"] ?? "2000");
/** With tokens: where the token comes from ("" when the server was not told: nobody can enter). */
const tokenUrl = document.documentElement.dataset["auth"] === "token" ? (document.documentElement.dataset["authTokenUrl"] ?? "") : undefined;

// Static interface text.
for (const node of document.querySelectorAll<HTMLElement>("[data-t]")) {
  const value = t[node.dataset["t"] as keyof typeof t];
  if (typeof value === "string") node.textContent = value;
}
for (const node of document.querySelectorAll<HTMLElement>("[data-t-label]")) {
  const value = t[node.dataset["tLabel"] as keyof typeof t];
  if (typeof value === "string") node.setAttribute("aria-label", value);
}

const enterView = byId("enter-view");
const chatView = byId("chat-view");
const nickInput = byId<HTMLInputElement>("nickname");
const roomInput = byId<HTMLInputElement>("room");
const enterError = byId("enter-error");
const logs = byId("logs");
const marker = byId<HTMLButtonElement>("new-marker");
const stateBadge = byId("conn-state");
const roomsToggle = byId<HTMLButtonElement>("rooms-toggle");

if (tokenUrl !== undefined) {
  // the name is the token's; the list of active rooms is private (the server API's)
  for (const node of [nickInput, byId("nickname-label")]) node.hidden = true;
  nickInput.required = false;
  byId("active-rooms").hidden = true;
  byId("tagline").textContent = t.taglineToken;
}

/**
 * The token of the application's user, from the application's address, with the user's cookies;
 * called before every connection, so an expired token is replaced by a fresh one.
 */
async function fetchToken(): Promise<string> {
  const res = await fetch(tokenUrl!, { credentials: "include", cache: "no-store", headers: { accept: "application/json" } });
  if (!res.ok) throw new Error(`the token address answered ${res.status}`);
  const { token } = (await res.json()) as { token?: unknown };
  if (typeof token !== "string") throw new Error("the token address gave no token");
  return token;
}
const identity = (nickname: string): Identity => (tokenUrl === undefined ? { nickname } : { token: fetchToken });
/** The nickname rooms are entered with: the one given, or "" with tokens (the name is the token's). */
const nicknameFor = (given: string) => (tokenUrl === undefined ? given : "");
/** Whether a room can be entered: with a nickname, or with tokens and an address to get them from. */
const mayEnter = (nickname: string) => (tokenUrl === undefined ? nickname !== "" : tokenUrl !== "");

/** The rooms the reader is in, in the order they entered them. */
const sessions = new Map<string, RoomSession>();
/** The room on screen; undefined while the entry page is shown. */
let shown: RoomSession | undefined;

const composer = new Composer(t, maxText);
const away = new Away(t, (room) => go(room));
const sidebar = new RoomList(byId("room-tabs"), t, (room) => go(room));
const myRooms = new RoomList(byId("my-rooms"), t, (room) => go(room));

// ---- rooms -------------------------------------------------------------------------------------

const errorText = (error: RoomcastError) => (error.code === "CLOSED" ? error.message : t.errors[error.code]);

const host: RoomHost = {
  changed(session) {
    if (session === shown) renderRoom(session);
  },
  connected(session) {
    composer.connected(session);
  },
  arrived(session, message, arrival) {
    if (session.isMine(message)) return;
    const unread = session.unread;
    fromOthers(session, message, arrival);
    if (session.unread !== unread) renderRoomLists();
  },
  unseen(session, count) {
    if (session !== shown) return;
    marker.hidden = count === 0;
    marker.textContent = t.newMessages(count);
  },
  notice(session, error) {
    composer.notify(session, errorText(error), true);
  },
  closed(session, error) {
    if (error.code === "BAD_ROOM" || error.code === "BAD_USERNAME") {
      leave(session);
      showEnterError(t.errors[error.code]);
    } else {
      // kicked, banned, refused: said, and the room stays on screen, disconnected
      composer.notify(session, errorText(error));
    }
  },
};

function fromOthers(session: RoomSession, m: ChatMessage, arrival: Arrival): void {
  const onScreen = session === shown;
  if (arrival !== "history" && !onScreen) session.unread++;
  away.arrived(session.room, m, arrival, mentions(m.text, session.me.username), onScreen);
}

function join(room: string, nickname: string): RoomSession {
  const old = sessions.get(room);
  if (old && old.nickname === nickname && old.state !== "closed") return old;
  if (old) leave(old, false);
  const session = new RoomSession(room, nickname, identity(nickname), t, host);
  sessions.set(room, session);
  logs.append(session.log.element);
  remember();
  return session;
}

/** Leaves one room; if it was on screen, shows the next room the reader is in, or the entry page. */
function leave(session: RoomSession, moveOn = true): void {
  session.close();
  sessions.delete(session.room);
  remember();
  if (session !== shown) return renderRoomLists();
  shown = undefined;
  composer.attach(undefined);
  if (!moveOn) return;
  const next = [...sessions.values()][0];
  if (next) {
    history.replaceState(null, "", roomPath(next.room));
    showRoom(next);
  } else {
    history.replaceState(null, "", location.pathname);
    showEntry();
  }
}

function remember(): void {
  saveRooms([...sessions.values()].map(({ room, nickname }) => ({ room, nickname })));
}

const roomPath = (room: string) => `?room=${encodeURIComponent(room)}`;

// ---- what is on screen -------------------------------------------------------------------------

function showRoom(session: RoomSession): void {
  if (shown !== session) {
    shown?.log.hide();
    shown = session;
    session.log.show();
  }
  session.unread = 0;
  enterView.hidden = true;
  chatView.hidden = false;
  closeRooms();
  composer.attach(session);
  away.setTitle(`${session.room} · roomcast`);
  byId("room-title").textContent = `# ${session.room}`;
  renderRoom(session);
  renderRoomLists();
  composer.box.focus();
}

function showEntry(): void {
  if (tokenUrl === "") showEnterError(t.noTokenUrl);
  shown?.log.hide();
  shown = undefined;
  composer.attach(undefined);
  chatView.hidden = true;
  enterView.hidden = false;
  away.setTitle("roomcast");
  renderRoomLists();
  void listRooms();
  (nickInput.value ? roomInput : nickInput).focus();
}

/** The parts of the chat that show the room on screen: state, who is online, who is typing. */
function renderRoom(session: RoomSession): void {
  stateBadge.textContent = t[session.state];
  stateBadge.dataset["state"] = session.state;
  byId("online").replaceChildren(
    ...session.presence.map((u) => el("li", session.isMine(u) ? "me" : undefined, u.connections > 1 ? `${u.username} ×${u.connections}` : u.username)),
  );
  byId("online-title").textContent = t.onlineCount(session.presence.length);
  const names = session.typing;
  byId("typing").textContent = names.length === 0 ? "" : names.length === 1 ? t.typing1(names[0]!) : t.typingN(names);
}

function renderRoomLists(): void {
  const items = [...sessions.values()].map(({ room, unread }) => ({ room, unread }));
  sidebar.render(items, shown?.room);
  myRooms.render(items, undefined);
  byId("my-rooms-section").hidden = items.length === 0;
  const elsewhere = items.reduce((sum, r) => sum + (r.room === shown?.room ? 0 : r.unread), 0);
  const badge = byId("rooms-toggle-badge");
  badge.hidden = elsewhere === 0;
  badge.textContent = elsewhere > 99 ? "99+" : String(elsewhere);
}

// ---- navigation --------------------------------------------------------------------------------

/** Shows `room` (joining it if needed) as a new history entry. */
function go(room: string): void {
  if (shown?.room !== room) history.pushState(null, "", roomPath(room));
  route();
}

/** Shows what the address says: a room (joined with the remembered nickname), or the entry page. */
function route(): void {
  const room = new URLSearchParams(location.search).get("room");
  if (room === null || !ROOM_ID.test(room)) return showEntry();
  const nickname = nicknameFor(localStorage.getItem("roomcast.nickname") ?? "");
  const session = sessions.get(room) ?? (mayEnter(nickname) ? join(room, nickname) : undefined);
  if (session) return showRoom(session);
  // A shared link, and no nickname yet: the entry page, with the room filled in, at its own
  // address, so that Back from the room returns to it.
  history.replaceState(null, "", location.pathname);
  roomInput.value = room;
  showEntry();
}
window.addEventListener("popstate", route);

// ---- the entry page ----------------------------------------------------------------------------

async function listRooms(): Promise<void> {
  // private with tokens or an API key (the server says so on the page): not for the page
  if (tokenUrl !== undefined || document.documentElement.dataset["rooms"] === "private") {
    byId("active-rooms").hidden = true;
    return;
  }
  const list = byId("room-list");
  try {
    const res = await fetch("/api/rooms");
    // private on a server with an API key: not for the page
    byId("active-rooms").hidden = !res.ok;
    if (!res.ok) return;
    const { rooms } = (await res.json()) as { rooms: { room: string; users: number }[] };
    list.replaceChildren();
    if (rooms.length === 0) list.append(el("li", "empty", t.noRooms));
    for (const { room, users } of rooms.slice(0, 50)) {
      const button = el("button", "room-pick");
      button.type = "button";
      button.append(el("span", "room-name", room), el("span", "room-count", t.people(users)));
      button.addEventListener("click", () => {
        roomInput.value = room;
        if (nickInput.value.trim()) enter();
        else nickInput.focus();
      });
      const item = el("li");
      item.append(button);
      list.append(item);
    }
  } catch {
    list.replaceChildren(el("li", "empty", t.noRooms));
  }
}

function enter(): void {
  const room = roomInput.value.trim();
  if (tokenUrl === "") return showEnterError(t.noTokenUrl);
  const nickname = nicknameFor(nickInput.value.trim());
  if (tokenUrl === undefined && (!nickname || graphemeLength(nickname) > USERNAME_MAX)) return showEnterError(t.errors.BAD_USERNAME);
  if (!ROOM_ID.test(room)) return showEnterError(t.errors.BAD_ROOM);
  showEnterError("");
  if (tokenUrl === undefined) localStorage.setItem("roomcast.nickname", nickname);
  join(room, nickname);
  go(room);
}

function showEnterError(text: string): void {
  enterError.textContent = text;
}

/**
 * A nickname is at most USERNAME_MAX characters as a person counts them (grapheme clusters, as
 * the server counts): longer input is cut, like a maxlength would, but not in the middle of an
 * input method's composition.
 */
function limitNickname(): void {
  const cut = firstGraphemes(nickInput.value, USERNAME_MAX);
  if (cut !== nickInput.value) nickInput.value = cut;
}
nickInput.addEventListener("input", (e) => {
  if (!(e as InputEvent).isComposing) limitNickname();
});
nickInput.addEventListener("compositionend", limitNickname);

byId("enter-form").addEventListener("submit", (e) => {
  e.preventDefault();
  enter();
});

// ---- the chat's controls -----------------------------------------------------------------------

byId("leave").addEventListener("click", () => shown && leave(shown));
byId("add-room").addEventListener("click", () => {
  history.pushState(null, "", location.pathname);
  roomInput.value = "";
  showEntry();
  roomInput.focus();
});
marker.addEventListener("click", () => shown?.log.scrollToNewest());

/** On a phone the rooms are a panel over the log, opened from the bar (never over the composer). */
function closeRooms(): boolean {
  if (!chatView.classList.contains("rooms-open")) return false;
  chatView.classList.remove("rooms-open");
  roomsToggle.setAttribute("aria-expanded", "false");
  return true;
}
roomsToggle.addEventListener("click", () => {
  const open = chatView.classList.toggle("rooms-open");
  roomsToggle.setAttribute("aria-expanded", String(open));
  if (open) byId("room-tabs").querySelector<HTMLElement>("[aria-current]")?.focus();
});

/**
 * Esc in the chat closes what is open, one thing per press: the rooms panel of a phone, else the
 * composer's notice, else the reader scrolled up goes back to the newest messages. It never
 * clears the text in the box.
 */
chatView.addEventListener("keydown", (e) => {
  if (e.key !== "Escape" || e.isComposing) return;
  if (closeRooms()) return roomsToggle.focus();
  if (composer.dismissNotice()) return;
  shown?.log.scrollToNewest();
});

const notifySelect = byId<HTMLSelectElement>("notify-mode");
if (!notificationsSupported()) byId("notify-control").hidden = true;
notifySelect.value = away.mode;
notifySelect.addEventListener("change", () => {
  const wanted = notifySelect.value as NotifyMode;
  void away.choose(wanted).then((mode) => {
    notifySelect.value = mode;
    byId("notify-note").textContent = mode === wanted ? "" : t.notifyBlocked;
  });
});

/** "Today" becomes "Yesterday" at midnight, also in a page that stays open. */
function relabelAtMidnight(): void {
  setTimeout(() => {
    for (const session of sessions.values()) session.log.relabelDays();
    relabelAtMidnight();
  }, untilMidnight(Date.now()) + 1000);
}
relabelAtMidnight();

// ---- start -------------------------------------------------------------------------------------

nickInput.value = localStorage.getItem("roomcast.nickname") ?? "";
// the rooms the reader is in, entered again (with tokens, with the token's name)
for (const { room, nickname } of loadRooms()) if (mayEnter(nicknameFor(nickname))) join(room, nicknameFor(nickname));
route();
