/**
 * `npm run bench:redis`: roomcast on one Redis against roomcast on a 3-shard Redis Cluster, each
 * with and without `--redis-wait 1`, on this machine, the systems alternating, ROUNDS times.
 *
 * The systems, each `roomcast cluster --workers 2` (rate limits raised for the bench) on:
 *   - one Redis: a master and one replica (`redis-server --replicaof`), `--redis` to the master;
 *   - a Redis Cluster: 3 masters with one replica each (test/helpers/redis-cluster.ts),
 *     `--redis-cluster`;
 * and each of those with `--redis-wait 1` (WAIT for one replica, 500 ms at most). One Redis has
 * its replica also without WAIT, as the Cluster has: the two rows of a topology differ by WAIT only.
 * Nothing is saved to disk (no RDB, no AOF).
 *
 * The workload has many rooms (ROOMS × CLIENTS, every client sending; 500 × 4 by default), so that
 * rooms spread over the shards, driven by `roomcast bench` (runBench, 2 generator processes).
 * Measured in the window of each run:
 *   1. Redis CPU per 1000 messages: INFO cpu (used_cpu_sys + used_cpu_user) of every master at the
 *      start and the end of the window, summed, ÷ the messages the masters stored meanwhile (XADD
 *      calls in INFO commandstats, which counts the commands of scripts) × 1000; also per shard;
 *   2. the message rate where p99 passes 100 ms: the rates of STEPS one after another on the same
 *      processes, without --redis-wait, until p99 > 100 ms or delivery < 99.9 %;
 *   3. the cost of --redis-wait 1: p50/p99 and roomcast's and Redis's CPU at RATE messages/s, with
 *      and without.
 * Prints markdown tables (medians over the rounds) and writes redis.json (every run) and redis.svg
 * to OUT (default bench/results). RENDER=bench/results/redis.json: no run, the tables and the chart
 * again from the runs saved there.
 *
 * Settings (environment): ROUNDS (3), DURATION (10 s per window), WARMUP (2 s), IDLE (5 s), ROOMS
 * (500), CLIENTS (4 per room), SENDERS (every client), RATE (1000 messages/s), STEPS
 * (500,750,1000,1500,2000,3000,4000,6000 messages/s), PROCS (2 generator processes), ROOMCAST_ARGS
 * (more options for roomcast), OUT, RENDER.
 *
 * Limits: the generator, roomcast and every Redis share this machine's cores, so the Cluster's
 * three masters have no more CPU than one Redis has; CPU per message compares, throughput shows
 * what this machine does. Redis's background work in a window (roomcast's heartbeats, the
 * Cluster's gossip, replication pings) is in its CPU and spread over the messages: IDLE seconds
 * with roomcast up and nothing sent, before each cost run, measure it ("of which without traffic").
 */
import { realpathSync, mkdirSync, readFileSync, writeFileSync } from "node:fs";
import { availableParallelism, cpus, loadavg } from "node:os";
import { join } from "node:path";
import { fileURLToPath } from "node:url";
import { runBench, type BenchReport } from "./bench.js";
import { startCluster as startRedisCluster } from "../test/helpers/redis-cluster.js";
import { parseInfo, redisCall, redisNode, type Address } from "../test/helpers/redis-admin.js";
import { Cleanup, eventually, freePort, startChild, withTimeout, type Child } from "../test/helpers/processes.js";
import { CLI, freePortRange, metric } from "../test/helpers/roomcast.js";

export type Topology = "single" | "cluster";
export type SystemName = "redis" | "redis-wait" | "cluster" | "cluster-wait";

export const SYSTEMS: Record<SystemName, { topology: Topology; wait: boolean; label: string }> = {
  redis: { topology: "single", wait: false, label: "one Redis" },
  "redis-wait": { topology: "single", wait: true, label: "one Redis, --redis-wait 1" },
  cluster: { topology: "cluster", wait: false, label: "Cluster 3+3" },
  "cluster-wait": { topology: "cluster", wait: true, label: "Cluster 3+3, --redis-wait 1" },
};
const systemOf = (topology: Topology, wait: boolean): SystemName => (topology === "single" ? (wait ? "redis-wait" : "redis") : wait ? "cluster-wait" : "cluster");

/** When a step of the step-up holds. */
export interface Limits {
  minRatio: number;
  maxP99Ms: number;
}

export interface Plan {
  rounds: number;
  /** Measured seconds of each run, after `warmupS` of sending. */
  durationS: number;
  warmupS: number;
  /**
   * Seconds of Redis's CPU measured with roomcast up and no traffic, before each cost run: the
   * background (heartbeats, the Cluster's gossip, replication pings) the per-message figures hold.
   */
  idleS: number;
  rooms: number;
  /** Clients per room; `senders` of them send. */
  clients: number;
  senders: number;
  /** Messages per second, in all, of the runs that measure the cost (1 and 3). */
  rate: number;
  /** Messages per second, in all, of each step of the step-up (2). */
  steps: number[];
  limits: Limits;
  /** Generator processes. */
  procs: number;
  /** More options for roomcast. */
  roomcastArgs: string[];
}

export const DEFAULT_LIMITS: Limits = { minRatio: 0.999, maxP99Ms: 100 };

// ---------------------------------------------------------------------------------------------
// Redis topologies

export interface Deployment {
  readonly topology: Topology;
  /** roomcast's options to reach it. */
  readonly flags: string[];
  /** The masters, one per shard; on a Cluster in the order of their slots. */
  readonly masters: Address[];
  readonly replicas: Address[];
  stop(): Promise<void>;
}

const serverArgs = (port: number, replicaOf?: number) => (dir: string) => [
  "--port", String(port), "--bind", "127.0.0.1", "--dir", dir,
  "--save", "", "--appendonly", "no", "--daemonize", "no", "--protected-mode", "no",
  "--loglevel", "warning", "--logfile", "",
  "--repl-diskless-sync", "yes", "--repl-diskless-sync-delay", "0",
  ...(replicaOf === undefined ? [] : ["--replicaof", "127.0.0.1", String(replicaOf)]),
];

/** One Redis master with one replica (for --redis-wait 1), on free ports. */
async function startOneRedis(): Promise<Deployment> {
  const cleanup = new Cleanup();
  try {
    const masterPort = await freePort();
    const master = redisNode(masterPort, "redis-server", serverArgs(masterPort));
    cleanup.add(() => master.remove());
    await master.start();
    const replicaPort = await freePort();
    const replica = redisNode(replicaPort, "redis-server", serverArgs(replicaPort, masterPort));
    cleanup.add(() => replica.remove());
    await replica.start();
    await eventually(
      async () => (parseInfo(await redisCall(replica.address, "INFO", "replication")).master_link_status === "up" ? true : undefined),
      20_000,
      "the replica to sync with its master",
    );
    return { topology: "single", flags: ["--redis", `redis://${master.address}`], masters: [master.address], replicas: [replica.address], stop: () => cleanup.run() };
  } catch (err) {
    await cleanup.run();
    throw err;
  }
}

/** A Redis Cluster of 3 masters with one replica each, on free ports. */
async function startThreeShards(): Promise<Deployment> {
  const cluster = await startRedisCluster();
  try {
    // The test topology fails a master after 1 s of silence (fast failover tests). A master kept
    // from answering that long on a saturated machine would be replaced mid-measurement: the bench
    // gives them Redis's default, 15 s.
    await Promise.all(cluster.nodes.map((node) => redisCall(node, "CONFIG", "SET", "cluster-node-timeout", "15000")));
    const masters = await cluster.masters();
    const replicas = (await Promise.all(masters.map((m) => cluster.replicasOf(m)))).flat();
    return { topology: "cluster", flags: ["--redis-cluster", cluster.nodes.join(",")], masters, replicas, stop: () => cluster.stop() };
  } catch (err) {
    await cluster.stop();
    throw err;
  }
}

export const startDeployment = (topology: Topology): Promise<Deployment> => (topology === "single" ? startOneRedis() : startThreeShards());

/** What one Redis node has counted so far. */
interface NodeCounters {
  /** used_cpu_sys + used_cpu_user: every thread of the process. */
  cpuS: number;
  /** XADD calls: one per message stored (the message script's only XADD). */
  xadds: number;
  /** WAIT calls: one per message with --redis-wait. */
  waits: number;
  role: string;
}

async function readNode(address: Address): Promise<NodeCounters> {
  const info = parseInfo(await redisCall(address, "INFO", "cpu", "commandstats", "replication"));
  const calls = (command: string) => Number(/calls=(\d+)/.exec(info[`cmdstat_${command}`] ?? "")?.[1] ?? 0);
  return { cpuS: Number(info["used_cpu_sys"]) + Number(info["used_cpu_user"]), xadds: calls("xadd"), waits: calls("wait"), role: info["role"] ?? "" };
}

// ---------------------------------------------------------------------------------------------
// One measurement

export interface ShardWindow {
  address: Address;
  cpuS: number;
  /** Messages this master stored in the window. */
  messages: number;
  waits: number;
}

export interface Measured {
  /** Messages per second asked of the generator. */
  messagesPerS: number;
  report: BenchReport;
  /** Each master in the window, in the order of `Deployment.masters`. */
  shards: ShardWindow[];
  /** The replicas' CPU in the window, summed. */
  replicasCpuS: number;
  /** Messages acknowledged although no replica confirmed them within WAIT's 500 ms (roomcast_redis_wait_short_total), over the whole run. */
  waitShort: number;
}

/** roomcast cluster --workers 2 on the deployment; resolves once both workers listen. */
async function startRoomcast(d: Deployment, wait: boolean, plan: Plan): Promise<{ child: Child; urls: string[] }> {
  const base = await freePortRange(2);
  const child = startChild(process.execPath, [
    CLI, "cluster", "--workers", "2", "--port-base", String(base), "--host", "127.0.0.1",
    "--rate-limit", "100000", "--rate-burst", "100000",
    ...d.flags, ...(wait ? ["--redis-wait", "1"] : []), ...plan.roomcastArgs,
  ]);
  try {
    await child.waitForLine((l) => l.includes('"msg":"cluster ready"'), 60_000, "roomcast cluster to be ready");
  } catch (err) {
    await child.stop();
    throw err;
  }
  return { child, urls: [`http://127.0.0.1:${base}`, `http://127.0.0.1:${base + 1}`] };
}

const waitShortOf = async (urls: string[]) => (await Promise.all(urls.map((u) => metric(u, "roomcast_redis_wait_short_total")))).reduce((a, b) => a + b, 0);

/** One bench run at `messagesPerS` in all, with every Redis node's counters over its window. */
async function measure(d: Deployment, urls: string[], plan: Plan, messagesPerS: number, roomPrefix: string): Promise<Measured> {
  const nodes = [...d.masters, ...d.replicas];
  const read = () => Promise.all(nodes.map(readNode));
  let before: NodeCounters[] = [];
  let after: NodeCounters[] = [];
  const shortBefore = await waitShortOf(urls);
  const senders = Math.min(plan.senders, plan.clients);
  const report = await withTimeout(
    runBench({
      urls, rooms: plan.rooms, clients: plan.clients, senders, rate: messagesPerS / (plan.rooms * senders),
      durationS: plan.durationS, warmupS: plan.warmupS, transport: "websocket", procs: plan.procs, joinWindowS: 0, roomPrefix,
      onWindow: async (edge) => {
        if (edge === "start") before = await read();
        else after = await read();
      },
    }),
    (plan.durationS + plan.warmupS) * 1000 + 180_000,
    `no result from the bench at ${messagesPerS} messages/s after ${plan.durationS + plan.warmupS + 180} s`,
  );
  if (before.length === 0 || after.length === 0) throw new Error("the bench's window was not read at both ends (roomcast bench called no onWindow)");
  const failedOver = d.masters.filter((_, i) => after[i]?.role !== "master");
  if (failedOver.length > 0) throw new Error(`${failedOver.join(", ")} was no longer a master at the end of the window (a failover): the run does not count`);
  const shards = d.masters.map((address, i) => ({
    address,
    cpuS: after[i]!.cpuS - before[i]!.cpuS,
    messages: after[i]!.xadds - before[i]!.xadds,
    waits: after[i]!.waits - before[i]!.waits,
  }));
  let replicasCpuS = 0;
  for (let i = d.masters.length; i < nodes.length; i++) replicasCpuS += after[i]!.cpuS - before[i]!.cpuS;
  return { messagesPerS, report, shards, replicasCpuS, waitShort: (await waitShortOf(urls)) - shortBefore };
}

export const holds = (r: BenchReport, limits: Limits): boolean => r.deliveryRatio >= limits.minRatio && r.latencyMs.p99 <= limits.maxP99Ms;

// ---------------------------------------------------------------------------------------------
// The runs

export interface CostRun extends Measured {
  system: SystemName;
  round: number;
  /** Redis's CPU over `seconds` without traffic, just before: the masters summed, the replicas summed. */
  idle: { seconds: number; mastersCpuS: number; replicasCpuS: number };
}

export interface SaturationRun {
  system: SystemName;
  round: number;
  /** Each step run, in order; the last one did not hold unless every step did. */
  steps: (Measured & { held: boolean })[];
  /** The highest rate that held (messages/s); undefined when even the first did not. */
  highestHeld: number | undefined;
}

export interface Runs {
  cost: CostRun[];
  saturation: SaturationRun[];
}

const tag = () => Math.random().toString(36).slice(2, 7);

/** Every round: each topology, each with and without WAIT, in an order that alternates. */
export async function measureAll(plan: Plan, say: (line: string) => void = () => {}): Promise<Runs> {
  const runs: Runs = { cost: [], saturation: [] };
  for (let round = 1; round <= plan.rounds; round++) {
    // reversed every other round, so that no system always runs on a warmer (or busier) machine
    const topologies: Topology[] = round % 2 ? ["single", "cluster"] : ["cluster", "single"];
    const waits = round % 2 ? [false, true] : [true, false];
    for (const topology of topologies) {
      const d = await startDeployment(topology);
      try {
        for (const wait of waits) {
          const system = systemOf(topology, wait);
          const { child, urls } = await startRoomcast(d, wait, plan);
          try {
            const idle = await idleWindow(d, plan.idleS);
            const m = await measure(d, urls, plan, plan.rate, `r${round}-${system}-${tag()}`);
            runs.cost.push({ system, round, idle, ...m });
            say(`round ${round} ${SYSTEMS[system].label.padEnd(28)} ${describe(m)}`);
            if (!wait) runs.saturation.push(await stepUp(d, urls, plan, system, round, say));
          } finally {
            await child.stop();
          }
        }
      } finally {
        await d.stop();
      }
    }
  }
  return runs;
}

/** Redis's CPU over `seconds` with nothing sent (a measuring window: there is no event to wait for). */
async function idleWindow(d: Deployment, seconds: number): Promise<CostRun["idle"]> {
  const read = () => Promise.all([...d.masters, ...d.replicas].map(readNode));
  const before = await read();
  const started = performance.now();
  await new Promise((r) => setTimeout(r, seconds * 1000));
  const after = await read();
  const cpu = (from: number, to: number) => after.slice(from, to).reduce((n, x, i) => n + x.cpuS - before[from + i]!.cpuS, 0);
  return { seconds: (performance.now() - started) / 1000, mastersCpuS: cpu(0, d.masters.length), replicasCpuS: cpu(d.masters.length, after.length) };
}

/** The rates of `plan.steps` one after another on the same processes, until one does not hold. */
async function stepUp(d: Deployment, urls: string[], plan: Plan, system: SystemName, round: number, say: (line: string) => void): Promise<SaturationRun> {
  const run: SaturationRun = { system, round, steps: [], highestHeld: undefined };
  for (const rate of plan.steps) {
    const m = await measure(d, urls, plan, rate, `s${round}-${system}-${rate}-${tag()}`);
    const held = holds(m.report, plan.limits);
    run.steps.push({ ...m, held });
    say(`round ${round} ${SYSTEMS[system].label.padEnd(28)} step ${rate}/s: ${describe(m)} → ${held ? "held" : "did not hold"}`);
    if (!held) break;
    run.highestHeld = rate;
  }
  return run;
}

function describe(m: Measured): string {
  const f = figures(m);
  return (
    `${Math.round(f.messagesPerS)} msg/s delivered ${(m.report.deliveryRatio * 100).toFixed(2)}% p50 ${m.report.latencyMs.p50} ms p99 ${m.report.latencyMs.p99} ms ` +
    `Redis ${f.redisMsPer1000.toFixed(1)} ms/1000 (${m.shards.map((s) => s.messages).join("+")} msgs) roomcast ${f.roomcastUsPerMessage.toFixed(0)} µs/msg`
  );
}

/** One run's figures per message, from Redis's own count of the messages in the window. */
function figures(m: Measured) {
  const messages = m.shards.reduce((n, s) => n + s.messages, 0);
  const perThousand = (cpuS: number, n: number) => (n > 0 ? (cpuS * 1e6) / n : NaN);
  const windowS = m.report.options.durationS;
  return {
    messages,
    messagesPerS: messages / windowS,
    redisMsPer1000: perThousand(m.shards.reduce((s, x) => s + x.cpuS, 0), messages),
    /** Each shard's CPU per 1000 of its own messages. */
    shardsMsPer1000: m.shards.map((s) => perThousand(s.cpuS, s.messages)),
    shardsShare: m.shards.map((s) => (messages > 0 ? s.messages / messages : NaN)),
    replicasMsPer1000: perThousand(m.replicasCpuS, messages),
    roomcastUsPerMessage: m.report.serverCpuS === undefined || messages === 0 ? NaN : (m.report.serverCpuS * 1e6) / messages,
    /** CPU in the window as a share of one core: the masters summed, roomcast's workers summed. */
    redisCpuPct: (m.shards.reduce((s, x) => s + x.cpuS, 0) / windowS) * 100,
    roomcastCpuPct: m.report.serverCpuS === undefined ? NaN : (m.report.serverCpuS / windowS) * 100,
  };
}

// ---------------------------------------------------------------------------------------------
// Summaries: medians, tables, the chart

/** The median of the finite values (a run whose server did not answer /metrics has no CPU figure). */
const median = (xs: number[]) => {
  const s = xs.filter(Number.isFinite).sort((a, b) => a - b);
  return s.length === 0 ? NaN : s.length % 2 ? s[(s.length - 1) / 2]! : (s[s.length / 2 - 1]! + s[s.length / 2]!) / 2;
};

export interface CostRow {
  system: SystemName;
  label: string;
  runs: number;
  messagesPerS: number;
  deliveryRatio: number;
  p50: number;
  p99: number;
  redisMsPer1000: number;
  /** Of `redisMsPer1000`, what the masters spent without traffic, over as long a window. */
  redisIdleMsPer1000: number;
  shardsMsPer1000: number[];
  shardsShare: number[];
  replicasMsPer1000: number;
  roomcastUsPerMessage: number;
  /** Over every run. */
  lost: number;
  duplicated: number;
  outOfOrder: number;
  waitShort: number;
}

export interface SaturationRow {
  system: SystemName;
  label: string;
  /** Median over the rounds (0 for a round where even the first step did not hold). */
  highestHeld: number;
  perRound: (number | null)[];
  /** Per round: the first rate that did not hold, and why. */
  notHeld: string[];
  /** At the highest step that held: CPU as a share of one core (masters summed; both workers summed). */
  redisCpuPct: number;
  roomcastCpuPct: number;
}

export function costRows(runs: Runs): CostRow[] {
  return (Object.keys(SYSTEMS) as SystemName[]).flatMap((system) => {
    const rs = runs.cost.filter((r) => r.system === system);
    if (rs.length === 0) return [];
    const f = rs.map(figures);
    const shards = Math.max(...f.map((x) => x.shardsMsPer1000.length));
    const perShard = (pick: (x: ReturnType<typeof figures>) => number[]) => Array.from({ length: shards }, (_, i) => median(f.map((x) => pick(x)[i] ?? NaN)));
    return [{
      system,
      label: SYSTEMS[system].label,
      runs: rs.length,
      messagesPerS: median(f.map((x) => x.messagesPerS)),
      deliveryRatio: median(rs.map((r) => r.report.deliveryRatio)),
      p50: median(rs.map((r) => r.report.latencyMs.p50)),
      p99: median(rs.map((r) => r.report.latencyMs.p99)),
      redisMsPer1000: median(f.map((x) => x.redisMsPer1000)),
      redisIdleMsPer1000: median(rs.map((r, i) => (r.idle.mastersCpuS / r.idle.seconds) * r.report.options.durationS * 1e6 / f[i]!.messages)),
      shardsMsPer1000: perShard((x) => x.shardsMsPer1000),
      shardsShare: perShard((x) => x.shardsShare),
      replicasMsPer1000: median(f.map((x) => x.replicasMsPer1000)),
      roomcastUsPerMessage: median(f.map((x) => x.roomcastUsPerMessage)),
      lost: rs.reduce((n, r) => n + r.report.lost, 0),
      duplicated: rs.reduce((n, r) => n + r.report.duplicated, 0),
      outOfOrder: rs.reduce((n, r) => n + r.report.outOfOrder, 0),
      waitShort: rs.reduce((n, r) => n + r.waitShort, 0),
    }];
  });
}

export function saturationRows(runs: Runs, limits: Limits): SaturationRow[] {
  return (Object.keys(SYSTEMS) as SystemName[]).flatMap((system) => {
    const rs = runs.saturation.filter((r) => r.system === system);
    if (rs.length === 0) return [];
    const atHighest = rs.map((r) => r.steps.filter((s) => s.held).at(-1)).filter((s) => s !== undefined).map(figures);
    return [{
      system,
      label: SYSTEMS[system].label,
      highestHeld: median(rs.map((r) => r.highestHeld ?? 0)),
      perRound: rs.map((r) => r.highestHeld ?? null),
      notHeld: rs.map((r) => {
        const last = r.steps.at(-1);
        if (!last || last.held) return "none (every step held)";
        const why = [
          ...(last.report.latencyMs.p99 > limits.maxP99Ms ? [`p99 ${last.report.latencyMs.p99} ms`] : []),
          ...(last.report.deliveryRatio < limits.minRatio ? [`delivered ${(last.report.deliveryRatio * 100).toFixed(2)}%`] : []),
        ];
        return `${last.messagesPerS}: ${why.join(", ")}`;
      }),
      redisCpuPct: median(atHighest.map((x) => x.redisCpuPct)),
      roomcastCpuPct: median(atHighest.map((x) => x.roomcastCpuPct)),
    }];
  });
}

const n1 = (x: number) => (Number.isFinite(x) ? x.toFixed(1) : "–");
const n2 = (x: number) => (Number.isFinite(x) ? x.toFixed(2) : "–");
const cores = (pct: number) => (Number.isFinite(pct) ? `${Math.round(pct)}% of a core` : "–");
const pct = (x: number) => (Number.isFinite(x) ? `${(x * 100).toFixed(2)}%` : "–");

export function tables(runs: Runs, plan: Plan): string {
  const cost = costRows(runs);
  const saturation = saturationRows(runs, plan.limits);
  const out: string[] = [];
  out.push(
    `At ${plan.rate} messages/s (${plan.rooms} rooms × ${plan.clients} clients, ${Math.min(plan.senders, plan.clients)} sending; ${plan.durationS} s windows), medians of ${plan.rounds} round(s):`,
    "",
    "| system | messages/s | delivered | p50 ms | p99 ms | Redis CPU ms per 1000 messages (masters) | of which without traffic | per shard: ms per 1000 of its messages (its share) | replicas ms per 1000 | roomcast CPU µs per message | lost / dup / out of order | short WAITs |",
    "|---|---|---|---|---|---|---|---|---|---|---|---|",
  );
  for (const r of cost) {
    const shards = r.shardsMsPer1000.length > 1 ? r.shardsMsPer1000.map((v, i) => `${n1(v)} (${Math.round((r.shardsShare[i] ?? NaN) * 100)}%)`).join(" / ") : "–";
    out.push(
      `| ${r.label} | ${Math.round(r.messagesPerS)} | ${pct(r.deliveryRatio)} | ${r.p50} | ${r.p99} | ${n1(r.redisMsPer1000)} | ${n1(r.redisIdleMsPer1000)} | ${shards} | ${n1(r.replicasMsPer1000)} | ${n1(r.roomcastUsPerMessage)} | ${r.lost} / ${r.duplicated} / ${r.outOfOrder} | ${r.waitShort} |`,
    );
  }
  out.push(
    "",
    `The message rate where p99 passes ${plan.limits.maxP99Ms} ms (or delivery falls below ${plan.limits.minRatio * 100}%), steps ${plan.steps.join(", ")} messages/s, without --redis-wait:`,
    "",
    "| system | highest rate held, messages/s (median) | each round | first rate not held, each round | at the highest held: Redis masters' CPU | roomcast's CPU (2 workers) |",
    "|---|---|---|---|---|---|",
  );
  for (const r of saturation) {
    out.push(
      `| ${r.label} | ${r.highestHeld > 0 ? r.highestHeld : `below ${plan.steps[0]}`} | ${r.perRound.map((x) => x ?? "–").join(", ")} | ${r.notHeld.join("; ")} | ${cores(r.redisCpuPct)} | ${cores(r.roomcastCpuPct)} |`,
    );
  }
  out.push("", `The cost of --redis-wait 1 at ${plan.rate} messages/s (without → with, and the ratio):`, "", "| Redis | p50 ms | p99 ms | roomcast CPU µs per message | Redis masters' CPU ms per 1000 messages | replicas' CPU ms per 1000 messages |", "|---|---|---|---|---|---|");
  for (const [without, withWait, label] of [["redis", "redis-wait", "one Redis"], ["cluster", "cluster-wait", "Cluster 3+3"]] as const) {
    const a = cost.find((r) => r.system === without);
    const b = cost.find((r) => r.system === withWait);
    if (!a || !b) continue;
    const change = (x: number, y: number) => `${n2(x)} → ${n2(y)} (${n2(y / x)}×)`;
    out.push(`| ${label} | ${change(a.p50, b.p50)} | ${change(a.p99, b.p99)} | ${change(a.roomcastUsPerMessage, b.roomcastUsPerMessage)} | ${change(a.redisMsPer1000, b.redisMsPer1000)} | ${change(a.replicasMsPer1000, b.replicasMsPer1000)} |`);
  }
  return out.join("\n");
}

/** Bars in groups, one panel per figure; each series has its colour. */
interface Panel {
  /** With its unit. */
  title: string;
  groups: { label: string; bars: { series: string; value: number }[] }[];
}

const SERIES_COLORS: Record<string, string> = { "without --redis-wait": "#2563eb", "--redis-wait 1": "#f59e0b" };

function esc(s: string): string {
  return s.replace(/&/g, "&amp;").replace(/</g, "&lt;");
}

function renderPanels(panels: Panel[]): string {
  const groupW = 220, barW = 60, panelH = 200, top = 50, left = 40;
  const width = Math.max(760, left + Math.max(...panels.map((p) => p.groups.length)) * groupW + 40);
  const height = top + panels.length * (panelH + 60);
  const series = Object.keys(SERIES_COLORS);
  const out = [`<svg xmlns="http://www.w3.org/2000/svg" width="${width}" height="${height}" font-family="sans-serif" font-size="11">`, `<rect width="100%" height="100%" fill="white"/>`];
  series.forEach((s, i) => out.push(`<rect x="${left + i * 170}" y="12" width="12" height="12" fill="${SERIES_COLORS[s]}"/><text x="${left + i * 170 + 16}" y="22">${esc(s)}</text>`));
  panels.forEach((panel, p) => {
    const y0 = top + p * (panelH + 60);
    const max = Math.max(...panel.groups.flatMap((g) => g.bars.map((b) => b.value)).filter(Number.isFinite), 1e-9);
    out.push(`<text x="${left}" y="${y0 + 12}" font-weight="bold">${esc(panel.title)}</text>`);
    panel.groups.forEach((g, gi) => {
      const gx = left + gi * groupW;
      g.bars.forEach((b, i) => {
        if (!Number.isFinite(b.value)) return;
        const h = (b.value / max) * (panelH - 40);
        const x = gx + i * (barW + 6);
        const y = y0 + panelH - h;
        out.push(`<rect x="${x}" y="${y}" width="${barW}" height="${h}" fill="${SERIES_COLORS[b.series] ?? "#999"}"/>`);
        out.push(`<text x="${x + barW / 2}" y="${y - 3}" text-anchor="middle">${b.value < 10 ? b.value.toFixed(1) : Math.round(b.value)}</text>`);
      });
      out.push(`<text x="${gx + (g.bars.length * (barW + 6)) / 2}" y="${y0 + panelH + 16}" text-anchor="middle">${esc(g.label)}</text>`);
    });
  });
  out.push("</svg>");
  return out.join("\n");
}

export function chart(runs: Runs, plan: Plan): string {
  const cost = costRows(runs);
  const saturation = saturationRows(runs, plan.limits);
  const groups = (value: (r: CostRow) => number) =>
    (["single", "cluster"] as const).map((topology) => ({
      label: topology === "single" ? "one Redis" : "Cluster 3+3",
      bars: [false, true].map((wait) => {
        const row = cost.find((r) => r.system === systemOf(topology, wait));
        return { series: wait ? "--redis-wait 1" : "without --redis-wait", value: row ? value(row) : NaN };
      }),
    }));
  return renderPanels([
    { title: `Redis CPU ms per 1000 messages, masters summed, at ${plan.rate} messages/s (lower is better)`, groups: groups((r) => r.redisMsPer1000) },
    {
      title: "Cluster: each shard's Redis CPU ms per 1000 of its own messages (lower is better)",
      groups: [0, 1, 2].map((shard) => ({
        label: `shard ${shard + 1}`,
        bars: (["cluster", "cluster-wait"] as const).map((system) => ({
          series: system === "cluster" ? "without --redis-wait" : "--redis-wait 1",
          value: cost.find((r) => r.system === system)?.shardsMsPer1000[shard] ?? NaN,
        })),
      })),
    },
    { title: `roomcast CPU µs per message, both workers, at ${plan.rate} messages/s (lower is better)`, groups: groups((r) => r.roomcastUsPerMessage) },
    { title: `p50 latency, ms, at ${plan.rate} messages/s (lower is better)`, groups: groups((r) => r.p50) },
    { title: `p99 latency, ms, at ${plan.rate} messages/s (lower is better)`, groups: groups((r) => r.p99) },
    {
      title: `highest rate, messages/s, with p99 ≤ ${plan.limits.maxP99Ms} ms and ${plan.limits.minRatio * 100}% delivered (higher is better)`,
      groups: (["redis", "cluster"] as const).map((system) => ({
        label: SYSTEMS[system].label,
        bars: [{ series: "without --redis-wait", value: saturation.find((r) => r.system === system)?.highestHeld ?? NaN }],
      })),
    },
  ]);
}

// ---------------------------------------------------------------------------------------------
// The command

export interface Machine {
  cpus: number;
  model: string;
  node: string;
  redis: string;
  date: string;
  /** Load averages (1, 5, 15 min) before and after: other work on the machine shows here. */
  loadBefore: number[];
  loadAfter: number[];
}

export interface Saved {
  machine: Machine;
  plan: Plan;
  runs: Runs;
}

/** Writes redis.json and redis.svg to `dir`, and returns the tables. */
export function summarize(saved: Saved, dir: string): string {
  mkdirSync(dir, { recursive: true });
  writeFileSync(join(dir, "redis.json"), `${JSON.stringify(saved, null, 2)}\n`);
  writeFileSync(join(dir, "redis.svg"), chart(saved.runs, saved.plan));
  return `${JSON.stringify(saved.machine)}\n\n${tables(saved.runs, saved.plan)}\n`;
}

function envNumber(name: string, fallback: number, min: number): number {
  const raw = process.env[name];
  if (raw === undefined || raw === "") return fallback;
  const value = Number(raw);
  if (!Number.isFinite(value) || value < min) throw new Error(`${name} must be a number of at least ${min}, not ${JSON.stringify(raw)}`);
  return value;
}

function planFromEnv(): Plan {
  const whole = (name: string, fallback: number, min: number) => {
    const value = envNumber(name, fallback, min);
    if (!Number.isInteger(value)) throw new Error(`${name} must be a whole number, not ${value}`);
    return value;
  };
  const steps = (process.env["STEPS"] ?? "500,750,1000,1500,2000,3000,4000,6000").split(",").map((s) => Number(s.trim()));
  if (steps.length === 0 || steps.some((s) => !Number.isFinite(s) || s <= 0) || steps.some((s, i) => i > 0 && s <= steps[i - 1]!)) {
    throw new Error(`STEPS must be rising messages/s, comma-separated, not ${JSON.stringify(process.env["STEPS"])}`);
  }
  const clients = whole("CLIENTS", 4, 1);
  return {
    rounds: whole("ROUNDS", 3, 1),
    durationS: envNumber("DURATION", 10, 0.5),
    warmupS: envNumber("WARMUP", 2, 0),
    idleS: envNumber("IDLE", 5, 0.5),
    rooms: whole("ROOMS", 500, 1),
    clients,
    senders: whole("SENDERS", clients, 1),
    rate: envNumber("RATE", 1000, 1),
    steps,
    limits: DEFAULT_LIMITS,
    procs: whole("PROCS", 2, 1),
    roomcastArgs: (process.env["ROOMCAST_ARGS"] ?? "").split(/\s+/).filter(Boolean),
  };
}

async function redisVersion(): Promise<string> {
  const child = startChild("redis-server", ["--version"]);
  await child.exited;
  return /v=(\S+)/.exec(child.output())?.[1] ?? "unknown";
}

async function main(): Promise<void> {
  const out = process.env["OUT"] ?? fileURLToPath(new URL("../../bench/results", import.meta.url));
  const saved = process.env["RENDER"];
  if (saved) {
    process.stdout.write(summarize(JSON.parse(readFileSync(saved, "utf8")) as Saved, out));
    return;
  }
  const plan = planFromEnv();
  // Stopped by a signal: exit through process.exit, so that every Redis and roomcast process this
  // run started is killed on the way out (test/helpers/processes.ts) and no directory is left.
  for (const signal of ["SIGINT", "SIGTERM"] as const) process.once(signal, () => process.exit(130));
  const loadBefore = loadavg();
  const runs = await measureAll(plan, (line) => process.stderr.write(`${line}\n`));
  const machine: Machine = {
    cpus: availableParallelism(),
    model: cpus()[0]?.model ?? "unknown",
    node: process.version,
    redis: await redisVersion(),
    date: new Date().toISOString(),
    loadBefore,
    loadAfter: loadavg(),
  };
  process.stdout.write(summarize({ machine, plan, runs }, out));
}

// Run as a command (node dist/bench/redis-run.js), not when a test imports the pieces.
if (process.argv[1] !== undefined && realpathSync(process.argv[1]) === fileURLToPath(import.meta.url)) {
  main().catch((err: unknown) => {
    process.stderr.write(`bench:redis: ${err instanceof Error ? err.message : String(err)}\n`);
    process.exit(1);
  });
}
