/**
 * The Redis engine: any number of roomcast processes, on any number of machines, sharing one Redis
 * (or a master with replicas behind Sentinel, or a Redis Cluster) form one chat.
 *
 * Files: topology.ts (how to connect and subscribe: the part that changes per topology), keys.ts
 * (key and channel names), scripts.ts (the Lua scripts: each message is one script), this file
 * (messages and history), subscriptions.ts (rooms received, with replay after a lost connection),
 * presence.ts (who is in each room), nodes.ts (the processes, and cleaning up after dead ones).
 *
 * Why not `@socket.io/redis-adapter`: it publishes a broadcast separately from any history write,
 * so two processes publishing at once could store messages in one order and deliver them in
 * another, and recovery with `since` could miss or repeat messages. Here one Lua script appends to
 * the stream and publishes (scripts.ts), and each process fans out to its local members itself.
 */
import { randomBytes } from "node:crypto";
import { hostname } from "node:os";
import type { Logger } from "pino";
import { MAX_ID, type ChatMessage, type HistoryData, type PresenceUser } from "../../protocol.js";
import {
  EngineUnavailableError,
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
import { redisKeys, type RedisKeys } from "./keys.js";
import { NodeRegistry } from "./nodes.js";
import { RedisPresence } from "./presence.js";
import { RoomSubscriptions, type ChannelFrame } from "./subscriptions.js";
import { createTopology, type RedisTarget, type Topology } from "./topology.js";

export { redactUrl } from "./topology.js";

export interface RedisEngineOptions {
  /** Which Redis: one URL, Sentinel or Cluster. */
  target: RedisTarget;
  /** Prefix of every key and channel. @default "roomcast:" */
  prefix: string;
  /** Messages kept per room (approximately trimmed: at least this many). @default 1000 */
  historySize: number;
  /** A room's history expires this long (ms) after its last message. @default undefined: kept for ever */
  historyTtlMs?: number | undefined;
  /** A node whose heartbeat is older than this (ms) is dead and its presence is taken out. @default 15000 */
  nodeTtlMs: number;
  /**
   * --redis-wait: after each message's script, `WAIT replicas timeoutMs` on the same connection,
   * before the sender's acknowledgement. @default undefined: acknowledged once the master has it
   */
  wait?: { replicas: number; timeoutMs: number } | undefined;
  /** Told of each message that fewer replicas than `wait.replicas` confirmed in time. */
  onWaitShort?: () => void;
  logger: Logger;
}

type StreamEntry = [id: string, fields: string[]];

export class RedisEngine implements Engine {
  readonly kind = "redis";
  readonly nodeId = `${hostname()}-${process.pid}-${randomBytes(3).toString("hex")}`;

  private readonly topology: Topology;
  private readonly keys: RedisKeys;
  private readonly subscriptions: RoomSubscriptions;
  private readonly presenceStore: RedisPresence;
  private readonly nodes: NodeRegistry;
  private started = false;
  private waitShortLogged = false;
  private closing = false;
  private lastHealth: EngineHealth = { ok: false, reason: "not started" };
  private readonly healthListeners: ((h: EngineHealth) => void)[] = [];
  /** The last connection error, to say why Redis could not be reached. */
  private lastError: unknown;
  private readonly call = async <T>(fn: () => Promise<T>): Promise<T> => {
    try {
      return await fn();
    } catch (err) {
      // any failure means the request was not carried out: UNAVAILABLE
      if (err instanceof EngineUnavailableError) throw err;
      throw new EngineUnavailableError("Redis is unreachable", { cause: err });
    }
  };

  constructor(private readonly options: RedisEngineOptions) {
    // At start an unreachable Redis is an error (exit 1); once running, reconnect for ever.
    this.topology = createTopology(options.target, { name: this.nodeId, retry: () => this.started && !this.closing });
    this.keys = redisKeys(options.prefix, this.topology.hashTags);
    this.subscriptions = new RoomSubscriptions(
      this.topology.sub,
      this.keys,
      {
        newest: async (room) => ((await this.cmd.xrevrange(this.keys.history(room), "+", "-", "COUNT", 1)) as StreamEntry[])[0]?.[0] ?? "0-0",
        after: async (room, id) => (id === MAX_ID ? [] : ((await this.cmd.xrange(this.keys.history(room), `(${id}`, "+")) as StreamEntry[]).map(toMessage)),
        deleted: (room) => this.cmd.zrange(this.keys.deleted(room), "0", "-1"),
      },
      options.logger,
    );
    this.presenceStore = new RedisPresence(this.topology, this.keys, this.nodeId, this.call, options.logger);
    this.nodes = new NodeRegistry(this.topology, this.keys, this.nodeId, options.nodeTtlMs, this.call, options.logger);
    this.topology.onError((err) => (this.lastError = err));
  }

  private get cmd() {
    return this.topology.cmd;
  }

  async start(): Promise<void> {
    try {
      await this.topology.connect();
    } catch (err) {
      this.topology.disconnect();
      throw new EngineUnavailableError(`cannot reach Redis at ${this.topology.where}: ${describe(this.lastError ?? err)}`, { cause: err });
    }
    this.started = true;
    this.nodes.onRevived = () => void this.presenceStore.restore(true);
    this.nodes.afterBeat = () => void this.presenceStore.retryRemovals();
    await this.nodes.start();
    const log = this.options.logger;
    let reported = false;
    this.topology.onError((err) => {
      if (this.topology.ready || reported) return;
      reported = true; // one line per outage, not one per retry
      log.warn({ err: describe(err) }, "redis connection error");
    });
    this.topology.onConnection((name, up) => {
      if (this.closing) return;
      if (up) {
        log.info({ connection: name }, "redis connection restored");
        if (name === "cmd") void this.nodes.beat().catch(() => {}).then(() => this.presenceStore.restore());
        if (this.topology.ready) reported = false;
      } else {
        log.warn({ connection: name }, "redis connection lost");
      }
      this.updateHealth();
    });
    this.updateHealth();
  }

  async close(): Promise<void> {
    if (this.closing) return;
    this.closing = true;
    if (this.cmd.status === "ready") await this.presenceStore.removeAll();
    await this.nodes.stop(this.cmd.status === "ready");
    this.subscriptions.close();
    this.topology.disconnect();
  }

  /**
   * Stops as a crash would: connections dropped, nothing removed from Redis (its presence entries
   * and node record stay until another process notices it is dead). For tests.
   */
  async crash(): Promise<void> {
    this.closing = true;
    await this.nodes.stop(false);
    this.subscriptions.close();
    this.topology.disconnect();
  }

  // ---- messages ---------------------------------------------------------------------------------

  async publishMessage(room: string, draft: MessageDraft): Promise<ChatMessage> {
    const head = '{"event":"broadcast_say","data":{"id":"';
    const user = draft.user === undefined ? "" : `,"user":${JSON.stringify(draft.user)}`;
    const tail = `","username":${JSON.stringify(draft.username)},"text":${JSON.stringify(draft.text)},"ts":${draft.ts}${user}}}`;
    const args = [
      this.options.historySize,
      draft.username,
      draft.text,
      draft.ts,
      draft.user ?? "",
      head,
      tail,
      this.options.historyTtlMs ?? 0,
      this.topology.publish,
    ] as const;
    const keys = [this.keys.history(room), this.keys.deleted(room), this.keys.channel(room)] as const;
    const wait = this.options.wait;
    const id = wait === undefined ? await this.call(() => this.cmd.rcPublishMessage(...keys, ...args)) : await this.publishAndWait(keys, args, wait);
    const message: ChatMessage = { id, username: draft.username, text: draft.text, ts: draft.ts };
    if (draft.user !== undefined) message.user = draft.user;
    return message;
  }

  /**
   * The message's script, then WAIT on the same connection (one pipeline: Redis 7 refuses WAIT
   * inside a script). The message is published whatever WAIT answers, so fewer replicas than asked
   * in time is not a refusal (members already have it): it is counted, and logged once.
   */
  private async publishAndWait(
    keys: readonly [string, string, string],
    args: readonly (string | number)[],
    wait: { replicas: number; timeoutMs: number },
  ): Promise<string> {
    const replies = await this.call(() => this.cmd.pipeline().rcPublishMessage(...keys, ...args).wait(wait.replicas, wait.timeoutMs).exec());
    const [published, waited] = replies ?? [];
    if (!published || published[0]) throw new EngineUnavailableError("Redis refused the message", { cause: published?.[0] });
    const confirmed = waited && !waited[0] ? Number(waited[1]) : 0;
    if (confirmed < wait.replicas) {
      this.options.onWaitShort?.();
      if (!this.waitShortLogged) {
        this.waitShortLogged = true;
        this.options.logger.warn({ asked: wait.replicas, confirmed, timeoutMs: wait.timeoutMs }, "fewer replicas than --redis-wait confirmed a message in time (published anyway; counted in roomcast_redis_wait_short_total, logged once)");
      }
    }
    return published[1] as string;
  }

  async deleteMessage(room: string, id: string): Promise<boolean> {
    const frame = JSON.stringify({ event: "delete", data: { id } });
    const removed = await this.call(() =>
      this.cmd.rcDeleteMessage(this.keys.history(room), this.keys.deleted(room), this.keys.channel(room), id, frame, this.topology.publish),
    );
    return removed === 1;
  }

  async publishNotice(room: string, event: RoomTraffic, exceptMember?: string): Promise<void> {
    const frame: ChannelFrame = exceptMember === undefined ? event : { ...event, except: exceptMember };
    const channel = this.keys.channel(room);
    const raw = JSON.stringify(frame);
    await this.call(() => (this.topology.publish === "SPUBLISH" ? this.cmd.spublish(channel, raw) : this.cmd.publish(channel, raw)));
  }

  subscribe(room: string, listener: RoomListener): Promise<void> {
    return this.subscriptions.subscribe(room, listener);
  }

  unsubscribe(room: string): Promise<void> {
    return this.subscriptions.unsubscribe(room);
  }

  delivered(room: string): string | undefined {
    return this.subscriptions.delivered(room);
  }

  async history(room: string, query: HistoryQuery): Promise<HistoryData> {
    const key = this.keys.history(room);
    if (query.since === undefined) {
      // nothing is before the smallest id (and Redis refuses an exclusive range ending there)
      if (query.before === "0-0") return { messages: [], truncated: false };
      const end = query.before === undefined ? "+" : `(${query.before}`;
      // the largest id has no id before it that Redis would take as exclusive end: "+" is the same
      const entries = (await this.call(() =>
        this.cmd.xrevrange(key, query.before === MAX_ID ? "+" : end, "-", "COUNT", query.limit + 1),
      )) as StreamEntry[];
      const truncated = entries.length > query.limit;
      return { messages: entries.slice(0, query.limit).reverse().map(toMessage), truncated };
    }
    const since = query.since;
    const [truncated, entries] = await this.call(() =>
      this.cmd.rcHistorySince(key, this.keys.deleted(room), since, since === MAX_ID ? "0" : "1"),
    );
    return { messages: entries.map(toMessage), truncated: truncated === 1 };
  }

  // ---- presence ---------------------------------------------------------------------------------

  addPresence(room: string, entry: PresenceEntry, announce?: { ts: number; rejoin: boolean }): Promise<number> {
    return this.presenceStore.add(room, entry, announce);
  }

  removePresence(room: string, member: string, announce?: { ts: number }): Promise<void> {
    return this.presenceStore.remove(room, member, announce);
  }

  changePresence(room: string, changes: PresenceChanges): Promise<void> {
    return this.presenceStore.change(room, changes);
  }

  presence(room: string): Promise<PresenceUser[]> {
    return this.presenceStore.list(room);
  }

  presenceSnapshot(room: string): Promise<PresenceSnapshot> {
    return this.presenceStore.snapshot(room);
  }

  rooms(): Promise<RoomSummary[]> {
    return this.presenceStore.rooms();
  }

  async ban(room: string, user: string, untilMs: number): Promise<void> {
    const ms = Math.max(1, Math.ceil(untilMs - Date.now()));
    await this.call(() => this.cmd.set(this.keys.ban(room, user), String(untilMs), "PX", ms));
  }

  async banned(room: string, user: string): Promise<boolean> {
    return (await this.call(() => this.cmd.exists(this.keys.ban(room, user)))) === 1;
  }

  // ---- nodes ------------------------------------------------------------------------------------

  setConnectionCount(count: number): void {
    if (this.started && !this.closing) this.nodes.setConnectionCount(count);
  }

  stats(): Promise<ClusterStats> {
    return this.nodes.stats();
  }

  // ---- health -----------------------------------------------------------------------------------

  health(): EngineHealth {
    return this.lastHealth;
  }

  onHealthChange(listener: (health: EngineHealth) => void): void {
    this.healthListeners.push(listener);
  }

  private updateHealth(): void {
    const ok = this.topology.ready;
    const health: EngineHealth = ok ? { ok } : { ok, reason: "redis unreachable" };
    if (health.ok === this.lastHealth.ok && health.reason === this.lastHealth.reason) return;
    this.lastHealth = health;
    for (const listener of this.healthListeners) listener(health);
  }
}

function toMessage([id, fields]: StreamEntry): ChatMessage {
  let username = "";
  let text = "";
  let ts = 0;
  let user: string | undefined;
  for (let i = 0; i < fields.length; i += 2) {
    const value = fields[i + 1] ?? "";
    switch (fields[i]) {
      case "u":
        username = value;
        break;
      case "t":
        text = value;
        break;
      case "ts":
        ts = Number(value);
        break;
      case "i":
        user = value;
        break;
    }
  }
  return user === undefined ? { id, username, text, ts } : { id, username, text, ts, user };
}

function describe(err: unknown): string {
  if (err instanceof AggregateError && err.errors.length > 0) return describe(err.errors[0]);
  return err instanceof Error ? err.message : String(err);
}
