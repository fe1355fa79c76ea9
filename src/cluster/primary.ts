/**
 * The cluster primary, the article's cluster.js made dependable: one worker per core, worker i on
 * port-base + i, restarted when it dies (with backoff; a worker that keeps crashing stops the
 * cluster with the reason rather than loop), the machine's connection count kept from what the
 * workers report over IPC, a graceful stop on SIGTERM/SIGINT and a rolling restart on SIGHUP.
 *
 * Workers are forked with node:cluster under SCHED_NONE: a worker opens its own port, and a
 * replacement opens the same port while the old worker still holds it (the primary shares the
 * listening handle), so on SIGHUP a worker is replaced only after its successor listens, and its
 * port never stops accepting.
 */
import cluster, { type Worker } from "node:cluster";
import { fileURLToPath } from "node:url";
import type { Logger } from "pino";
import { redisTarget, WORKER_CONFIG_VARIABLE, type ClusterConfig, type ServeConfig } from "../config.js";
import { createTopology, type RedisTarget } from "../engine/redis/topology.js";
import { isWorkerReport } from "./messages.js";

const WORKER_SCRIPT = fileURLToPath(new URL("./worker.js", import.meta.url));

/** A worker crashing this often within CRASH_WINDOW_MS stops the cluster. */
const MAX_CRASHES = 5;
const CRASH_WINDOW_MS = 60_000;
/** The primary logs the connection count at most this often. */
const COUNT_LOG_INTERVAL_MS = 2_000;
/** The whole cluster stops within this, gracefully or not. */
const STOP_DEADLINE_MS = 10_000;

interface Slot {
  index: number;
  port: number;
  /** The worker that serves this port now. */
  worker: Worker | undefined;
  crashes: number[];
  lastFatal: string | undefined;
  restartTimer: NodeJS.Timeout | undefined;
}

export class ClusterPrimary {
  private readonly slots: Slot[];
  /** Connections reported by each live worker (by worker id). */
  private readonly connections = new Map<number, number>();
  /** Workers being stopped on purpose (rolling restart, stop): their exit is no crash. */
  private readonly retiring = new WeakSet<Worker>();
  private started = false;
  private stopping = false;
  private rolling = false;
  private lastCountLogged = -1;
  private lastCountLogAt = 0;
  private countTimer: NodeJS.Timeout | undefined;

  constructor(
    private readonly config: ClusterConfig,
    private readonly logger: Logger,
  ) {
    this.slots = Array.from({ length: config.workers }, (_, index) => ({
      index,
      port: config.portBase + index,
      worker: undefined,
      crashes: [],
      lastFatal: undefined,
      restartTimer: undefined,
    }));
  }

  /** Starts every worker; resolves once all listen, rejects (after stopping) if one cannot start. */
  async start(): Promise<void> {
    await checkRedis(redisTarget(this.config)!);
    cluster.schedulingPolicy = cluster.SCHED_NONE;
    cluster.setupPrimary({ exec: WORKER_SCRIPT, args: [] });
    try {
      await Promise.all(this.slots.map((slot) => this.spawn(slot)));
    } catch (err) {
      await this.stop();
      throw err;
    }
    this.started = true;
    this.logger.info(
      { workers: this.slots.length, ports: `${this.config.portBase}-${this.config.portBase + this.slots.length - 1}` },
      "cluster ready",
    );
  }

  /** Forks a worker for the slot; resolves when it listens, rejects if it exits before. */
  private spawn(slot: Slot): Promise<Worker> {
    const { workers: _w, portBase: _p, ...serve } = this.config;
    const config: ServeConfig = { ...serve, port: slot.port };
    const worker = cluster.fork({ [WORKER_CONFIG_VARIABLE]: JSON.stringify({ index: slot.index, config }) });
    return new Promise<Worker>((resolve, reject) => {
      let listening = false;
      worker.on("message", (message: unknown) => {
        if (!isWorkerReport(message)) return;
        if (message.type === "listening") {
          listening = true;
          this.logger.info({ worker: slot.index, workerPid: worker.process.pid, port: message.port }, "worker listening");
          resolve(worker);
        } else if (message.type === "connections") {
          this.connections.set(worker.id, message.count);
          this.countChanged();
        } else if (message.type === "fatal") {
          slot.lastFatal = message.message;
        }
      });
      worker.on("exit", (code, signal) => {
        this.connections.delete(worker.id);
        this.countChanged();
        if (!listening) reject(new Error(slot.lastFatal ?? `worker ${slot.index} exited (${signal ?? code}) before listening`));
        this.onExit(slot, worker, code, signal);
      });
      if (!this.rolling || slot.worker === undefined) slot.worker = worker;
    });
  }

  private onExit(slot: Slot, worker: Worker, code: number | null, signal: string | null): void {
    if (this.retiring.has(worker) || this.stopping) return;
    if (slot.worker !== worker) return; // a failed replacement; the old worker still serves
    slot.worker = undefined;
    const now = Date.now();
    slot.crashes = slot.crashes.filter((t) => now - t < CRASH_WINDOW_MS);
    slot.crashes.push(now);
    const why = slot.lastFatal ?? (signal ? `killed by ${signal}` : `exit code ${code}`);
    if (slot.crashes.length >= MAX_CRASHES) {
      this.logger.fatal({ worker: slot.index, port: slot.port, crashes: slot.crashes.length, reason: why }, "worker keeps crashing; stopping the cluster");
      process.stderr.write(
        `roomcast: worker ${slot.index} (port ${slot.port}) crashed ${slot.crashes.length} times in a minute (${why}); stopping\n`,
      );
      void this.stop().then(() => process.exit(1));
      return;
    }
    const delay = Math.min(250 * 2 ** (slot.crashes.length - 1), 5000);
    this.logger.warn({ worker: slot.index, port: slot.port, reason: why, restartInMs: delay }, "worker died; restarting");
    slot.restartTimer = setTimeout(() => {
      slot.restartTimer = undefined;
      if (!this.stopping) this.spawn(slot).catch(() => {}); // its exit is handled like any other
    }, delay);
  }

  /** The machine's open connections, from the workers' reports. */
  get connectionCount(): number {
    let total = 0;
    for (const n of this.connections.values()) total += n;
    return total;
  }

  private countChanged(): void {
    if (this.countTimer) return;
    const wait = Math.max(0, this.lastCountLogAt + COUNT_LOG_INTERVAL_MS - Date.now());
    this.countTimer = setTimeout(() => {
      this.countTimer = undefined;
      const total = this.connectionCount;
      if (total === this.lastCountLogged) return;
      this.lastCountLogged = total;
      this.lastCountLogAt = Date.now();
      this.logger.info({ connections: total }, "connections");
    }, wait);
    this.countTimer.unref();
  }

  /**
   * Replaces the workers one at a time: the new one first, on the same port; the old one is told
   * to stop only once the new one listens. The chat never stops.
   */
  async rollingRestart(): Promise<void> {
    if (!this.started || this.rolling || this.stopping) return;
    this.rolling = true;
    this.logger.info("rolling restart");
    try {
      for (const slot of this.slots) {
        const old = slot.worker;
        let fresh: Worker;
        try {
          fresh = await this.spawn(slot);
        } catch (err) {
          this.logger.error({ worker: slot.index, err: (err as Error).message }, "replacement did not start; keeping the old worker");
          return;
        }
        slot.worker = fresh;
        if (old) await this.retire(old);
        if (this.stopping) return;
      }
      this.logger.info("rolling restart done");
    } finally {
      this.rolling = false;
    }
  }

  private retire(worker: Worker): Promise<void> {
    this.retiring.add(worker);
    if (worker.isDead()) return Promise.resolve();
    return new Promise((resolve) => {
      worker.once("exit", () => resolve());
      worker.process.kill("SIGTERM");
      setTimeout(() => worker.process.kill("SIGKILL"), STOP_DEADLINE_MS - 1000).unref();
    });
  }

  /** Graceful stop: every worker stops accepting, tells its clients to reconnect, removes its presence. */
  async stop(): Promise<void> {
    if (this.stopping) return;
    this.stopping = true;
    for (const slot of this.slots) clearTimeout(slot.restartTimer);
    const workers = Object.values(cluster.workers ?? {}).filter((w): w is Worker => w !== undefined);
    await Promise.all(workers.map((w) => this.retire(w)));
    clearTimeout(this.countTimer);
  }
}

/** One clear line when Redis cannot be reached, before any worker is forked. */
async function checkRedis(target: RedisTarget): Promise<void> {
  const topology = createTopology(target, { name: `primary-${process.pid}`, retry: () => false });
  let lastError: unknown;
  topology.onError((err) => (lastError = err));
  try {
    await topology.connect();
    await topology.cmd.ping();
  } catch (err) {
    const reason = (lastError ?? err) instanceof Error ? ((lastError ?? err) as Error).message : String(lastError ?? err);
    throw new Error(`cannot reach Redis at ${topology.where}: ${reason}`);
  } finally {
    topology.disconnect();
  }
}
