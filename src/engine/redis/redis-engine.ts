/**
 * The Redis engine: any number of roomcast processes, on any number of machines, sharing one Redis
 * form one chat.
 *
 * Layout in Redis (`<p>` is the key prefix, `roomcast:` by default):
 *   <p>history:<room>   stream of the room's messages (XADD … MAXLEN ~ historySize)
 *   <p>room:<room>      pub/sub channel of the room: messages, join, quit and typing notices
 *   <p>presence:<room>  hash "<node>/<member>" → username, one field per connection
 *   <p>presence-version:<room>  counter of the room's presence changes (orders snapshots and diffs)
 *   <p>rooms            set of rooms with presence entries
 *   <p>nodes            zset node → expiry (ms, Redis clock), renewed by each node's heartbeat
 *   <p>connections      hash node → open connections
 *
 * Why not `@socket.io/redis-adapter`: it publishes a broadcast separately from any history write,
 * so two processes publishing at once could store messages in one order and deliver them in
 * another, and recovery with `since` could miss or repeat messages. Here one Lua script appends to
 * the stream and publishes (scripts.ts), and each process fans out to its local members itself.
 */
import { randomBytes } from "node:crypto";
import { hostname } from "node:os";
import { Redis, type Result } from "ioredis";
import type { Logger } from "pino";
import { compareIds } from "../../chat/ids.js";
import { FROM_START, MAX_ID, type ChatMessage, type HistoryData, type PresenceUser, type RoomEvent } from "../../protocol.js";
import {
  countUsers,
  EngineUnavailableError,
  type ClusterStats,
  type Engine,
  type EngineHealth,
  type HistoryQuery,
  type MessageDraft,
  type PresenceChanges,
  type PresenceSnapshot,
  type RoomListener,
  type RoomSummary,
} from "../engine.js";
import * as scripts from "./scripts.js";

declare module "ioredis" {
  interface RedisCommander<Context> {
    rcPublishMessage(stream: string, ...args: (string | number)[]): Result<string, Context>;
    rcPresenceAdd(hash: string, rooms: string, version: string, field: string, username: string, room: string): Result<number, Context>;
    rcPresenceRemove(hash: string, rooms: string, version: string, field: string, room: string): Result<number, Context>;
    rcPresenceChange(hash: string, rooms: string, version: string, ...args: (string | number)[]): Result<number, Context>;
    rcPresenceList(hash: string, nodes: string, rooms: string, version: string, room: string): Result<[number, string[]], Context>;
    rcHeartbeat(nodes: string, connections: string, node: string, ttl: number, count: number): Result<number, Context>;
    rcStats(nodes: string, connections: string): Result<[number, number], Context>;
    rcHistoryCounts(stream: string): Result<[number, number], Context>;
    rcNodeRemove(nodes: string, connections: string, node: string): Result<number, Context>;
  }
}

export interface RedisEngineOptions {
  /** redis://[user:password@]host:port[/db] */
  url: string;
  /** Prefix of every key and channel. @default "roomcast:" */
  prefix: string;
  /** Messages kept per room (approximately trimmed: at least this many). @default 1000 */
  historySize: number;
  /** A room's history expires this long (ms) after its last message. @default undefined: kept for ever */
  historyTtlMs?: number | undefined;
  /** A node whose heartbeat is older than this (ms) is dead and its presence vanishes. @default 15000 */
  nodeTtlMs: number;
  logger: Logger;
}

/** A room this process is subscribed to. */
interface Subscription {
  listener: RoomListener;
  /** The newest message id delivered (or known to be in history when subscribing). */
  lastId: string | undefined;
  /** While the messages missed during a lost connection are replayed, live events wait here. */
  backlog: ChannelFrame[] | undefined;
}

interface ChannelFrame {
  event: RoomEvent["event"];
  data: RoomEvent["data"];
  except?: string;
}

type StreamEntry = [id: string, fields: string[]];

export class RedisEngine implements Engine {
  readonly kind = "redis";
  readonly nodeId = `${hostname()}-${process.pid}-${randomBytes(3).toString("hex")}`;

  private readonly cmd: Redis;
  private readonly sub: Redis;
  private readonly subs = new Map<string, Subscription>();
  /** This process's presence entries, kept to restore them when Redis comes back empty. */
  private readonly local = new Map<string, Map<string, string>>();
  /**
   * Presence fields whose removal failed (Redis unreachable), per room: removed when the
   * connection is back, in case Redis kept its data (a network cut, a restart from disk). This
   * process's heartbeat keeps its entries alive, so they would never expire by themselves.
   */
  private readonly pendingRemovals = new Map<string, Set<string>>();
  private connections = 0;
  private started = false;
  private closing = false;
  private heartbeat: NodeJS.Timeout | undefined;
  private pendingReport: NodeJS.Timeout | undefined;
  private lastHealth: EngineHealth = { ok: false, reason: "not started" };
  private readonly healthListeners: ((h: EngineHealth) => void)[] = [];
  private readonly keys;
  /** The last connection error, to say why Redis could not be reached. */
  private lastError: unknown;

  constructor(private readonly options: RedisEngineOptions) {
    const p = options.prefix;
    this.keys = {
      history: (room: string) => `${p}history:${room}`,
      channel: (room: string) => `${p}room:${room}`,
      presence: (room: string) => `${p}presence:${room}`,
      presenceVersion: (room: string) => `${p}presence-version:${room}`,
      rooms: `${p}rooms`,
      nodes: `${p}nodes`,
      connections: `${p}connections`,
      channelPrefix: `${p}room:`,
    };
    const common = {
      lazyConnect: true,
      // Fail at once while Redis is unreachable: a `say` is answered UNAVAILABLE rather than
      // waiting in a queue the sender cannot see.
      enableOfflineQueue: false,
      maxRetriesPerRequest: 0,
      commandTimeout: 5000,
      connectTimeout: 3000,
      // Subscriptions are restored by this engine (with replay of what was missed), not by ioredis.
      autoResubscribe: false,
      // At start an unreachable Redis is an error (exit 1); once running, reconnect for ever.
      retryStrategy: (times: number) => (this.started && !this.closing ? Math.min(100 * times, 1000) : null),
    };
    this.cmd = new Redis(options.url, { ...common, connectionName: `roomcast-cmd-${this.nodeId}` });
    this.sub = new Redis(options.url, { ...common, connectionName: `roomcast-sub-${this.nodeId}` });
    for (const [name, lua] of Object.entries({
      rcPublishMessage: [1, scripts.PUBLISH_MESSAGE],
      rcPresenceAdd: [3, scripts.PRESENCE_ADD],
      rcPresenceRemove: [3, scripts.PRESENCE_REMOVE],
      rcPresenceChange: [3, scripts.PRESENCE_CHANGE],
      rcPresenceList: [4, scripts.PRESENCE_LIST],
      rcHeartbeat: [2, scripts.HEARTBEAT],
      rcStats: [2, scripts.STATS],
      rcHistoryCounts: [1, scripts.HISTORY_COUNTS],
      rcNodeRemove: [2, scripts.NODE_REMOVE],
    } as const)) {
      this.cmd.defineCommand(name, { numberOfKeys: lua[0], lua: lua[1] });
    }
    this.sub.on("message", (channel: string, raw: string) => this.onChannelMessage(channel, raw));
    for (const client of [this.cmd, this.sub]) {
      client.on("error", (err: unknown) => {
        this.lastError = err;
      });
    }
  }

  async start(): Promise<void> {
    try {
      await Promise.all([this.cmd.connect(), this.sub.connect()]);
    } catch (err) {
      this.cmd.disconnect();
      this.sub.disconnect();
      const reason = describe(this.lastError ?? err);
      throw new EngineUnavailableError(`cannot reach Redis at ${redactUrl(this.options.url)}: ${reason}`, {
        cause: err,
      });
    }
    this.started = true;
    await this.beat();
    const log = this.options.logger;
    for (const [name, client] of [
      ["cmd", this.cmd],
      ["sub", this.sub],
    ] as const) {
      let down = false;
      client.on("error", (err: unknown) => {
        if (!down) log.warn({ err: describe(err), connection: name }, "redis connection error");
      });
      client.on("close", () => {
        if (down || this.closing) return;
        down = true;
        log.warn({ connection: name }, "redis connection lost");
        this.updateHealth();
      });
      client.on("ready", () => {
        if (!down) return;
        down = false;
        log.info({ connection: name }, "redis connection restored");
        void (name === "cmd" ? this.restorePresence() : this.restoreSubscriptions());
        this.updateHealth();
      });
    }
    this.heartbeat = setInterval(() => void this.beat().catch(() => {}), Math.max(250, this.options.nodeTtlMs / 3));
    this.heartbeat.unref();
    this.updateHealth();
  }

  async close(): Promise<void> {
    if (this.closing) return;
    this.closing = true;
    clearInterval(this.heartbeat);
    clearTimeout(this.pendingReport);
    if (this.cmd.status === "ready") {
      const pipeline = this.cmd.pipeline();
      for (const [room, members] of this.local) {
        for (const member of members.keys()) {
          pipeline.rcPresenceRemove(...this.presenceKeys(room), this.field(member), room);
        }
      }
      pipeline.rcNodeRemove(this.keys.nodes, this.keys.connections, this.nodeId);
      await pipeline.exec().catch(() => {});
    }
    this.local.clear();
    this.subs.clear();
    this.cmd.disconnect();
    this.sub.disconnect();
  }

  // ---- messages ---------------------------------------------------------------------------------

  async publishMessage(room: string, draft: MessageDraft): Promise<ChatMessage> {
    const head = '{"event":"broadcast_say","data":{"id":"';
    const tail = `","username":${JSON.stringify(draft.username)},"text":${JSON.stringify(draft.text)},"ts":${draft.ts}}}`;
    const id = await this.call(() =>
      this.cmd.rcPublishMessage(
        this.keys.history(room),
        this.options.historySize,
        draft.username,
        draft.text,
        draft.ts,
        this.keys.channel(room),
        head,
        tail,
        this.options.historyTtlMs ?? 0,
      ),
    );
    return { id, ...draft };
  }

  async publishNotice(room: string, event: RoomEvent, exceptMember?: string): Promise<void> {
    const frame: ChannelFrame = exceptMember === undefined ? event : { ...event, except: exceptMember };
    await this.call(() => this.cmd.publish(this.keys.channel(room), JSON.stringify(frame)));
  }

  async subscribe(room: string, listener: RoomListener): Promise<void> {
    if (this.sub.status !== "ready") throw new EngineUnavailableError("Redis is unreachable");
    const subscription: Subscription = { listener, lastId: undefined, backlog: undefined };
    this.subs.set(room, subscription);
    try {
      await this.sub.subscribe(this.keys.channel(room));
      // Remember where the room's history stands, so that a lost connection can be caught up
      // from here even if no message arrives before it is lost.
      const newest = await this.cmd.xrevrange(this.keys.history(room), "+", "-", "COUNT", 1);
      const id = newest[0]?.[0] ?? "0-0";
      if (subscription.lastId === undefined || compareIds(id, subscription.lastId) > 0) subscription.lastId = id;
    } catch (err) {
      if (this.subs.get(room) === subscription) this.subs.delete(room);
      throw new EngineUnavailableError("Redis is unreachable", { cause: err });
    }
  }

  delivered(room: string): string | undefined {
    return this.subs.get(room)?.lastId;
  }

  async unsubscribe(room: string): Promise<void> {
    this.subs.delete(room);
    if (this.sub.status === "ready") await this.sub.unsubscribe(this.keys.channel(room)).catch(() => {});
  }

  private onChannelMessage(channel: string, raw: string): void {
    const room = channel.slice(this.keys.channelPrefix.length);
    const subscription = this.subs.get(room);
    if (!subscription) return;
    let frame: ChannelFrame;
    try {
      frame = JSON.parse(raw) as ChannelFrame;
    } catch {
      this.options.logger.warn({ room }, "unreadable frame on a room channel, ignored");
      return;
    }
    if (subscription.backlog) subscription.backlog.push(frame);
    else this.deliver(subscription, frame);
  }

  /** Delivers one frame, dropping a message already delivered (replay and live may overlap). */
  private deliver(subscription: Subscription, frame: ChannelFrame): void {
    if (frame.event === "broadcast_say") {
      const id = (frame.data as ChatMessage).id;
      if (subscription.lastId !== undefined && compareIds(id, subscription.lastId) <= 0) return;
      subscription.lastId = id;
    }
    subscription.listener({ event: frame.event, data: frame.data } as RoomEvent, frame.except);
  }

  /** After the subscriber connection came back: subscribe again, then replay what was missed. */
  private async restoreSubscriptions(): Promise<void> {
    const rooms = [...this.subs.keys()];
    if (rooms.length === 0) return;
    for (const room of rooms) {
      const s = this.subs.get(room);
      if (s) s.backlog ??= [];
    }
    try {
      await this.sub.subscribe(...rooms.map((r) => this.keys.channel(r)));
    } catch {
      return; // the connection dropped again; the next "ready" tries again
    }
    await Promise.all(rooms.map((room) => this.replay(room)));
  }

  private async replay(room: string): Promise<void> {
    for (let attempt = 0; ; attempt++) {
      const subscription = this.subs.get(room);
      if (!subscription?.backlog) return;
      try {
        if (subscription.lastId !== undefined) {
          const entries = (await this.cmd.xrange(this.keys.history(room), `(${subscription.lastId}`, "+")) as StreamEntry[];
          for (const entry of entries) this.deliver(subscription, { event: "broadcast_say", data: toMessage(entry) });
        }
        const backlog = subscription.backlog;
        subscription.backlog = undefined;
        for (const frame of backlog) this.deliver(subscription, frame);
        if (attempt > 0) this.options.logger.info({ room }, "room caught up after reconnect");
        return;
      } catch {
        // The command connection is not back yet: try again shortly, events keep waiting.
        await new Promise((r) => setTimeout(r, Math.min(200 * (attempt + 1), 1000)));
        if (this.closing) return;
      }
    }
  }

  async history(room: string, query: HistoryQuery): Promise<HistoryData> {
    const key = this.keys.history(room);
    if (query.since === undefined) {
      const entries = (await this.call(() =>
        this.cmd.xrevrange(key, "+", "-", "COUNT", query.limit + 1),
      )) as StreamEntry[];
      const truncated = entries.length > query.limit;
      return { messages: entries.slice(0, query.limit).reverse().map(toMessage), truncated };
    }
    const since = query.since;
    if (since === FROM_START) {
      const [messages, [added, kept]] = await Promise.all([
        this.call(() => this.cmd.xrange(key, "-", "+")) as Promise<StreamEntry[]>,
        this.call(() => this.cmd.rcHistoryCounts(key)),
      ]);
      return { messages: messages.map(toMessage), truncated: added > kept };
    }
    if (since === MAX_ID) {
      // nothing follows it (and Redis refuses an exclusive range that starts there)
      const found = (await this.call(() => this.cmd.xrange(key, since, since, "COUNT", 1))) as StreamEntry[];
      return { messages: [], truncated: found.length === 0 };
    }
    const replies = await this.call(() =>
      this.cmd.multi().xrange(key, since, since, "COUNT", 1).xrange(key, `(${since}`, "+").exec(),
    );
    const [found, after] = (replies ?? []).map(([err, value]) => {
      if (err) throw new EngineUnavailableError("Redis refused a history read", { cause: err });
      return value as StreamEntry[];
    });
    return { messages: (after ?? []).map(toMessage), truncated: (found ?? []).length === 0 };
  }

  // ---- presence ---------------------------------------------------------------------------------

  async addPresence(room: string, member: string, username: string): Promise<void> {
    this.remember(room, member, username);
    try {
      await this.call(() =>
        this.cmd.rcPresenceAdd(...this.presenceKeys(room), this.field(member), username, room),
      );
    } catch (err) {
      this.forgetLocal(room, member);
      throw err;
    }
  }

  async removePresence(room: string, member: string): Promise<void> {
    this.forgetLocal(room, member);
    const field = this.field(member);
    await this.call(() =>
      this.cmd.rcPresenceRemove(...this.presenceKeys(room), field, room),
    ).catch(() => this.removeLater(room, [field]));
  }

  private removeLater(room: string, fields: string[]): void {
    let pending = this.pendingRemovals.get(room);
    if (!pending) this.pendingRemovals.set(room, (pending = new Set()));
    for (const field of fields) pending.add(field);
  }

  async changePresence(room: string, changes: PresenceChanges): Promise<void> {
    const entries = this.local.get(room);
    const left: string[] = [];
    const leftFields: string[] = [];
    for (const member of changes.left) {
      const username = entries?.get(member);
      if (username === undefined) continue;
      left.push(username);
      leftFields.push(this.field(member));
      this.forgetLocal(room, member);
    }
    const joinedArgs: string[] = [];
    for (const { member, username } of changes.joined) joinedArgs.push(this.field(member), username);
    const joined = changes.joined.map((j) => j.username);
    const head = `{"event":"presence_diff","data":{"joined":${JSON.stringify(joined)},"left":${JSON.stringify(left)},"ts":${changes.ts},"version":`;
    await this.call(() =>
      this.cmd.rcPresenceChange(
        ...this.presenceKeys(room),
        room,
        this.keys.channel(room),
        head,
        "}}",
        changes.joined.length,
        ...joinedArgs,
        ...leftFields,
      ),
    ).catch((err: unknown) => {
      this.removeLater(room, leftFields);
      throw err;
    });
    // Only now: restorePresence must not re-add entries Redis never accepted.
    for (const { member, username } of changes.joined) this.remember(room, member, username);
  }

  async presence(room: string): Promise<PresenceUser[]> {
    return (await this.presenceSnapshot(room)).users;
  }

  async presenceSnapshot(room: string): Promise<PresenceSnapshot> {
    const [version, names] = await this.call(() =>
      this.cmd.rcPresenceList(...this.presenceListKeys(room), room),
    );
    return { users: countUsers(names), version };
  }

  async rooms(): Promise<RoomSummary[]> {
    const rooms = await this.call(() => this.cmd.smembers(this.keys.rooms));
    const pipeline = this.cmd.pipeline();
    for (const room of rooms) {
      pipeline.rcPresenceList(...this.presenceListKeys(room), room);
    }
    const replies = (await this.call(() => pipeline.exec())) ?? [];
    const out: RoomSummary[] = [];
    rooms.forEach((room, i) => {
      const names = (replies[i]?.[1] as [number, string[]] | undefined)?.[1];
      if (names && names.length > 0) out.push({ room, users: new Set(names).size });
    });
    return out.sort((a, b) => b.users - a.users || (a.room < b.room ? -1 : 1));
  }

  private remember(room: string, member: string, username: string): void {
    let entries = this.local.get(room);
    if (!entries) this.local.set(room, (entries = new Map()));
    entries.set(member, username);
  }

  private forgetLocal(room: string, member: string): void {
    const entries = this.local.get(room);
    entries?.delete(member);
    if (entries?.size === 0) this.local.delete(room);
  }

  /** After the command connection came back (Redis may have restarted empty): re-register. */
  private async restorePresence(): Promise<void> {
    const removals = [...this.pendingRemovals];
    this.pendingRemovals.clear();
    try {
      await this.beat();
      const pipeline = this.cmd.pipeline();
      for (const [room, fields] of removals) {
        for (const field of fields) {
          pipeline.rcPresenceRemove(...this.presenceKeys(room), field, room);
        }
      }
      for (const [room, members] of this.local) {
        for (const [member, username] of members) {
          pipeline.rcPresenceAdd(...this.presenceKeys(room), this.field(member), username, room);
        }
      }
      await pipeline.exec();
    } catch (err) {
      for (const [room, fields] of removals) this.removeLater(room, [...fields]);
      this.options.logger.warn({ err: describe(err) }, "could not restore presence; tried again when the connection is back");
    }
  }

  /** KEYS of PRESENCE_ADD, PRESENCE_REMOVE and PRESENCE_CHANGE. */
  private presenceKeys(room: string): [hash: string, rooms: string, version: string] {
    return [this.keys.presence(room), this.keys.rooms, this.keys.presenceVersion(room)];
  }

  /** KEYS of PRESENCE_LIST. */
  private presenceListKeys(room: string): [hash: string, nodes: string, rooms: string, version: string] {
    return [this.keys.presence(room), this.keys.nodes, this.keys.rooms, this.keys.presenceVersion(room)];
  }

  private field(member: string): string {
    return `${this.nodeId}/${member}`;
  }

  // ---- nodes ------------------------------------------------------------------------------------

  setConnectionCount(count: number): void {
    if (count === this.connections) return;
    this.connections = count;
    // Report soon, not at the next heartbeat, so /api/stats on other nodes is current; at most
    // one write per 100 ms however fast connections come and go.
    if (this.pendingReport || !this.started || this.closing) return;
    this.pendingReport = setTimeout(() => {
      this.pendingReport = undefined;
      void this.beat().catch(() => {});
    }, 100);
  }

  async stats(): Promise<ClusterStats> {
    // Report our own count first, so that the answer is current for this node at least.
    await this.beat();
    const [nodes, connections] = await this.call(() => this.cmd.rcStats(this.keys.nodes, this.keys.connections));
    return { nodes, connections };
  }

  private beat(): Promise<number> {
    return this.call(() =>
      this.cmd.rcHeartbeat(this.keys.nodes, this.keys.connections, this.nodeId, this.options.nodeTtlMs, this.connections),
    );
  }

  // ---- health -----------------------------------------------------------------------------------

  health(): EngineHealth {
    return this.lastHealth;
  }

  onHealthChange(listener: (health: EngineHealth) => void): void {
    this.healthListeners.push(listener);
  }

  private updateHealth(): void {
    const ok = this.cmd.status === "ready" && this.sub.status === "ready";
    const health: EngineHealth = ok ? { ok } : { ok, reason: "redis unreachable" };
    if (health.ok === this.lastHealth.ok && health.reason === this.lastHealth.reason) return;
    this.lastHealth = health;
    for (const listener of this.healthListeners) listener(health);
  }

  /** Runs a Redis call; any failure means the request was not carried out: UNAVAILABLE. */
  private async call<T>(fn: () => Promise<T>): Promise<T> {
    try {
      return await fn();
    } catch (err) {
      if (err instanceof EngineUnavailableError) throw err;
      throw new EngineUnavailableError("Redis is unreachable", { cause: err });
    }
  }
}

function toMessage([id, fields]: StreamEntry): ChatMessage {
  const get = (name: string) => {
    for (let i = 0; i < fields.length; i += 2) if (fields[i] === name) return fields[i + 1] ?? "";
    return "";
  };
  return { id, username: get("u"), text: get("t"), ts: Number(get("ts")) };
}

function describe(err: unknown): string {
  if (err instanceof AggregateError && err.errors.length > 0) return describe(err.errors[0]);
  return err instanceof Error ? err.message : String(err);
}

/** The URL without its password, fit for a log line. */
export function redactUrl(url: string): string {
  try {
    const u = new URL(url);
    if (u.password) u.password = "***";
    return u.toString();
  } catch {
    return "(invalid URL)";
  }
}
