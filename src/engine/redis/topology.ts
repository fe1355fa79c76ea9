/**
 * Where the Redis engine's data lives and how it reaches it: the one part of the engine that
 * changes with the topology (one Redis; a master with replicas behind Sentinel; a Redis Cluster).
 * Everything else — the scripts, the subscriptions with their replay, presence, the node registry —
 * talks to Redis through this seam: a command connection, a subscriber connection with
 * `subscribe`/`unsubscribe`/`message`, the publishing command the scripts use, and whether keys
 * carry hash tags.
 */
import { EventEmitter } from "node:events";
import { Cluster, Redis, type ClusterOptions, type RedisOptions } from "ioredis";
import { SCRIPTS } from "./scripts.js";

export interface HostPort {
  host: string;
  port: number;
}

/** Which Redis, as the configuration gives it. */
export type RedisTarget =
  | { kind: "single"; url: string }
  | { kind: "sentinel"; sentinels: HostPort[]; name: string; password?: string | undefined }
  | { kind: "cluster"; nodes: HostPort[]; password?: string | undefined };

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
  switch (target.kind) {
    case "single":
      return new MasterTopology(target, options);
    case "sentinel":
      return new MasterTopology(target, options);
    case "cluster":
      return new ClusterTopology(target, options);
  }
}

const list = (nodes: HostPort[]) => nodes.map((n) => `${n.host}:${n.port}`).join(",");

/**
 * One Redis, or the master that Sentinel names: two connections (commands, subscriptions) and
 * classic pub/sub. Behind Sentinel, ioredis asks the sentinels for the master at every connect;
 * `failoverDetector` also drops the connection as soon as a sentinel announces a new master, so a
 * master that hangs (no error, no close) is left in seconds, not never.
 */
class MasterTopology implements Topology {
  readonly kind: "single" | "sentinel";
  readonly publish = "PUBLISH";
  readonly hashTags = false;
  readonly cmd: Redis;
  readonly sub: ChannelSubscriber;
  readonly where: string;

  constructor(target: Extract<RedisTarget, { kind: "single" | "sentinel" }>, options: TopologyOptions) {
    this.kind = target.kind;
    const common = commonOptions(options);
    const make = (role: string) =>
      target.kind === "single"
        ? new Redis(target.url, { ...common, connectionName: `roomcast-${role}-${options.name}` })
        : new Redis({
            ...common,
            connectionName: `roomcast-${role}-${options.name}`,
            sentinels: target.sentinels,
            name: target.name,
            ...(target.password === undefined ? {} : { password: target.password }),
            failoverDetector: true,
            // a connection dropped on a failover goes at once, not after the default 2 s
            disconnectTimeout: 100,
            sentinelRetryStrategy: (times: number) => (options.retry() ? Math.min(100 * times, 1000) : null),
          });
    this.cmd = make("cmd");
    this.sub = new ChannelSubscriber(make("sub"));
    // ioredis gives a connection up for good ("end") when the failover detector drops it while it
    // is asking the sentinels for the master (measured: 1 run in 5 under load, a subscriber that
    // never came back). Once running, a connection is never given up: start it again.
    for (const client of [this.cmd, this.sub.client]) {
      client.on("end", () => {
        if (options.retry()) setTimeout(() => void client.connect().catch(() => {}), 100);
      });
    }
    for (const [name, [keys, lua]] of Object.entries(SCRIPTS)) this.cmd.defineCommand(name, { numberOfKeys: keys, lua });
    this.where = target.kind === "single" ? redactUrl(target.url) : `sentinel ${target.name} at ${list(target.sentinels)}`;
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

/**
 * A Redis Cluster: a room's keys and channel share its hash tag, so each script runs on the room's
 * shard, and its channel is a shard channel (SPUBLISH/SSUBSCRIBE: a message goes to the shard's
 * subscribers only, instead of every node's as classic pub/sub in a cluster does). Commands and
 * subscriptions are two ioredis Cluster clients; ioredis follows MOVED/ASK and slot moves.
 */
class ClusterTopology implements Topology {
  readonly kind = "cluster";
  readonly publish = "SPUBLISH";
  readonly hashTags = true;
  readonly cmd: Redis;
  private readonly cluster: Cluster;
  readonly sub: ShardSubscriber;
  readonly where: string;
  private healthy = true;
  private checker: NodeJS.Timeout | undefined;
  private readonly listeners: ((name: "cmd" | "sub", up: boolean) => void)[] = [];

  constructor(target: Extract<RedisTarget, { kind: "cluster" }>, options: TopologyOptions) {
    const common = commonOptions(options);
    const clusterOptions = (role: string): ClusterOptions => ({
      lazyConnect: true,
      enableOfflineQueue: false,
      clusterRetryStrategy: (times: number) => (options.retry() ? Math.min(100 * times, 1000) : null),
      redisOptions: { ...common, connectionName: `roomcast-${role}-${options.name}`, ...(target.password === undefined ? {} : { password: target.password }) },
    });
    this.cluster = new Cluster(target.nodes, clusterOptions("cmd"));
    // The Cluster client has the commands the engine uses, under the same names: one type for both.
    this.cmd = this.cluster as unknown as Redis;
    this.sub = new ShardSubscriber(new Cluster(target.nodes, { ...clusterOptions("sub"), shardedSubscribers: true }));
    for (const [name, [keys, lua]] of Object.entries(SCRIPTS)) this.cluster.defineCommand(name, { numberOfKeys: keys, lua });
    this.where = `cluster at ${list(target.nodes)}`;
  }

  get ready(): boolean {
    return this.cluster.status === "ready" && this.sub.ready && this.healthy;
  }

  async connect(): Promise<void> {
    await Promise.all([this.cluster.connect(), this.sub.client.connect()]);
    await this.sub.started;
    // One shard down leaves the others serving, but its rooms fail: health looks at every master.
    this.checker = setInterval(() => void this.check(), 1000);
    this.checker.unref();
  }

  private async check(): Promise<void> {
    const masters = this.cluster.nodes("master");
    const ok = masters.length > 0 && (await Promise.all(masters.map((m) => m.ping().then(() => true, () => false)))).every(Boolean);
    if (ok === this.healthy) return;
    this.healthy = ok;
    for (const listener of this.listeners) listener("cmd", ok);
  }

  disconnect(): void {
    clearInterval(this.checker);
    this.cluster.disconnect();
    this.sub.client.disconnect();
  }

  async *scan(pattern: string): AsyncIterable<string> {
    for (const node of this.cluster.nodes("master")) {
      let cursor = "0";
      do {
        const [next, keys] = await node.scan(cursor, "MATCH", pattern, "COUNT", 1000);
        cursor = next;
        yield* keys;
      } while (cursor !== "0");
    }
  }

  onError(listener: (err: unknown) => void): void {
    this.cluster.on("error", listener);
    this.cluster.on("node error", listener);
    this.sub.client.on("error", listener);
  }

  onConnection(listener: (name: "cmd" | "sub", up: boolean) => void): void {
    this.listeners.push(listener);
    watch(this.cluster, (up) => listener("cmd", up));
  }
}

/**
 * Sharded pub/sub on a Cluster. When a channel's slot moves (Redis sends `sunsubscribe`) or its
 * master fails over, ioredis subscribes again and emits `subscribersReady` (measured with ioredis
 * 6: back in 40–130 ms after a slot move; many times over during a failover, also before Redis
 * has confirmed). Each burst of those is one `lost` (live messages wait from now on) and, 50 ms
 * after the last, one `restored`: the engine subscribes again (awaited) and replays from history
 * what the gap held, so a resubscribe that came too late costs latency, never messages.
 */
class ShardSubscriber extends EventEmitter implements Subscriber {
  private settle: NodeJS.Timeout | undefined;
  /** The first `subscribersReady` is the subscribers starting, not coming back: nothing was lost. */
  private armed = false;
  /** Resolves at the first `subscribersReady` (or after 5 s: armed anyway). */
  readonly started: Promise<void>;

  constructor(readonly client: Cluster) {
    super();
    let start!: () => void;
    this.started = new Promise((resolve) => (start = resolve));
    const arm = () => {
      this.armed = true;
      start();
    };
    const fallback = setTimeout(arm, 5000);
    fallback.unref();
    client.on("smessage", (channel: string, raw: string) => this.emit("message", channel, raw));
    client.on("subscribersReady", () => {
      if (!this.armed) {
        clearTimeout(fallback);
        return arm();
      }
      this.emit("lost");
      clearTimeout(this.settle);
      this.settle = setTimeout(() => this.emit("restored"), 50);
    });
  }

  get ready(): boolean {
    return this.client.status === "ready";
  }

  async subscribe(channels: string[]): Promise<void> {
    // one SSUBSCRIBE per channel: a command's channels must share a slot
    await Promise.all(channels.map((channel) => this.client.ssubscribe(channel)));
  }

  async unsubscribe(channels: string[]): Promise<void> {
    await Promise.all(channels.map((channel) => this.client.sunsubscribe(channel)));
  }
}

/** Tells when a connection that was up goes down ("close") and when it is ready again. */
function watch(client: Redis | Cluster, listener: (up: boolean) => void): void {
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
