/**
 * The Engine carries a room's traffic between the processes of one chat: it stores and publishes
 * messages, delivers a room's events to the processes that subscribe to it, and keeps presence.
 *
 * Two implementations pass the same contract suite (test/engine/contract.ts): `memory/` for one
 * process and `redis/` for any number of processes on any number of machines sharing one Redis.
 */
import { byUsername, type ChatMessage, type HistoryData, type PresenceUser, type RoomEvent } from "../protocol.js";

/** A room's presence at one point of its presence changes. */
export interface PresenceSnapshot {
  users: PresenceUser[];
  /** Grows with every change of the room's presence; a `presence_diff` up to it is in `users`. */
  version: number;
}

/** A batch of one process's presence changes in one room. */
export interface PresenceChanges {
  joined: { member: string; username: string }[];
  /** Members of this process that left (their usernames are known to the engine). */
  left: string[];
  ts: number;
}

/** Receives a room's events on this process, in the order the engine accepted them. */
export type RoomListener = (event: RoomEvent, exceptMember: string | undefined) => void;

export interface MessageDraft {
  username: string;
  text: string;
  ts: number;
}

export interface HistoryQuery {
  /** Only the messages after this id; all of them that are kept. */
  since?: string | undefined;
  /** Without `since`: how many of the newest messages. */
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
   * Publishes a notice (join, quit, typing) to the room's subscribers without storing it, in the
   * same order as the room's messages. `exceptMember` is passed on to listeners (typing is not
   * shown to its author). Delivered at most once.
   */
  publishNotice(room: string, event: RoomEvent, exceptMember?: string): Promise<void>;

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
   * Without `since`: the newest `limit` messages, oldest first; `truncated` tells whether older
   * ones are kept. With `since`: every kept message after it, oldest first; `truncated` is true
   * when `since` is not in the history any more (trimmed, or the history was lost), so a client is
   * never told it recovered when it could not.
   */
  history(room: string, query: HistoryQuery): Promise<HistoryData>;

  /** Records a member (one connection) in the room's presence, cluster-wide. */
  addPresence(room: string, member: string, username: string): Promise<void>;
  removePresence(room: string, member: string): Promise<void>;
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

  /** This process's open connections, as reported in `stats()`. */
  setConnectionCount(count: number): void;
  stats(): Promise<ClusterStats>;

  health(): EngineHealth;
  /** Called when health changes (Redis lost or back). */
  onHealthChange(listener: (health: EngineHealth) => void): void;
}

/** Groups presence entries (one per connection) into users with their connection counts. */
export function countUsers(usernames: Iterable<string>): PresenceUser[] {
  const counts = new Map<string, number>();
  for (const name of usernames) counts.set(name, (counts.get(name) ?? 0) + 1);
  return [...counts]
    .map(([username, connections]) => ({ username, connections }))
    .sort(byUsername);
}
