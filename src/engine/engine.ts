/**
 * The Engine carries a room's traffic between the processes of one chat: it stores and publishes
 * messages, delivers a room's events to the processes that subscribe to it, and keeps presence.
 *
 * Two implementations pass the same contract suite (test/engine/contract.ts): `memory/` for one
 * process and `redis/` for any number of processes on any number of machines sharing one Redis.
 */
import { byUsername, userKey, type ChatMessage, type HistoryData, type PresenceRef, type PresenceUser, type RoomEvent } from "../protocol.js";

/** A room's presence at one point of its presence changes. */
export interface PresenceSnapshot {
  users: PresenceUser[];
  /** Grows with every change of the room's presence; a `presence_diff` up to it is in `users`. */
  version: number;
}

/** One connection in a room's presence. */
export interface PresenceEntry {
  /** The connection (unique per process). */
  member: string;
  username: string;
  /** The user id with tokens (a token's `sub`); users are told apart by it, else by username. */
  user?: string | undefined;
}

/** A batch of one process's presence changes in one room. */
export interface PresenceChanges {
  joined: (PresenceEntry & { rejoin?: boolean })[];
  /** Members of this process that left (their names are known to the engine). */
  left: string[];
  ts: number;
}

/**
 * Signals between processes on a room's channel that are not for members: `kick` (the server API
 * removes a user from the room on every process).
 */
export type ControlEvent =
  | { event: "kick"; data: { user: string } }
  /**
   * From the engine itself, after this process's subscription to the room was lost and restored
   * (a dropped connection, a failover, a moved slot) and the messages published meanwhile were
   * replayed: notices, kicks and presence changes of the gap were not, so whoever holds members
   * refreshes what depends on them. It may also come when nothing was lost (on a Redis Cluster,
   * whenever the client library restarts its shard subscribers): a refresh, never harmful.
   */
  | { event: "resync"; data: Record<string, never> };

/** What a room's channel carries: events for members, and control signals. */
export type RoomTraffic = RoomEvent | ControlEvent;

/** Receives a room's traffic on this process, in the order the engine accepted it. */
export type RoomListener = (event: RoomTraffic, exceptMember: string | undefined) => void;

export interface MessageDraft {
  username: string;
  /** The sender's user id, with tokens. */
  user?: string | undefined;
  text: string;
  ts: number;
}

export interface HistoryQuery {
  /** Only the messages after this id; all of them that are kept. */
  since?: string | undefined;
  /** Scrollback: only messages before this id, the newest `limit` of them (`truncated`: older ones are kept). */
  before?: string | undefined;
  /** Without `since`: how many of the newest messages (before `before`, if given). */
  limit: number;
}

export interface RoomSummary {
  room: string;
  /** Distinct usernames present, cluster-wide. */
  users: number;
}

export interface ClusterStats {
  /** Live roomcast processes sharing this engine. */
  nodes: number;
  /** Open connections over all of them. */
  connections: number;
}

export interface EngineHealth {
  ok: boolean;
  reason?: string;
}

/** Thrown when the engine cannot do what was asked now (Redis unreachable): nothing was accepted. */
export class EngineUnavailableError extends Error {
  constructor(message: string, options?: { cause?: unknown }) {
    super(message, options);
    this.name = "EngineUnavailableError";
  }
}

export interface Engine {
  readonly kind: "memory" | "redis";
  /** This process's id among the chat's processes. */
  readonly nodeId: string;

  /** Connects; rejects with a readable reason when the backend cannot be reached. */
  start(): Promise<void>;
  /** Removes this process's presence entries and its node record at once, then disconnects. */
  close(): Promise<void>;

  /**
   * Assigns the message its id, appends it to the room's history and publishes it to the room's
   * subscribers, as ONE atomic step per room (for Redis: one Lua script doing XADD and PUBLISH).
   * Without that, two processes publishing at once could store in one order and deliver in
   * another, and neither the order guarantee nor recovery with `since` would hold. Ids increase in
   * the order in which subscribers receive the messages.
   * Rejects with EngineUnavailableError when the message was not accepted.
   */
  publishMessage(room: string, draft: MessageDraft): Promise<ChatMessage>;

  /**
   * Removes a message from the history and publishes `delete {id}` to the room, in one atomic
   * step. A client recovering with `since` = that id still gets exactly what followed it.
   * Resolves false when the room's history has no such message.
   */
  deleteMessage(room: string, id: string): Promise<boolean>;

  /**
   * Publishes a notice (typing) or a control signal (kick) to the room's subscribers without
   * storing it, in the same order as the room's messages. `exceptMember` is passed on to
   * listeners (typing is not shown to its author). Delivered at most once.
   */
  publishNotice(room: string, event: RoomTraffic, exceptMember?: string): Promise<void>;

  /**
   * Starts delivering the room's events to `listener`; resolves once the subscription is active,
   * so every event accepted after that reaches the listener. Each message is delivered at most
   * once and in id order. When the backend connection is lost and comes back, the engine replays
   * from history the messages that were published meanwhile, before any newer one.
   */
  subscribe(room: string, listener: RoomListener): Promise<void>;
  /** Stops delivering the room's events to this process. */
  unsubscribe(room: string): Promise<void>;
  /**
   * The newest message id of a subscribed room that this process has passed to its listener (or
   * that was in the history when the subscription began): a history read may be ahead of it.
   */
  delivered(room: string): string | undefined;

  /**
   * Without `since`: the newest `limit` messages (before `before`, if given), oldest first;
   * `truncated` tells whether older ones are kept. With `since`: every kept message after it,
   * oldest first; `truncated` is true when `since` is not in the history any more (trimmed, or the
   * history was lost), so a client is never told it recovered when it could not; a deleted
   * message still counts as in the history. `since: "0-0"` (FROM_START): every kept message,
   * `truncated` when the room's first messages are no longer kept.
   */
  history(room: string, query: HistoryQuery): Promise<HistoryData>;

  /**
   * Records a member (one connection) in the room's presence, cluster-wide. With `announce`, the
   * room gets a `join` notice carrying the new presence version, in the same atomic step.
   * Resolves with that version.
   */
  addPresence(room: string, entry: PresenceEntry, announce?: { ts: number; rejoin: boolean }): Promise<number>;
  /** With `announce`, the room gets a `broadcast_quit` notice with the new version, atomically. */
  removePresence(room: string, member: string, announce?: { ts: number }): Promise<void>;
  /**
   * Applies a batch of presence changes and publishes them to the room as ONE `presence_diff`
   * notice carrying the room's new presence version, in one atomic step: every snapshot is either
   * before the whole batch (its version is lower) or after it. For big rooms, where a notice per
   * join sent to every member would cost O(members²) deliveries in a join storm.
   */
  changePresence(room: string, changes: PresenceChanges): Promise<void>;
  /**
   * Who is in the room on every live process; a username connected several times is listed once.
   * Entries of a process that died vanish within the node TTL (heartbeat with expiry).
   */
  presence(room: string): Promise<PresenceUser[]>;
  /** `presence` with the room's presence version. */
  presenceSnapshot(room: string): Promise<PresenceSnapshot>;
  /** Rooms with at least one member, cluster-wide. */
  rooms(): Promise<RoomSummary[]>;

  /** Refuses the user's joins to the room until `untilMs` (epoch ms), cluster-wide. */
  ban(room: string, user: string, untilMs: number): Promise<void>;
  /** Whether the user is banned from the room now. */
  banned(room: string, user: string): Promise<boolean>;

  /** This process's open connections, as reported in `stats()`. */
  setConnectionCount(count: number): void;
  stats(): Promise<ClusterStats>;

  health(): EngineHealth;
  /** Called when health changes (Redis lost or back). */
  onHealthChange(listener: (health: EngineHealth) => void): void;
}

/**
 * Groups presence entries (one per connection) into users with their connection counts: by user
 * id with tokens, by username without. A user listed under several names (a token renamed them)
 * shows the last one seen.
 */
export function countUsers(entries: Iterable<{ username: string; user?: string | undefined }>): PresenceUser[] {
  const users = new Map<string, PresenceUser>();
  for (const entry of entries) {
    const key = userKey(entry);
    const known = users.get(key);
    if (known) {
      known.connections++;
      known.username = entry.username;
    } else {
      users.set(key, entry.user === undefined ? { username: entry.username, connections: 1 } : { username: entry.username, connections: 1, user: entry.user });
    }
  }
  return [...users.values()].sort(byUsername);
}

/** What members see of a presence entry: the name, and the user id where there is one. */
export function presenceRef(entry: { username: string; user?: string | undefined }): PresenceRef {
  return entry.user === undefined ? { username: entry.username } : { username: entry.username, user: entry.user };
}
