/**
 * The processes of one chat, in Redis: each renews its own record (heartbeat with expiry, and its
 * connection count), and each looks every second for records that expired — a process killed
 * without a word, a machine lost, a link cut. Exactly one live process claims a dead one
 * (CLAIM_DEAD_NODES), takes its connections out of every room it had members in and tells each
 * room once, with a presence_diff: a dead process's members leave every page within the node TTL.
 */
import type { Logger } from "pino";
import type { ClusterStats } from "../engine.js";
import type { RedisKeys } from "./keys.js";
import type { Topology } from "./topology.js";

type Call = <T>(fn: () => Promise<T>) => Promise<T>;

/** How often a process looks for dead ones (the node TTL bounds how late it can notice). */
const REAP_INTERVAL_MS = 1000;
/** How long a claim on a dead process lasts before another process may claim it again. */
const REAP_LEASE_MS = 30_000;

export class NodeRegistry {
  private connections = 0;
  private heartbeat: NodeJS.Timeout | undefined;
  private reaper: NodeJS.Timeout | undefined;
  private pendingReport: NodeJS.Timeout | undefined;
  private reaping = false;
  private stopped = false;

  constructor(
    private readonly topology: Topology,
    private readonly keys: RedisKeys,
    private readonly nodeId: string,
    private readonly ttlMs: number,
    private readonly call: Call,
    private readonly logger: Logger,
  ) {}

  private get cmd() {
    return this.topology.cmd;
  }

  /** Registers this process and starts the heartbeat and the reaper. */
  async start(): Promise<void> {
    await this.beat();
    this.heartbeat = setInterval(() => void this.beat().then(() => this.afterBeat?.(), () => {}), Math.max(250, this.ttlMs / 3));
    this.heartbeat.unref();
    this.reaper = setInterval(() => void this.reap(), Math.min(REAP_INTERVAL_MS, this.ttlMs / 3));
    this.reaper.unref();
  }

  /** Stops the timers; with `remove`, takes this process's record out at once. */
  async stop(remove: boolean): Promise<void> {
    this.stopped = true;
    clearInterval(this.heartbeat);
    clearInterval(this.reaper);
    clearTimeout(this.pendingReport);
    if (remove) await this.cmd.rcNodeRemove(this.keys.nodes, this.keys.connections, this.keys.nodeRooms(this.nodeId), this.nodeId).catch(() => {});
  }

  setConnectionCount(count: number): void {
    if (count === this.connections) return;
    this.connections = count;
    // Report soon, not at the next heartbeat, so /api/stats on other nodes is current; at most
    // one write per 100 ms however fast connections come and go.
    if (this.pendingReport || this.stopped) return;
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

  /**
   * Renews this process's record. After the first beat, finding itself missing means another
   * process declared it dead (a pause longer than the TTL: GC, SIGSTOP, a VM frozen) and took its
   * members out of presence: `onRevived` puts them back.
   */
  async beat(): Promise<number> {
    const added = await this.call(() => this.cmd.rcHeartbeat(this.keys.nodes, this.keys.connections, this.nodeId, this.ttlMs, this.connections));
    if (added === 1 && this.beaten && !this.stopped) {
      this.logger.warn({ node: this.nodeId }, "this process had been taken for dead (a pause longer than --node-ttl): putting its members back in presence");
      this.onRevived?.();
    }
    this.beaten = true;
    return added;
  }

  /** Called after each periodic heartbeat that reached Redis; set by the engine. */
  afterBeat: (() => void) | undefined;
  /** Called when this process finds it was taken for dead; set by the engine. */
  onRevived: (() => void) | undefined;
  private beaten = false;

  /** Claims the dead processes and takes their members out of presence, room by room. */
  private async reap(): Promise<void> {
    if (this.reaping || this.stopped || this.cmd.status !== "ready") return;
    this.reaping = true;
    try {
      const dead = await this.cmd.rcClaimDeadNodes(this.keys.nodes, this.keys.connections, this.keys.reaping, REAP_LEASE_MS);
      for (const node of dead) {
        const rooms = await this.cmd.smembers(this.keys.nodeRooms(node));
        let removed = 0;
        const ts = Date.now();
        for (const room of rooms) {
          removed += await this.cmd.rcReapRoom(this.keys.presence(room), this.keys.version(room), this.keys.channel(room), `${node}/`, ts, this.topology.publish);
        }
        await this.cmd.del(this.keys.nodeRooms(node));
        await this.cmd.zrem(this.keys.reaping, node);
        this.logger.info({ node, rooms: rooms.length, connections: removed }, "a dead process's members left presence");
      }
    } catch {
      // Redis unreachable: the claim's lease runs out and someone tries again
    } finally {
      this.reaping = false;
    }
  }
}
