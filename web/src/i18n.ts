/** Interface text in English and Chinese, chosen from the browser's language. */
import type { ErrorCode } from "../../src/protocol.js";

const en = {
  title: "roomcast",
  tagline: "Pick a nickname and a room, and talk.",
  nickname: "Nickname",
  room: "Room",
  enter: "Enter",
  activeRooms: "Active rooms",
  noRooms: "No one is chatting yet: start a room.",
  people: (n: number) => (n === 1 ? "1 person" : `${n} people`),
  online: "Online",
  message: "Message",
  send: "Send",
  leave: "Leave",
  connected: "Connected",
  connecting: "Connecting…",
  reconnecting: "Reconnecting…",
  offline: "Offline",
  joined: (name: string) => `${name} joined`,
  left: (name: string) => `${name} left`,
  joinedMany: (n: number) => `${n} people joined`,
  leftMany: (n: number) => `${n} people left`,
  typing1: (name: string) => `${name} is typing…`,
  typingN: (names: string[]) => `${names.join(", ")} are typing…`,
  newMessages: "New messages ↓",
  historyGap: "Some older messages could not be recovered.",
  you: "you",
  errors: {
    BAD_ROOM: "That room name is not valid: use letters, digits and _ - . :",
    BAD_USERNAME: "That nickname is not valid: 1 to 32 characters.",
    BAD_TEXT: "That message cannot be sent: it is empty or too long.",
    BAD_PAYLOAD: "The server did not understand that.",
    NOT_JOINED: "Not in the room yet: wait a moment.",
    ALREADY_JOINED: "Already in the room.",
    RATE_LIMITED: "You are sending too fast: wait a moment.",
    UNAUTHORIZED: "Not allowed.",
    UNAVAILABLE: "The chat is unavailable right now: your message was not sent.",
  } satisfies Record<ErrorCode, string>,
  notSent: "Not sent: no connection. Your text is kept.",
};

const zh: typeof en = {
  title: "roomcast",
  tagline: "选一个昵称和房间,开始聊天。",
  nickname: "昵称",
  room: "房间",
  enter: "进入",
  activeRooms: "活跃房间",
  noRooms: "还没有人在聊天:开一个房间吧。",
  people: (n) => `${n} 人`,
  online: "在线",
  message: "消息",
  send: "发送",
  leave: "离开",
  connected: "已连接",
  connecting: "正在连接…",
  reconnecting: "正在重新连接…",
  offline: "离线",
  joined: (name) => `${name} 加入了聊天室`,
  left: (name) => `${name} 离开了聊天室`,
  joinedMany: (n) => `${n} 人加入了聊天室`,
  leftMany: (n) => `${n} 人离开了聊天室`,
  typing1: (name) => `${name} 正在输入…`,
  typingN: (names) => `${names.join("、")} 正在输入…`,
  newMessages: "有新消息 ↓",
  historyGap: "部分较早的消息无法恢复。",
  you: "我",
  errors: {
    BAD_ROOM: "房间名无效:只能用字母、数字和 _ - . :",
    BAD_USERNAME: "昵称无效:1 到 32 个字符。",
    BAD_TEXT: "消息无法发送:内容为空或太长。",
    BAD_PAYLOAD: "服务器无法理解该请求。",
    NOT_JOINED: "还没进入房间:请稍等。",
    ALREADY_JOINED: "已经在房间里了。",
    RATE_LIMITED: "发送太快了:请稍等。",
    UNAUTHORIZED: "没有权限。",
    UNAVAILABLE: "聊天服务暂时不可用:消息没有发出。",
  },
  notSent: "未发送:没有连接。文字已保留。",
};

export type Strings = typeof en;

export function pickStrings(languages: readonly string[]): { lang: "en" | "zh"; t: Strings } {
  const first = languages.find((l) => /^(zh|en)\b/i.test(l)) ?? "en";
  return /^zh/i.test(first) ? { lang: "zh", t: zh } : { lang: "en", t: en };
}
