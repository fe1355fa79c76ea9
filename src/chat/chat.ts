/**
 * The chat as this process sees it: which local members are in which room, what they may do, and
 * when this process needs a room's events. It decides; the engine stores and carries; the server
 * speaks the wire protocol through the MemberSink.
 */
import {
  EngineUnavailableError,
  type Engine,
  type PresenceSnapshot,
  type RoomListener,
} from "../engine/engine.js";
import { userKey, type ChatMessage, type HistoryData, type RoomEvent, type ServerMessage, type WireError } from "../protocol.js";
import { ChatError } from "./errors.js";
import { compareIds } from "./ids.js";
import { SharedQuery } from "./shared-query.js";

/** How the chat reaches the connections; implemented by server/socket.ts over Socket.IO rooms. */
export interface MemberSink {
  /** To every member that has entered the room on this process, but `exceptMember`. */
  broadcast(room: string, event: RoomEvent, exceptMember: string | undefined): void;
  /** To one member. */
  send(member: string, message: ServerMessage): void;
  /** From now on `broadcast` reaches this member. */
  enter(member: string, room: string): void;
  /**
   * Tells the member why and closes its connection: a Socket.IO disconnect (the client does not
   * come back by itself: kicked), or with `reconnect` a transport close (it does: token expired).
   */
  close(member: string, error: WireError, reconnect: boolean): void;
}

export interface ChatOptions {
  /** Messages sent on join without `since`. @default 50 */
  historyOnJoin: number;
  /**
   * Rooms of at least this many connections (cluster-wide, as last seen here) announce joins and
   * quits as one `presence_diff` per `presenceBatchMs` from each process, instead of a `join` or
   * `broadcast_quit` to every member for each: in a join storm of N clients that is O(N²)
   * deliveries (3000 joins: 4.5 million) against a few hundred diffs. 0: never. @default 100
   */
  bigRoom: number;
  /** @default 100 */
  presenceBatchMs: number;
}

/** A big room's presence changes on this process that wait for the next `presence_diff`. */
interface PresenceBatch {
  joined: { member: string; username: string; user?: string | undefined; rejoin?: boolean }[];
  left: string[];
  done: Promise<void>;
  settle: (err?: unknown) => void;
}

export interface Member {
  readonly id: string;
  readonly room: string;
  /** The name members see. */
  readonly username: string;
  /** The user id with tokens (a token's `sub`); without, users are their usernames. */
  readonly user?: string | undefined;
}

/** A room with members on this process. */
interface LocalRoom {
  /** Resolves when this process receives the room's events. */
  subscribed: Promise<void>;
  /** Members that have entered. */
  members: Map<string, Member>;
  /** Members between `join` and entering: events that arrive meanwhile wait here for them. */
  joining: Map<string, RoomEvent[]>;
  /** Who those joining members are (a kick also stops a join under way). */
  joiningMembers: Map<string, Member>;
  /** Per-member except lists of the waiting events (typing is not shown to its author). */
  waitingExcept: Map<RoomEvent, string | undefined>;
  /** The room's presence, and its newest messages, read once for all the members joining at once. */
  presence: SharedQuery<PresenceSnapshot>;
  recent: SharedQuery<HistoryData>;
  /** Joins waiting for the room's channel to deliver a message id (see `caughtUp`). */
  catchUp: Set<{ id: string; done: () => void }>;
  /** Connections in the room cluster-wide, as last seen: from snapshots, notices and diffs. */
  size: number;
  batch: PresenceBatch | undefined;
  lastFlush: number;
}

/** The longest a join waits for the room's channel to catch up with the history it read. */
const CATCH_UP_MS = 2000;

export class Chat {
  private readonly rooms = new Map<string, LocalRoom>();

  constructor(
    private readonly engine: Engine,
    private readonly sink: MemberSink,
    private readonly options: ChatOptions,
  ) {}

  /** Rooms with members on this process. */
  get localRoomCount(): number {
    return this.rooms.size;
  }

  /**
   * Joins a member to its room: records presence, announces the join to the room, then sends the
   * member its history (all it missed after `since`, if given) and the room's presence, followed
   * by every room event that arrived meanwhile, each message exactly once and in id order.
   */
  async join(member: Member, since: string | undefined): Promise<void> {
    const room = this.acquire(member.room);
    room.joining.set(member.id, []);
    room.joiningMembers.set(member.id, member);
    let present = false;
    try {
      if (await this.engine.banned(member.room, userKey(member))) throw new ChatError("BANNED", "you are banned from this room for now");
      await room.subscribed;
      // The history first: what can still fail here must leave no trace, no presence entry and no
      // notice. (Events of the room that arrive meanwhile wait in `joining`.)
      const history = await (since === undefined ? room.recent.get() : this.engine.history(member.room, { since, limit: this.options.historyOnJoin }));
      // A join with `since` is a reconnect: the room sees the person come back, not arrive.
      const rejoin = since !== undefined;
      const entry = { member: member.id, username: member.username, user: member.user };
      /** The version of the joiner's own `join` notice: it gets that one although the snapshot holds it. */
      let own: number | undefined;
      if (this.isBig(room)) {
        await this.batchPresence(member.room, room, { joined: { ...entry, rejoin } });
      } else {
        own = await this.engine.addPresence(member.room, entry, { ts: Date.now(), rejoin });
      }
      present = true;
      const snapshot = await room.presence.get();
      this.sink.send(member.id, { event: "history", data: history });
      this.sink.send(member.id, { event: "presence", data: { users: snapshot.users, version: snapshot.version } });
      // Everything this member has now is up to the newest message of its history.
      const newestInHistory = history.messages.at(-1)?.id;
      let seen = newestInHistory ?? since;
      const sendWaiting = () => {
        for (const event of room.joining.get(member.id) ?? []) {
          if (event.event === "broadcast_say") {
            if (seen !== undefined && compareIds(event.data.id, seen) <= 0) continue;
            seen = event.data.id;
          } else if (event.event === "presence_diff" || event.event === "join" || event.event === "broadcast_quit") {
            const version = event.data.version ?? Infinity;
            if (version <= snapshot.version && version !== own) continue; // already in the snapshot
          }
          if (room.waitingExcept.get(event) === member.id) continue;
          this.sink.send(member.id, event);
        }
        room.joining.set(member.id, []);
      };
      sendWaiting();
      // The history was read on another connection than the one the room's channel arrives on:
      // its newest messages may still be on their way to this process. Entering the member before
      // they arrive would deliver them a second time (measured: 14 % of joins into a room taking
      // 3,600 messages/s), so it waits for them here, where they are dropped as already sent.
      if (newestInHistory !== undefined) {
        await this.caughtUp(member.room, room, newestInHistory);
        sendWaiting();
      }
      room.joining.delete(member.id);
      room.joiningMembers.delete(member.id);
      this.pruneWaiting(room);
      room.members.set(member.id, member);
      this.sink.enter(member.id, member.room);
    } catch (err) {
      room.joining.delete(member.id);
      room.joiningMembers.delete(member.id);
      this.pruneWaiting(room);
      if (present) await this.removePresence(member.room, room, member.id).catch(() => {});
      this.release(member.room, room);
      throw unavailable(err);
    }
  }

  /** Publishes a message to the member's room; resolves with it once the room has it. */
  async say(member: Member, text: string): Promise<ChatMessage> {
    try {
      return await this.engine.publishMessage(member.room, { username: member.username, user: member.user, text, ts: Date.now() });
    } catch (err) {
      throw unavailable(err);
    }
  }

  /** A message from the application (server API): stored and delivered like any other. */
  async post(room: string, username: string, text: string): Promise<ChatMessage> {
    try {
      return await this.engine.publishMessage(room, { username, text, ts: Date.now() });
    } catch (err) {
      throw unavailable(err);
    }
  }

  /** Removes a message from the room's history and from every member's view; false: no such message. */
  async deleteMessage(room: string, id: string): Promise<boolean> {
    try {
      return await this.engine.deleteMessage(room, id);
    } catch (err) {
      throw unavailable(err);
    }
  }

  /**
   * Closes every connection of the user in the room, on every process (`kick` travels on the
   * room's channel); with `banSeconds`, its joins are refused with BANNED until then.
   */
  async kick(room: string, user: string, banSeconds: number | undefined): Promise<void> {
    try {
      if (banSeconds !== undefined && banSeconds > 0) await this.engine.ban(room, user, Date.now() + banSeconds * 1000);
      await this.engine.publishNotice(room, { event: "kick", data: { user } });
    } catch (err) {
      throw unavailable(err);
    }
  }

  /** Scrollback: the `limit` messages before `before`, oldest first; `more`: older ones are kept. */
  async older(room: string, before: string, limit: number): Promise<{ messages: ChatMessage[]; more: boolean }> {
    try {
      const { messages, truncated } = await this.engine.history(room, { before, limit });
      return { messages, more: truncated };
    } catch (err) {
      throw unavailable(err);
    }
  }

  /** Tells the other members of the room that this member is (or stopped) typing. */
  async typing(member: Member, typing: boolean): Promise<void> {
    const data = member.user === undefined ? { username: member.username, typing } : { username: member.username, user: member.user, typing };
    try {
      await this.engine.publishNotice(member.room, { event: "typing", data }, member.id);
    } catch (err) {
      throw unavailable(err);
    }
  }

  /** A joined member disconnected: announce the quit and forget it. Never throws. */
  async leave(member: Member): Promise<void> {
    const room = this.rooms.get(member.room);
    room?.members.delete(member.id);
    if (room && this.isBig(room)) {
      // the quit goes out in the room's next presence_diff; failed (Redis down): retried by the engine
      await this.batchPresence(member.room, room, { left: member.id }).catch(() => {});
    } else {
      // failed (Redis down): the engine removes the entry when Redis is back, silently
      await this.engine.removePresence(member.room, member.id, { ts: Date.now() }).catch(() => {});
    }
    if (room) this.release(member.room, room);
  }

  private acquire(name: string): LocalRoom {
    const room = this.rooms.get(name);
    if (room) return room;
    const created: LocalRoom = {
      subscribed: Promise.resolve(),
      members: new Map(),
      joining: new Map(),
      joiningMembers: new Map(),
      waitingExcept: new Map(),
      presence: new SharedQuery(async () => {
        const snapshot = await this.engine.presenceSnapshot(name);
        created.size = snapshot.users.reduce((n, u) => n + u.connections, 0);
        return snapshot;
      }),
      recent: new SharedQuery(() => this.engine.history(name, { limit: this.options.historyOnJoin })),
      catchUp: new Set(),
      size: 0,
      batch: undefined,
      lastFlush: 0,
    };
    const listener: RoomListener = (event, exceptMember) => {
      if (event.event === "kick") return this.closeUser(created, event.data.user, { code: "KICKED", message: "you were removed from this room" });
      if (event.event === "resync") return void this.resync(name, created);
      if (event.event === "join") created.size++;
      else if (event.event === "broadcast_quit") created.size = Math.max(0, created.size - 1);
      else if (event.event === "presence_diff") created.size = Math.max(0, created.size + event.data.joined.length - event.data.left.length);
      this.sink.broadcast(name, event, exceptMember);
      if (created.joining.size === 0) return;
      for (const waiting of created.joining.values()) waiting.push(event);
      if (exceptMember !== undefined) created.waitingExcept.set(event, exceptMember);
      if (event.event === "broadcast_say") {
        for (const waiter of created.catchUp) if (compareIds(event.data.id, waiter.id) >= 0) waiter.done();
      }
    };
    created.subscribed = this.engine.subscribe(name, listener);
    // A failed subscription is seen by the joins that await it; do not leave it unhandled here.
    created.subscribed.catch(() => {});
    this.rooms.set(name, created);
    return created;
  }

  /**
   * After this process's subscription to the room came back (the engine replayed its messages and
   * deletions): what the gap may have held besides — presence changes, kicks — is refreshed. Each
   * local member gets the room's presence again, and members banned meanwhile are closed.
   */
  private async resync(name: string, room: LocalRoom): Promise<void> {
    try {
      const snapshot = await room.presence.get();
      for (const member of room.members.values()) this.sink.send(member.id, { event: "presence", data: { users: snapshot.users, version: snapshot.version } });
      const members = [...room.members.values()];
      const banned = await Promise.all(members.map((m) => this.engine.banned(name, userKey(m))));
      members.forEach((m, i) => banned[i] && this.sink.close(m.id, { code: "KICKED", message: "you were removed from this room" }, false));
    } catch {
      // Redis went again: the next resync does it
    }
  }

  /** Closes this process's connections of the user in the room (and stops its joins under way). */
  private closeUser(room: LocalRoom, user: string, error: WireError): void {
    for (const member of room.members.values()) if (userKey(member) === user) this.sink.close(member.id, error, false);
    for (const member of room.joiningMembers.values()) if (userKey(member) === user) this.sink.close(member.id, error, false);
  }

  /** The last local member is gone: this process stops receiving the room (the article never did). */
  private release(name: string, room: LocalRoom): void {
    if (room.members.size > 0 || room.joining.size > 0 || room.batch || this.rooms.get(name) !== room) return;
    this.rooms.delete(name);
    void this.engine.unsubscribe(name).catch(() => {});
  }

  /**
   * Resolves once this process has received the room's message `id` on the room's channel (or
   * had it in history when it subscribed), or after CATCH_UP_MS: a channel that stalls (Redis
   * lost) must not hold the join, and the engine replays what it missed anyway.
   */
  private caughtUp(name: string, room: LocalRoom, id: string): Promise<void> {
    const delivered = this.engine.delivered(name);
    if (delivered !== undefined && compareIds(delivered, id) >= 0) return Promise.resolve();
    return new Promise((resolve) => {
      const waiter = {
        id,
        done: () => {
          clearTimeout(timer);
          room.catchUp.delete(waiter);
          resolve();
        },
      };
      const timer = setTimeout(waiter.done, CATCH_UP_MS);
      room.catchUp.add(waiter);
    });
  }

  private isBig(room: LocalRoom): boolean {
    return this.options.bigRoom > 0 && room.size >= this.options.bigRoom;
  }

  private removePresence(name: string, room: LocalRoom, member: string): Promise<void> {
    return this.isBig(room) ? this.batchPresence(name, room, { left: member }) : this.engine.removePresence(name, member, { ts: Date.now() });
  }

  /**
   * Adds a change to the room's next `presence_diff`, sent at most every `presenceBatchMs` (at
   * once when the room has been calm); resolves once the engine has applied and published it.
   */
  private batchPresence(
    name: string,
    room: LocalRoom,
    change: { joined: PresenceBatch["joined"][number] } | { left: string },
  ): Promise<void> {
    let batch = room.batch;
    if (!batch) {
      let settle!: (err?: unknown) => void;
      const done = new Promise<void>((resolve, reject) => (settle = (err) => (err === undefined ? resolve() : reject(err))));
      const created: PresenceBatch = { joined: [], left: [], done, settle };
      room.batch = batch = created;
      const wait = Math.max(0, room.lastFlush + this.options.presenceBatchMs - Date.now());
      setTimeout(() => {
        room.batch = undefined;
        room.lastFlush = Date.now();
        this.engine
          .changePresence(name, { joined: created.joined, left: created.left, ts: room.lastFlush })
          .then(() => created.settle(), (err: unknown) => created.settle(err ?? new Error("presence change failed")))
          .finally(() => this.release(name, room));
      }, wait);
    }
    if ("joined" in change) batch.joined.push(change.joined);
    else batch.left.push(change.left);
    return batch.done;
  }

  private pruneWaiting(room: LocalRoom): void {
    if (room.joining.size === 0) room.waitingExcept.clear();
  }
}

function unavailable(err: unknown): unknown {
  return err instanceof EngineUnavailableError ? new ChatError("UNAVAILABLE", "the chat is unavailable, try again") : err;
}
