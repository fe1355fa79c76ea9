/**
 * The wire protocol of SPEC.md: the events a client sends, the `message` events it receives, the
 * identifiers' rules and the error codes. Server and web client share this file, so there is one
 * source of truth for what crosses the wire; the zod schemas built on it are protocol-schemas.ts
 * (kept apart so that the web bundle does not carry zod).
 */

export const ERROR_CODES = [
  "BAD_ROOM",
  "BAD_USERNAME",
  "BAD_TEXT",
  "BAD_PAYLOAD",
  "NOT_JOINED",
  "ALREADY_JOINED",
  "RATE_LIMITED",
  "UNAUTHORIZED",
  "UNAVAILABLE",
  "SLOW_CONSUMER",
  "FORBIDDEN",
  "TOKEN_EXPIRED",
  "KICKED",
  "BANNED",
] as const;
export type ErrorCode = (typeof ERROR_CODES)[number];

export interface WireError {
  code: ErrorCode;
  message: string;
}

/**
 * The answer to any client event that carries an acknowledgement callback. `say` is answered with
 * its message's `id`; `history` (scrollback) with `messages` and `more`.
 */
export type Ack = { ok: true; id?: string; messages?: ChatMessage[]; more?: boolean } | { ok: false; error: WireError };

// ---- identifiers -------------------------------------------------------------------------------

/**
 * 1–64 characters, each a letter or digit of any script (with its combining marks: Devanagari's
 * vowel signs are marks) or one of `_ - . :`: `tea`, `茶室`, `नमस्ते`. Redis keys and nginx take
 * UTF-8; a room id is used in its NFC form (see `roomIdSchema`), so one name is one room.
 */
export const ROOM_ID = /^[\p{L}\p{M}\p{Nd}_\-.:]{1,64}$/u;

/** The room id in its one form (NFC), or undefined when it is not a room id. */
export function roomId(raw: unknown): string | undefined {
  if (typeof raw !== "string") return undefined;
  const id = raw.normalize("NFC");
  return ROOM_ID.test(id) ? id : undefined;
}

/** `"<integer>-<integer>"`, the form of a Redis stream id (each part also at most 2^64 − 1: see `canonicalId`). */
export const MESSAGE_ID = /^\d{1,20}-\d{1,20}$/;

const U64_MAX = "18446744073709551615";

/**
 * A message id in its one spelling (no leading zeros), or undefined when it is not an id: each
 * part of a Redis stream id is an unsigned 64-bit integer, so `99999999999999999999-0` has the
 * shape of an id but is none (Redis refuses it). Ids from the server are already canonical; a
 * client's `since` goes through this at the boundary, so that every later comparison is exact.
 */
export function canonicalId(id: string): string | undefined {
  if (!MESSAGE_ID.test(id)) return undefined;
  const dash = id.indexOf("-");
  const ms = stripZeros(id.slice(0, dash));
  const seq = stripZeros(id.slice(dash + 1));
  return fitsU64(ms) && fitsU64(seq) ? `${ms}-${seq}` : undefined;
}

/**
 * `since` for a client that has seen nothing: every kept message, with `truncated` true only when
 * the room's first messages are no longer kept.
 */
export const FROM_START = "0-0";

/** The largest id there is: nothing can follow it. */
export const MAX_ID = `${U64_MAX}-${U64_MAX}`;

function stripZeros(digits: string): string {
  const s = digits.replace(/^0+/, "");
  return s === "" ? "0" : s;
}

function fitsU64(digits: string): boolean {
  return digits.length < U64_MAX.length || (digits.length === U64_MAX.length && digits <= U64_MAX);
}

/** A name is at most this many characters, counted as people see them (grapheme clusters). */
export const USERNAME_MAX = 32;

/**
 * Characters that never belong in a name or a message: C0 and C1 controls (but tab, line feed and
 * carriage return in message text), and the bidirectional overrides that make text display in an
 * order other than the one it was written in.
 */
// eslint-disable-next-line no-control-regex
export const CONTROL_IN_NAME = /[\u0000-\u001f\u007f-\u009f\u202a-\u202e\u2066-\u2069]/;
// eslint-disable-next-line no-control-regex
export const CONTROL_IN_TEXT = /[\u0000-\u0008\u000b\u000c\u000e-\u001f\u007f-\u009f\u202a-\u202e\u2066-\u2069]/;

/**
 * A lone UTF-16 surrogate: not a character. JSON carries it, but Redis stores UTF-8, where it
 * becomes U+FFFD, so a text holding one would read differently live and from history.
 */
export const LONE_SURROGATE = /\p{Surrogate}/u;

/**
 * Text made only of white space and characters that are never seen (zero-width spaces and
 * joiners, word joiners, byte order marks, variation selectors…): nothing to show.
 */
export const INVISIBLE_ONLY = /^[\p{White_Space}\p{Default_Ignorable_Code_Point}]*$/u;

/**
 * Length as people count it: grapheme clusters (`Intl.Segmenter`), so a family emoji made of 7
 * code points is one character, as is a letter with a combining accent.
 */
export function graphemeLength(text: string): number {
  let n = 0;
  for (const _ of graphemes.segment(text)) n++;
  return n;
}
const graphemes = new Intl.Segmenter(undefined, { granularity: "grapheme" });

/** Length in code points, so that one emoji or one CJK character counts as one character. */
export function charLength(text: string): number {
  let n = 0;
  for (let i = 0; i < text.length; i++) {
    const c = text.charCodeAt(i);
    // a high surrogate followed by a low one is one code point
    if (c >= 0xd800 && c <= 0xdbff && i + 1 < text.length) {
      const d = text.charCodeAt(i + 1);
      if (d >= 0xdc00 && d <= 0xdfff) i++;
    }
    n++;
  }
  return n;
}

// ---- client → server payloads ----------------------------------------------------------------

export interface JoinRequest {
  /** Ignored with tokens: the name members see is the token's. */
  username?: string;
  since?: string;
}
export interface SayRequest {
  text: string;
}
export interface TypingRequest {
  typing: boolean;
}
/** Scrollback: the `limit` messages before `before`, oldest first (answered in the ack). */
export interface HistoryRequest {
  before: string;
  limit?: number;
}

// ---- server → client `message` events ----------------------------------------------------------

export interface ChatMessage {
  id: string;
  username: string;
  text: string;
  ts: number;
  /** The sender's user id (a token's `sub`); only with tokens, where names need not be unique. */
  user?: string;
}

/**
 * One user in a room's presence. Users are told apart by `user` with tokens (two people may share
 * a name) and by `username` without (`user` is then left out).
 */
export interface PresenceUser {
  username: string;
  connections: number;
  user?: string;
}

/** Who joined or left, in a `presence_diff`: one entry per connection. */
export interface PresenceRef {
  username: string;
  user?: string;
  /** A reconnect that recovered with `since`: the same person coming back, not a new arrival. */
  rejoin?: boolean;
}

/** The key that tells users apart (see PresenceUser). */
export const userKey = (u: { username: string; user?: string | undefined }): string => u.user ?? u.username;

/** The order of `presence` lists: by username, then user id. */
export const byUsername = (a: PresenceUser, b: PresenceUser): number =>
  a.username < b.username ? -1 : a.username > b.username ? 1 : userKey(a) < userKey(b) ? -1 : userKey(a) > userKey(b) ? 1 : 0;

/**
 * In big rooms (see `--big-room`), the joins and quits of the last ~100 ms on one process, as one
 * event instead of a `join` or `broadcast_quit` each: an entry per connection that joined or
 * left; also how a process that died is taken out of presence (its members in `left`, sent once
 * by the process that noticed). `version` orders presence changes: a client that got `presence`
 * applies the diffs (and versioned `join`/`broadcast_quit` notices) that follow it with a higher
 * version, and ignores the others.
 */
export interface PresenceDiff {
  joined: PresenceRef[];
  left: PresenceRef[];
  version: number;
  ts: number;
}

/**
 * `version`: the room's presence version after this join or quit (see PresenceDiff). `rejoin`: a
 * reconnect that recovered with `since` (the person never left as far as the room is concerned:
 * pages update who is online without a "joined" line).
 */
export interface JoinNotice {
  username: string;
  ts: number;
  user?: string;
  version?: number;
  rejoin?: boolean;
}
export interface QuitNotice {
  username: string;
  ts: number;
  user?: string;
  version?: number;
}

export interface HistoryData {
  messages: ChatMessage[];
  truncated: boolean;
}

/** Events that travel through a room's channel to every subscribed process. */
export type RoomEvent =
  | { event: "join"; data: JoinNotice }
  | { event: "broadcast_say"; data: ChatMessage }
  | { event: "broadcast_quit"; data: QuitNotice }
  | { event: "typing"; data: { username: string; typing: boolean; user?: string } }
  | { event: "presence_diff"; data: PresenceDiff }
  /** A message removed by the application (server API): pages take it off the log. */
  | { event: "delete"; data: { id: string } };

/** Everything the server sends, always as the Socket.IO event `message`. */
export type ServerMessage =
  | RoomEvent
  | { event: "history"; data: HistoryData }
  /** `version`: the room's presence version; a `presence_diff` with a version up to it is already in `users`. */
  | { event: "presence"; data: { users: PresenceUser[]; version?: number } }
  | { event: "error"; data: WireError };

export const SERVER_EVENT = "message";
