/**
 * Where the Redis engine's data lives and how it reaches it: the one part of the engine that
 * changes with the topology (one Redis; a master with replicas behind Sentinel; a Redis Cluster).
 * Everything else — the scripts, the subscriptions with their replay, presence, the node registry —
 * talks to Redis through this seam: a command connection, a subscriber connection with
 * `subscribe`/`unsubscribe`/`message`, the publishing command the scripts use, and whether keys
 * carry hash tags.
 */
import { EventEmitter } from "node:events";
import { Redis, type RedisOptions } from "ioredis";
import { SCRIPTS } from "./scripts.js";

/** Which Redis, as the configuration gives it. */
export type RedisTarget = { kind: "single"; url: string };

/**
 * The subscriber side of a topology. Emits `message(channel, raw)`, `lost()` when its
 * subscriptions may have missed messages (connection lost), and `restored()` when it is connected
 * again, with no subscription: the engine subscribes again and replays from history.
 */
export interface Subscriber extends EventEmitter {
  subscribe(channels: string[]): Promise<void>;
  unsubscribe(channels: string[]): Promise<void>;
  readonly ready: boolean;
}

export interface Topology {
  readonly kind: RedisTarget["kind"];
  /** The connection for commands and scripts (`SCRIPTS` defined on it). */
  readonly cmd: Redis;
  readonly sub: Subscriber;
  /** PUBLISH, or SPUBLISH on a Cluster (sharded pub/sub: a message goes to its shard only). */
  readonly publish: "PUBLISH" | "SPUBLISH";
  /** Room keys carry the room as hash tag (a Cluster), so a room's script runs on one shard. */
  readonly hashTags: boolean;
  /** Where, for log lines and errors (no password). */
  readonly where: string;
  /** Every key matching the pattern, on every master (SCAN: never KEYS). */
  scan(pattern: string): AsyncIterable<string>;
  connect(): Promise<void>;
  disconnect(): void;
  /** Both connections are up. */
  readonly ready: boolean;
  /** Called with every connection error, for the reason of a failed start. */
  onError(listener: (err: unknown) => void): void;
  /** "cmd" or "sub" lost, or back. */
  onConnection(listener: (name: "cmd" | "sub", up: boolean) => void): void;
}

export interface TopologyOptions {
  /** connectionName suffix, to find this process's connections in CLIENT LIST. */
  name: string;
  /** Reconnect once running; at start an unreachable Redis is an error. */
  retry: () => boolean;
}

/** The options every connection shares. */
function commonOptions(options: TopologyOptions): RedisOptions {
  return {
    lazyConnect: true,
    // Fail at once while Redis is unreachable: a `say` is answered UNAVAILABLE rather than
    // waiting in a queue the sender cannot see.
    enableOfflineQueue: false,
    maxRetriesPerRequest: 0,
    commandTimeout: 5000,
    connectTimeout: 3000,
    // Subscriptions are restored by the engine (with replay of what was missed), not by ioredis.
    autoResubscribe: false,
    retryStrategy: (times: number) => (options.retry() ? Math.min(100 * times, 1000) : null),
  };
}

export function createTopology(target: RedisTarget, options: TopologyOptions): Topology {
  return new SingleTopology(target.url, options);
}

/** One Redis (also what Sentinel resolves to: a master). */
class SingleTopology implements Topology {
  readonly kind = "single";
  readonly publish = "PUBLISH";
  readonly hashTags = false;
  readonly cmd: Redis;
  readonly sub: ChannelSubscriber;
  readonly where: string;

  constructor(url: string, options: TopologyOptions) {
    const common = commonOptions(options);
    this.cmd = new Redis(url, { ...common, connectionName: `roomcast-cmd-${options.name}` });
    this.sub = new ChannelSubscriber(new Redis(url, { ...common, connectionName: `roomcast-sub-${options.name}` }));
    for (const [name, [keys, lua]] of Object.entries(SCRIPTS)) this.cmd.defineCommand(name, { numberOfKeys: keys, lua });
    this.where = redactUrl(url);
  }

  get ready(): boolean {
    return this.cmd.status === "ready" && this.sub.ready;
  }

  async connect(): Promise<void> {
    await Promise.all([this.cmd.connect(), this.sub.client.connect()]);
  }

  disconnect(): void {
    this.cmd.disconnect();
    this.sub.client.disconnect();
  }

  async *scan(pattern: string): AsyncIterable<string> {
    let cursor = "0";
    do {
      const [next, keys] = await this.cmd.scan(cursor, "MATCH", pattern, "COUNT", 1000);
      cursor = next;
      yield* keys;
    } while (cursor !== "0");
  }

  onError(listener: (err: unknown) => void): void {
    this.cmd.on("error", listener);
    this.sub.client.on("error", listener);
  }

  onConnection(listener: (name: "cmd" | "sub", up: boolean) => void): void {
    watch(this.cmd, (up) => listener("cmd", up));
    watch(this.sub.client, (up) => listener("sub", up));
  }
}

/** Tells when a connection that was up goes down ("close") and when it is ready again. */
function watch(client: Redis, listener: (up: boolean) => void): void {
  let down = false;
  client.on("close", () => {
    if (down) return;
    down = true;
    listener(false);
  });
  client.on("ready", () => {
    if (!down) return;
    down = false;
    listener(true);
  });
}

/** Classic pub/sub on one connection. */
class ChannelSubscriber extends EventEmitter implements Subscriber {
  constructor(readonly client: Redis) {
    super();
    client.on("message", (channel: string, raw: string) => this.emit("message", channel, raw));
    watch(client, (up) => this.emit(up ? "restored" : "lost"));
  }

  get ready(): boolean {
    return this.client.status === "ready";
  }

  async subscribe(channels: string[]): Promise<void> {
    await this.client.subscribe(...channels);
  }

  async unsubscribe(channels: string[]): Promise<void> {
    await this.client.unsubscribe(...channels);
  }
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
