/**
 * The embedded engine: everything in this process's memory, nothing to install. One process is
 * the whole chat. Publishing is synchronous, so storing and delivering are trivially one step.
 */
import { randomUUID } from "node:crypto";
import { compareIds, IdGenerator } from "../../chat/ids.js";
import { FROM_START, type ChatMessage, type HistoryData, type PresenceRef, type PresenceUser } from "../../protocol.js";
import {
  countUsers,
  presenceRef,
  type ClusterStats,
  type Engine,
  type EngineHealth,
  type HistoryQuery,
  type MessageDraft,
  type PresenceChanges,
  type PresenceEntry,
  type PresenceSnapshot,
  type RoomListener,
  type RoomSummary,
  type RoomTraffic,
} from "../engine.js";

export interface MemoryEngineOptions {
  /** Messages kept per room. @default 1000 */
  historySize: number;
  /** A room's history is dropped this long (ms) after its last message. @default undefined: kept */
  historyTtlMs?: number | undefined;
}

/** A room's history: the kept messages, how many it ever had, when it last had one. */
interface History {
  messages: ChatMessage[];
  added: number;
  /** Ids removed by deleteMessage that are still within the kept span (for `since`). */
  deleted: Set<string>;
  lastAt: number;
}

export class MemoryEngine implements Engine {
  readonly kind = "memory";
  readonly nodeId = `memory-${randomUUID().slice(0, 8)}`;

  private readonly ids = new IdGenerator();
  private readonly histories = new Map<string, History>();
  private readonly listeners = new Map<string, RoomListener>();
  /** room → member → entry */
  private readonly members = new Map<string, Map<string, PresenceEntry>>();
  /** room → presence version (only while the room has members) */
  private readonly versions = new Map<string, number>();
  /** `${room}\n${user}` → banned until (epoch ms) */
  private readonly bans = new Map<string, number>();
  private connections = 0;
  private sweeper: NodeJS.Timeout | undefined;

  constructor(private readonly options: MemoryEngineOptions) {}

  async start(): Promise<void> {
    const ttl = this.options.historyTtlMs;
    this.sweeper = setInterval(() => this.sweep(ttl), Math.min(ttl ?? 60_000, 60_000));
    this.sweeper.unref();
  }

  async close(): Promise<void> {
    clearInterval(this.sweeper);
    this.listeners.clear();
    this.members.clear();
  }

  // ---- messages ---------------------------------------------------------------------------------

  async publishMessage(room: string, draft: MessageDraft): Promise<ChatMessage> {
    const message: ChatMessage = { id: this.ids.next(), username: draft.username, text: draft.text, ts: draft.ts };
    if (draft.user !== undefined) message.user = draft.user;
    let history = this.histories.get(room);
    if (!history) this.histories.set(room, (history = { messages: [], added: 0, deleted: new Set(), lastAt: 0 }));
    history.messages.push(message);
    history.added++;
    history.lastAt = Date.now();
    // Trim in chunks, not on every message, to keep the push O(1) amortised.
    if (history.messages.length > this.options.historySize * 1.1) {
      const trimmed = history.messages.splice(0, history.messages.length - this.options.historySize);
      // a deleted id older than a trimmed message has lost a message after it: no longer a known position
      const lastTrimmed = trimmed.at(-1)!.id;
      for (const id of history.deleted) if (compareIds(id, lastTrimmed) < 0) history.deleted.delete(id);
    }
    this.listeners.get(room)?.({ event: "broadcast_say", data: message }, undefined);
    return message;
  }

  async deleteMessage(room: string, id: string): Promise<boolean> {
    const history = this.histories.get(room);
    const at = history?.messages.findIndex((m) => m.id === id) ?? -1;
    if (!history || at < 0) return false;
    history.messages.splice(at, 1);
    history.deleted.add(id);
    this.listeners.get(room)?.({ event: "delete", data: { id } }, undefined);
    return true;
  }

  /** Publishing delivers at once: every stored message has been delivered. */
  delivered(room: string): string | undefined {
    return this.histories.get(room)?.messages.at(-1)?.id;
  }

  async publishNotice(room: string, event: RoomTraffic, exceptMember?: string): Promise<void> {
    this.listeners.get(room)?.(event, exceptMember);
  }

  async subscribe(room: string, listener: RoomListener): Promise<void> {
    this.listeners.set(room, listener);
  }

  async unsubscribe(room: string): Promise<void> {
    this.listeners.delete(room);
  }

  async history(room: string, query: HistoryQuery): Promise<HistoryData> {
    const history = this.histories.get(room);
    const all = history?.messages ?? [];
    const kept = all.slice(Math.max(0, all.length - this.options.historySize));
    if (query.since === undefined) {
      const before = query.before;
      const end = before === undefined ? kept.length : kept.findIndex((m) => compareIds(m.id, before) >= 0);
      const stop = end < 0 ? kept.length : end;
      const start = Math.max(0, stop - query.limit);
      return { messages: kept.slice(start, stop), truncated: start > 0 };
    }
    const since = query.since;
    if (since === FROM_START) return { messages: kept, truncated: (history?.added ?? 0) > kept.length + (history?.deleted.size ?? 0) };
    // a deleted id is a known position while no message after it is gone from what is kept
    const lostAfter = all.slice(0, all.length - kept.length).some((m) => compareIds(m.id, since) > 0);
    const found = kept.some((m) => m.id === since) || ((history?.deleted.has(since) ?? false) && !lostAfter);
    return { messages: kept.filter((m) => compareIds(m.id, since) > 0), truncated: !found };
  }

  /** Drops what nobody needs: histories unused for --history-ttl, bans that ended. */
  private sweep(ttl: number | undefined): void {
    const now = Date.now();
    if (ttl !== undefined) for (const [room, history] of this.histories) if (history.lastAt <= now - ttl) this.histories.delete(room);
    for (const [key, until] of this.bans) if (until <= now) this.bans.delete(key);
  }

  // ---- presence ---------------------------------------------------------------------------------

  async addPresence(room: string, entry: PresenceEntry, announce?: { ts: number; rejoin: boolean }): Promise<number> {
    let entries = this.members.get(room);
    if (!entries) this.members.set(room, (entries = new Map()));
    entries.set(entry.member, entry);
    const version = this.bump(room);
    if (announce) {
      const data = { ...presenceRef(entry), ts: announce.ts, version, ...(announce.rejoin ? { rejoin: true } : {}) };
      this.listeners.get(room)?.({ event: "join", data }, undefined);
    }
    return version;
  }

  async removePresence(room: string, member: string, announce?: { ts: number }): Promise<void> {
    const entry = this.remove(room, member);
    if (!entry) return;
    const version = this.bump(room);
    if (announce) this.listeners.get(room)?.({ event: "broadcast_quit", data: { ...presenceRef(entry), ts: announce.ts, version } }, undefined);
  }

  async changePresence(room: string, changes: PresenceChanges): Promise<void> {
    const left: PresenceRef[] = [];
    for (const member of changes.left) {
      const entry = this.remove(room, member);
      if (entry) left.push(presenceRef(entry));
    }
    let entries = this.members.get(room);
    if (changes.joined.length > 0 && !entries) this.members.set(room, (entries = new Map()));
    for (const entry of changes.joined) entries!.set(entry.member, entry);
    const version = this.bump(room);
    const joined = changes.joined.map((j) => ({ ...presenceRef(j), ...(j.rejoin ? { rejoin: true } : {}) }));
    this.listeners.get(room)?.({ event: "presence_diff", data: { joined, left, version, ts: changes.ts } }, undefined);
  }

  async presence(room: string): Promise<PresenceUser[]> {
    return countUsers(this.members.get(room)?.values() ?? []);
  }

  async presenceSnapshot(room: string): Promise<PresenceSnapshot> {
    return { users: await this.presence(room), version: this.versions.get(room) ?? 0 };
  }

  private remove(room: string, member: string): PresenceEntry | undefined {
    const entries = this.members.get(room);
    const entry = entries?.get(member);
    if (!entries || !entry) return undefined;
    entries.delete(member);
    if (entries.size === 0) this.members.delete(room);
    return entry;
  }

  /**
   * The room's next presence version. An empty room keeps none (no entry per room ever used); a
   * new one starts from the clock in microseconds, so versions still only grow (as in Redis).
   */
  private bump(room: string): number {
    const version = (this.versions.get(room) ?? Date.now() * 1000) + 1;
    if (this.members.has(room)) this.versions.set(room, version);
    else this.versions.delete(room);
    return version;
  }

  async rooms(): Promise<RoomSummary[]> {
    return [...this.members].map(([room, entries]) => ({ room, users: countUsers(entries.values()).length }));
  }

  async ban(room: string, user: string, untilMs: number): Promise<void> {
    this.bans.set(`${room}\n${user}`, untilMs);
  }

  async banned(room: string, user: string): Promise<boolean> {
    return (this.bans.get(`${room}\n${user}`) ?? 0) > Date.now();
  }

  // ---- this process -----------------------------------------------------------------------------

  setConnectionCount(count: number): void {
    this.connections = count;
  }

  async stats(): Promise<ClusterStats> {
    return { nodes: 1, connections: this.connections };
  }

  health(): EngineHealth {
    return { ok: true };
  }

  onHealthChange(): void {}
}
