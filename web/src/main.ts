/**
 * The roomcast web page. Every piece of user text reaches the page through textContent (never
 * innerHTML), and the page's Content-Security-Policy forbids inline script besides.
 */
import { charLength, ROOM_ID, USERNAME_MAX, type ChatMessage, type ErrorCode, type PresenceUser } from "../../src/protocol.js";
import { ChatClient, type ConnectionState } from "./chat-client.js";
import { pickStrings } from "./i18n.js";

const { lang, t } = pickStrings(navigator.languages?.length ? navigator.languages : [navigator.language]);
document.documentElement.lang = lang === "zh" ? "zh-CN" : "en";
const maxText = Number(document.documentElement.dataset["maxTextLength"] ?? "2000");

function $<T extends HTMLElement = HTMLElement>(id: string): T {
  const el = document.getElementById(id);
  if (!el) throw new Error(`#${id} is missing`);
  return el as T;
}
function el<K extends keyof HTMLElementTagNameMap>(tag: K, className?: string, text?: string): HTMLElementTagNameMap[K] {
  const node = document.createElement(tag);
  if (className) node.className = className;
  if (text !== undefined) node.textContent = text;
  return node;
}

// Static interface text.
for (const node of document.querySelectorAll<HTMLElement>("[data-t]")) {
  const value = t[node.dataset["t"] as keyof typeof t];
  if (typeof value === "string") node.textContent = value;
}
for (const node of document.querySelectorAll<HTMLElement>("[data-t-label]")) {
  const value = t[node.dataset["tLabel"] as keyof typeof t];
  if (typeof value === "string") node.setAttribute("aria-label", value);
}

const enterView = $("enter-view");
const chatView = $("chat-view");
const nickInput = $<HTMLInputElement>("nickname");
const roomInput = $<HTMLInputElement>("room");
const enterError = $("enter-error");
const log = $("log");
const marker = $<HTMLButtonElement>("new-marker");
const textBox = $<HTMLTextAreaElement>("text");
const counter = $("counter");
const notice = $("notice");
const typingLine = $("typing");
const stateBadge = $("conn-state");

let client: ChatClient | undefined;
const timeFormat = new Intl.DateTimeFormat(lang === "zh" ? "zh-CN" : undefined, { hour: "2-digit", minute: "2-digit" });

// ---- entering ----------------------------------------------------------------------------------

const params = new URLSearchParams(location.search);
nickInput.value = localStorage.getItem("roomcast.nickname") ?? "";
roomInput.value = params.get("room") ?? "";

async function listRooms(): Promise<void> {
  const list = $("room-list");
  try {
    const res = await fetch("/api/rooms");
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
  const nickname = nickInput.value.trim();
  const room = roomInput.value.trim();
  if (!nickname || charLength(nickname) > USERNAME_MAX) return showEnterError(t.errors.BAD_USERNAME);
  if (!ROOM_ID.test(room)) return showEnterError(t.errors.BAD_ROOM);
  localStorage.setItem("roomcast.nickname", nickname);
  history.replaceState(null, "", `?room=${encodeURIComponent(room)}`);
  document.title = `${room} · roomcast`;
  $("room-title").textContent = room;
  enterView.hidden = true;
  chatView.hidden = false;
  textBox.focus();
  client = new ChatClient(room, nickname, {
    state: showState,
    messages: (messages) => messages.forEach((m) => addMessage(m, nickname)),
    notice: (kind, name, ts) => addNotice(kind === "join" ? t.joined(name) : t.left(name), ts),
    crowd: (kind, count, ts) => addNotice(kind === "join" ? t.joinedMany(count) : t.leftMany(count), ts),
    presence: showPresence,
    typing: (name, typing) => showTyping(name, typing),
    gap: () => addNotice(t.historyGap, Date.now()),
    error: (code, message) => {
      if (code === "BAD_ROOM" || code === "BAD_USERNAME") {
        leave();
        showEnterError(t.errors[code]);
      } else showNotice(code, message);
    },
  });
}

function showEnterError(text: string): void {
  enterError.textContent = text;
}

function leave(): void {
  client?.close();
  client = undefined;
  log.replaceChildren();
  $("online").replaceChildren();
  chatView.hidden = true;
  enterView.hidden = false;
  history.replaceState(null, "", location.pathname);
  document.title = "roomcast";
  void listRooms();
}

$("enter-form").addEventListener("submit", (e) => {
  e.preventDefault();
  enter();
});
$("leave").addEventListener("click", leave);

// ---- the conversation --------------------------------------------------------------------------

/** Near the bottom, new lines scroll into view; scrolled up, a marker says there is more. */
function atBottom(): boolean {
  return log.scrollHeight - log.scrollTop - log.clientHeight < 40;
}
function append(line: HTMLElement): void {
  const follow = atBottom();
  log.append(line);
  if (follow) log.scrollTop = log.scrollHeight;
  else marker.hidden = false;
}
marker.addEventListener("click", () => {
  log.scrollTop = log.scrollHeight;
  marker.hidden = true;
});
log.addEventListener("scroll", () => {
  if (atBottom()) marker.hidden = true;
});

function addMessage(m: ChatMessage, me: string): void {
  const mine = m.username === me;
  const line = el("li", mine ? "message mine" : "message");
  line.dataset["id"] = m.id;
  const meta = el("div", "meta");
  meta.append(el("span", "author", mine ? `${m.username} (${t.you})` : m.username));
  const time = el("time", "time", timeFormat.format(m.ts));
  time.dateTime = new Date(m.ts).toISOString();
  meta.append(time);
  line.append(meta, el("div", "text", m.text));
  append(line);
}

function addNotice(text: string, ts: number): void {
  const line = el("li", "notice", text);
  line.title = timeFormat.format(ts);
  append(line);
}

function showPresence(users: PresenceUser[]): void {
  const list = $("online");
  list.replaceChildren(
    ...users.map((u) => el("li", undefined, u.connections > 1 ? `${u.username} ×${u.connections}` : u.username)),
  );
  $("online-count").textContent = String(users.length);
}

const typingNow = new Map<string, ReturnType<typeof setTimeout>>();
function showTyping(name: string, typing: boolean): void {
  clearTimeout(typingNow.get(name));
  if (typing) typingNow.set(name, setTimeout(() => showTyping(name, false), 6000));
  else typingNow.delete(name);
  const names = [...typingNow.keys()];
  typingLine.textContent = names.length === 0 ? "" : names.length === 1 ? t.typing1(names[0]!) : t.typingN(names);
}

function showState(state: ConnectionState): void {
  stateBadge.textContent = t[state];
  stateBadge.dataset["state"] = state;
}

let noticeTimer: ReturnType<typeof setTimeout> | undefined;
function showNotice(code: ErrorCode, fallback: string): void {
  notice.textContent = t.errors[code] ?? fallback;
  clearTimeout(noticeTimer);
  noticeTimer = setTimeout(() => (notice.textContent = ""), 6000);
}

// ---- composing ---------------------------------------------------------------------------------

function updateCounter(): void {
  const n = charLength(textBox.value);
  counter.textContent = `${n}/${maxText}`;
  counter.classList.toggle("over", n > maxText);
}

let typingSent = false;
let typingIdle: ReturnType<typeof setTimeout> | undefined;
function stopTyping(): void {
  clearTimeout(typingIdle);
  if (typingSent) client?.typing(false);
  typingSent = false;
}

textBox.addEventListener("input", () => {
  updateCounter();
  if (!typingSent && textBox.value.trim()) {
    client?.typing(true);
    typingSent = true;
  }
  clearTimeout(typingIdle);
  typingIdle = setTimeout(stopTyping, 3000);
});
textBox.addEventListener("keydown", (e) => {
  if (e.key === "Enter" && !e.shiftKey && !e.isComposing) {
    e.preventDefault();
    void send();
  }
});
$("composer").addEventListener("submit", (e) => {
  e.preventDefault();
  void send();
});

async function send(): Promise<void> {
  const text = textBox.value;
  if (!client || !text.trim()) return;
  if (charLength(text) > maxText) return showNotice("BAD_TEXT", "");
  stopTyping();
  const ack = await client.say(text);
  if (ack.ok) {
    if (textBox.value === text) textBox.value = "";
    updateCounter();
    notice.textContent = "";
  } else {
    showNotice(ack.error.code, ack.error.message); // the text stays in the box
  }
}

updateCounter();
if (roomInput.value && nickInput.value) enter();
else {
  void listRooms();
  (nickInput.value ? roomInput : nickInput).focus();
}
