/**
 * The chat as this process sees it: which local members are in which room, what they may do, and
 * when this process needs a room's events. It decides; the engine stores and carries; the server
 * speaks the wire protocol through the MemberSink.
 */
import {
  EngineUnavailableError,
  type Engine,
  type RoomListener,
} from "../engine/engine.js";
import type { ChatMessage, RoomEvent, ServerMessage } from "../protocol.js";
import { ChatError } from "./errors.js";
import { compareIds } from "./ids.js";

/** How the chat reaches the connections; implemented by server/socket.ts over Socket.IO rooms. */
export interface MemberSink {
  /** To every member that has entered the room on this process, but `exceptMember`. */
  broadcast(room: string, event: RoomEvent, exceptMember: string | undefined): void;
  /** To one member. */
  send(member: string, message: ServerMessage): void;
  /** From now on `broadcast` reaches this member. */
  enter(member: string, room: string): void;
}

export interface ChatOptions {
  /** Messages sent on join without `since`. @default 50 */
  historyOnJoin: number;
}

export interface Member {
  readonly id: string;
  readonly room: string;
  readonly username: string;
}

/** A room with members on this process. */
interface LocalRoom {
  /** Resolves when this process receives the room's events. */
  subscribed: Promise<void>;
  /** Members that have entered. */
  members: Set<string>;
  /** Members between `join` and entering: events that arrive meanwhile wait here for them. */
  joining: Map<string, RoomEvent[]>;
  /** Per-member except lists of the waiting events (typing is not shown to its author). */
  waitingExcept: Map<RoomEvent, string | undefined>;
}

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
    let present = false;
    try {
      await room.subscribed;
      await this.engine.addPresence(member.room, member.id, member.username);
      present = true;
      await this.engine.publishNotice(member.room, { event: "join", data: { username: member.username, ts: Date.now() } });
      const [history, users] = await Promise.all([
        this.engine.history(member.room, { since, limit: this.options.historyOnJoin }),
        this.engine.presence(member.room),
      ]);
      this.sink.send(member.id, { event: "history", data: history });
      this.sink.send(member.id, { event: "presence", data: { users } });
      // Everything this member has now is up to the newest message of its history.
      let seen = history.messages.at(-1)?.id ?? since;
      for (const event of room.joining.get(member.id) ?? []) {
        if (event.event === "broadcast_say") {
          if (seen !== undefined && compareIds(event.data.id, seen) <= 0) continue;
          seen = event.data.id;
        }
        if (room.waitingExcept.get(event) === member.id) continue;
        this.sink.send(member.id, event);
      }
      room.joining.delete(member.id);
      this.pruneWaiting(room);
      room.members.add(member.id);
      this.sink.enter(member.id, member.room);
    } catch (err) {
      room.joining.delete(member.id);
      this.pruneWaiting(room);
      if (present) await this.engine.removePresence(member.room, member.id);
      this.release(member.room, room);
      throw unavailable(err);
    }
  }

  /** Publishes a message to the member's room; resolves with it once the room has it. */
  async say(member: Member, text: string): Promise<ChatMessage> {
    try {
      return await this.engine.publishMessage(member.room, { username: member.username, text, ts: Date.now() });
    } catch (err) {
      throw unavailable(err);
    }
  }

  /** Tells the other members of the room that this member is (or stopped) typing. */
  async typing(member: Member, typing: boolean): Promise<void> {
    try {
      await this.engine.publishNotice(member.room, { event: "typing", data: { username: member.username, typing } }, member.id);
    } catch (err) {
      throw unavailable(err);
    }
  }

  /** A joined member disconnected: announce the quit and forget it. Never throws. */
  async leave(member: Member): Promise<void> {
    const room = this.rooms.get(member.room);
    room?.members.delete(member.id);
    await this.engine.removePresence(member.room, member.id);
    await this.engine
      .publishNotice(member.room, { event: "broadcast_quit", data: { username: member.username, ts: Date.now() } })
      .catch(() => {}); // Redis is down: its members' sockets see the quit in the presence they get next
    if (room) this.release(member.room, room);
  }

  private acquire(name: string): LocalRoom {
    const room = this.rooms.get(name);
    if (room) return room;
    const created: LocalRoom = {
      subscribed: Promise.resolve(),
      members: new Set(),
      joining: new Map(),
      waitingExcept: new Map(),
    };
    const listener: RoomListener = (event, exceptMember) => {
      this.sink.broadcast(name, event, exceptMember);
      if (created.joining.size === 0) return;
      for (const waiting of created.joining.values()) waiting.push(event);
      if (exceptMember !== undefined) created.waitingExcept.set(event, exceptMember);
    };
    created.subscribed = this.engine.subscribe(name, listener);
    // A failed subscription is seen by the joins that await it; do not leave it unhandled here.
    created.subscribed.catch(() => {});
    this.rooms.set(name, created);
    return created;
  }

  /** The last local member is gone: this process stops receiving the room (the article never did). */
  private release(name: string, room: LocalRoom): void {
    if (room.members.size > 0 || room.joining.size > 0 || this.rooms.get(name) !== room) return;
    this.rooms.delete(name);
    void this.engine.unsubscribe(name).catch(() => {});
  }

  private pruneWaiting(room: LocalRoom): void {
    if (room.joining.size === 0) room.waitingExcept.clear();
  }
}

function unavailable(err: unknown): unknown {
  return err instanceof EngineUnavailableError ? new ChatError("UNAVAILABLE", "the chat is unavailable, try again") : err;
}
