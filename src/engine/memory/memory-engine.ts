/**
 * The embedded engine: everything in this process's memory, nothing to install. One process is
 * the whole chat. Publishing is synchronous, so storing and delivering are trivially one step.
 */
import { randomUUID } from "node:crypto";
import { compareIds, IdGenerator } from "../../chat/ids.js";
import { FROM_START, type ChatMessage, type HistoryData, type PresenceUser, type RoomEvent } from "../../protocol.js";
import {
  countUsers,
  type PresenceChanges,
  type PresenceSnapshot,
  type ClusterStats,
  type Engine,
  type EngineHealth,
  type HistoryQuery,
  type MessageDraft,
  type RoomListener,
  type RoomSummary,
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
  lastAt: number;
}

export class MemoryEngine implements Engine {
  readonly kind = "memory";
  readonly nodeId = `memory-${randomUUID().slice(0, 8)}`;

  private readonly ids = new IdGenerator();
  private readonly histories = new Map<string, History>();
  private readonly listeners = new Map<string, RoomListener>();
  /** room → member → username */
  private readonly members = new Map<string, Map<string, string>>();
  /** room → presence version */
  private readonly versions = new Map<string, number>();
  private connections = 0;
  private sweeper: NodeJS.Timeout | undefined;

  constructor(private readonly options: MemoryEngineOptions) {}

  async start(): Promise<void> {
    const ttl = this.options.historyTtlMs;
    if (ttl !== undefined) {
      this.sweeper = setInterval(() => this.expireHistories(ttl), Math.min(ttl, 60_000));
      this.sweeper.unref();
    }
  }

  async close(): Promise<void> {
    clearInterval(this.sweeper);
    this.listeners.clear();
    this.members.clear();
  }

  async publishMessage(room: string, draft: MessageDraft): Promise<ChatMessage> {
    const message: ChatMessage = { id: this.ids.next(), ...draft };
    let history = this.histories.get(room);
    if (!history) this.histories.set(room, (history = { messages: [], added: 0, lastAt: 0 }));
    history.messages.push(message);
    history.added++;
    history.lastAt = Date.now();
    // Trim in chunks, not on every message, to keep the push O(1) amortised.
    if (history.messages.length > this.options.historySize * 1.1) {
      history.messages.splice(0, history.messages.length - this.options.historySize);
    }
    this.listeners.get(room)?.({ event: "broadcast_say", data: message }, undefined);
    return message;
  }

  /** --history-ttl: the histories of rooms where nothing was said for that long. */
  private expireHistories(ttl: number): void {
    const before = Date.now() - ttl;
    for (const [room, history] of this.histories) if (history.lastAt <= before) this.histories.delete(room);
  }

  /** Publishing delivers at once: every stored message has been delivered. */
  delivered(room: string): string | undefined {
    return this.histories.get(room)?.messages.at(-1)?.id;
  }

  async publishNotice(room: string, event: RoomEvent, exceptMember?: string): Promise<void> {
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
      const start = Math.max(0, kept.length - query.limit);
      return { messages: kept.slice(start), truncated: start > 0 };
    }
    const since = query.since;
    if (since === FROM_START) return { messages: kept, truncated: (history?.added ?? 0) > kept.length };
    const found = kept.some((m) => m.id === since);
    return { messages: kept.filter((m) => compareIds(m.id, since) > 0), truncated: !found };
  }

  async addPresence(room: string, member: string, username: string): Promise<void> {
    this.add(room, member, username);
    this.bump(room);
  }

  async removePresence(room: string, member: string): Promise<void> {
    this.remove(room, member);
    this.bump(room);
  }

  async changePresence(room: string, changes: PresenceChanges): Promise<void> {
    const left: string[] = [];
    for (const member of changes.left) {
      const username = this.members.get(room)?.get(member);
      if (username !== undefined) left.push(username);
      this.remove(room, member);
    }
    for (const { member, username } of changes.joined) this.add(room, member, username);
    const version = this.bump(room);
    const joined = changes.joined.map((j) => j.username);
    this.listeners.get(room)?.({ event: "presence_diff", data: { joined, left, version, ts: changes.ts } }, undefined);
  }

  async presence(room: string): Promise<PresenceUser[]> {
    return countUsers(this.members.get(room)?.values() ?? []);
  }

  async presenceSnapshot(room: string): Promise<PresenceSnapshot> {
    return { users: await this.presence(room), version: this.versions.get(room) ?? 0 };
  }

  private add(room: string, member: string, username: string): void {
    let entries = this.members.get(room);
    if (!entries) this.members.set(room, (entries = new Map()));
    entries.set(member, username);
  }

  private remove(room: string, member: string): void {
    const entries = this.members.get(room);
    if (!entries) return;
    entries.delete(member);
    if (entries.size === 0) this.members.delete(room);
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
    return [...this.members].map(([room, entries]) => ({ room, users: new Set(entries.values()).size }));
  }

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
