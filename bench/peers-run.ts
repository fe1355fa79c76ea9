/**
 * `npm run bench:peers`: roomcast and its peers side by side, on this machine, in one run.
 * Each system gets the same private Redis, the same workers (2; the floor is one process by
 * design), the same bench; systems run alternately, ROUNDS times, and the tables give medians.
 * Writes bench/results/peers.json and bench/results/peers.svg, and prints markdown tables.
 */
import { spawn, type ChildProcess } from "node:child_process";
import { mkdirSync, readFileSync, writeFileSync } from "node:fs";
import { createServer } from "node:net";
import { availableParallelism, cpus } from "node:os";
import { fileURLToPath } from "node:url";
import { runBench, type BenchOptions, type BenchReport } from "./bench.js";
import { renderChart } from "./chart.js";

const ROUNDS = Number(process.env["ROUNDS"] ?? 3);
const DURATION_S = Number(process.env["DURATION"] ?? 5);
/** ROOMCAST_ARGS="--big-room 0": more options for roomcast's cluster (to measure a setting against the peers). */
const ROOMCAST_ARGS = (process.env["ROOMCAST_ARGS"] ?? "").split(/\s+/).filter(Boolean);
const here = (p: string) => fileURLToPath(new URL(p, import.meta.url));
const CLI = here("../src/cli/main.js");

type System = "roomcast" | "official" | "article" | "floor";
const ALL_SYSTEMS: System[] = ["roomcast", "official", "article", "floor"];
/** SYSTEMS=roomcast,official runs only those (for a quicker comparison while working on one). */
const SYSTEMS = process.env["SYSTEMS"] ? ALL_SYSTEMS.filter((s) => process.env["SYSTEMS"]!.split(",").includes(s)) : ALL_SYSTEMS;

interface Workload {
  name: string;
  options: Partial<BenchOptions>;
}
const ALL_WORKLOADS: Workload[] = [
  { name: "classroom 8/s (40k deliveries/s)", options: { rooms: 10, clients: 100, senders: 5, rate: 8 } },
  { name: "classroom 16/s (80k deliveries/s)", options: { rooms: 10, clients: 100, senders: 5, rate: 16 } },
  { name: "classroom 32/s (160k offered)", options: { rooms: 10, clients: 100, senders: 5, rate: 32 } },
  { name: "big-room (20k deliveries/s)", options: { rooms: 1, clients: 2000, senders: 1, rate: 10 } },
  { name: "join-storm (3000 clients within 5 s)", options: { rooms: 1, clients: 3000, senders: 0, rate: 1, durationS: 0.5, warmupS: 0, joinWindowS: 5 } },
];
/** WORKLOADS=classroom,big-room runs only the workloads whose names start with one of these. */
const WORKLOADS = process.env["WORKLOADS"]
  ? ALL_WORKLOADS.filter((w) => process.env["WORKLOADS"]!.split(",").some((prefix) => w.name.startsWith(prefix)))
  : ALL_WORKLOADS;

function canListen(port: number): Promise<boolean> {
  return new Promise((resolve) => {
    const s = createServer();
    s.once("error", () => resolve(false));
    s.listen(port, "127.0.0.1", () => s.close(() => resolve(true)));
  });
}

async function freePort(): Promise<number> {
  return new Promise((resolve) => {
    const s = createServer();
    s.listen(0, "127.0.0.1", () => {
      const port = (s.address() as { port: number }).port;
      s.close(() => resolve(port));
    });
  });
}

/** A base port such that base and base + 1 are both free (workers listen on port-base + i). */
async function freePortPair(): Promise<number> {
  for (let attempt = 0; attempt < 50; attempt++) {
    const base = await freePort();
    if (base < 65535 && (await canListen(base + 1))) return base;
  }
  throw new Error("no two consecutive free ports on 127.0.0.1");
}

function start(command: string, args: string[], ready: RegExp): Promise<ChildProcess> {
  const child = spawn(command, args, { stdio: ["ignore", "pipe", "pipe"] });
  let out = "";
  return new Promise((resolve, reject) => {
    const check = (d: Buffer) => {
      out += d.toString();
      if (ready.test(out)) resolve(child);
    };
    child.stdout?.on("data", check);
    child.stderr?.on("data", check);
    child.on("exit", (code) => reject(new Error(`${command} ${args.join(" ")} exited (${code}):\n${out}`)));
  });
}

async function stop(child: ChildProcess): Promise<void> {
  if (child.exitCode !== null) return;
  const exited = new Promise((r) => child.once("exit", r));
  child.kill("SIGTERM");
  const timer = setTimeout(() => child.kill("SIGKILL"), 5000);
  await exited;
  clearTimeout(timer);
}

async function startSystem(system: System, redis: string, base: number): Promise<{ child: ChildProcess; urls: string[] }> {
  const urls2 = [`http://127.0.0.1:${base}`, `http://127.0.0.1:${base + 1}`];
  switch (system) {
    case "roomcast":
      return {
        child: await start(process.execPath, [CLI, "cluster", "--redis", redis, "--workers", "2", "--port-base", String(base), "--host", "127.0.0.1", "--rate-limit", "100000", "--rate-burst", "100000", ...ROOMCAST_ARGS], /cluster ready/),
        urls: urls2,
      };
    case "official":
    case "article":
      return { child: await start(process.execPath, [here(`./peers/${system}.js`), "--port-base", String(base), "--workers", "2", "--redis", redis], /listening/), urls: urls2 };
    case "floor":
      return { child: await start(process.execPath, [here("./peers/floor.js"), "--port", String(base)], /listening/), urls: [urls2[0]!] };
  }
}

/** A run that hangs (a peer that stopped answering) must not hang the whole comparison. */
function withDeadline<T>(p: Promise<T>, ms: number): Promise<T> {
  let timer: NodeJS.Timeout | undefined;
  return Promise.race([p, new Promise<T>((_, reject) => (timer = setTimeout(() => reject(new Error(`no result after ${ms / 1000} s`)), ms)))]).finally(() => clearTimeout(timer));
}

/** The median of the finite values (a run whose server did not answer /metrics has no CPU figure). */
const median = (xs: number[]) => {
  const s = xs.filter(Number.isFinite).sort((a, b) => a - b);
  return s.length === 0 ? NaN : s.length % 2 ? s[(s.length - 1) / 2]! : (s[s.length / 2 - 1]! + s[s.length / 2]!) / 2;
};

type Results = Record<string, Record<System, BenchReport[]>>;
interface Machine {
  cpus: number;
  model: string;
  node: string;
  rounds: number;
  durationS: number;
  date: string;
}

async function measure(): Promise<{ machine: Machine; results: Results }> {
  const redisPort = await freePort();
  const redisProc = await start("redis-server", ["--port", String(redisPort), "--bind", "127.0.0.1", "--save", "", "--appendonly", "no"], /Ready to accept/);
  const redis = `redis://127.0.0.1:${redisPort}`;
  const results: Results = {};
  try {
    for (let round = 1; round <= ROUNDS; round++) {
      // alternate the order, so no system always runs on a warmer (or busier) machine
      const order = round % 2 ? SYSTEMS : [...SYSTEMS].reverse();
      for (const system of order) {
        const base = await freePortPair();
        const { child, urls } = await startSystem(system, redis, base);
        for (let i = 0; i < 100; i++) {
          if (await Promise.all(urls.map((u) => fetch(`${u}/metrics`).then((r) => r.ok, () => false))).then((oks) => oks.every(Boolean))) break;
          await new Promise((r) => setTimeout(r, 100));
        }
        try {
          for (const w of WORKLOADS) {
            const r = await withDeadline(runBench({
              urls, rooms: 1, clients: 1, senders: 1, rate: 1, durationS: DURATION_S, warmupS: 2, transport: "websocket", procs: 2, joinWindowS: 0,
              roomPrefix: `p${round}-${system}-${Math.random().toString(36).slice(2, 7)}`,
              ...w.options,
            }), 180_000).catch((err: Error) => {
              process.stderr.write(`round ${round} ${system} ${w.name}: ${err.message}\n`);
              return undefined;
            });
            if (!r) continue;
            ((results[w.name] ??= {} as Record<System, BenchReport[]>)[system] ??= []).push(r);
            process.stderr.write(
              `round ${round} ${system.padEnd(8)} ${w.name.padEnd(34)} ${Math.round(r.deliveredPerS)}/s ratio ${(r.deliveryRatio * 100).toFixed(2)}% ` +
                `p99 ${r.latencyMs.p99} ms cpu ${r.serverCpuUsPerDelivery?.toFixed(2) ?? "?"} µs/delivery join ${r.joinS.toFixed(2)} s\n`,
            );
          }
        } finally {
          await stop(child);
        }
      }
    }
  } finally {
    await stop(redisProc);
  }

  return { machine: { cpus: availableParallelism(), model: cpus()[0]?.model ?? "unknown", node: process.version, rounds: ROUNDS, durationS: DURATION_S, date: new Date().toISOString() }, results };
}

/** Medians per workload and system, the table, and (for a whole comparison) bench/results. */
function summarize(machine: Machine, results: Results, write: boolean): void {
  const rows: { workload: string; system: System; deliveredPerS: number; ratio: number; p50: number; p99: number; usPerDelivery: number; cpuRuns: number; runs: number; serverCpuS: number; generatorCpuS: number; joinS: number; lost: number; dup: number; ooo: number }[] = [];
  for (const [workload, bySystem] of Object.entries(results)) {
    for (const system of SYSTEMS) {
      const rs = bySystem[system] ?? [];
      rows.push({
        workload,
        system,
        deliveredPerS: median(rs.map((r) => r.deliveredPerS)),
        ratio: median(rs.map((r) => r.deliveryRatio)),
        p50: median(rs.map((r) => r.latencyMs.p50)),
        p99: median(rs.map((r) => r.latencyMs.p99)),
        usPerDelivery: median(rs.map((r) => r.serverCpuUsPerDelivery ?? NaN)),
        cpuRuns: rs.filter((r) => r.serverCpuUsPerDelivery !== undefined).length,
        runs: rs.length,
        serverCpuS: median(rs.map((r) => r.serverCpuS ?? NaN)),
        generatorCpuS: median(rs.map((r) => r.generatorWindowCpuS)),
        joinS: median(rs.map((r) => r.joinS)),
        lost: rs.reduce((n, r) => n + r.lost, 0),
        dup: rs.reduce((n, r) => n + r.duplicated, 0),
        ooo: rs.reduce((n, r) => n + r.outOfOrder, 0),
      });
    }
  }
  if (write) {
    mkdirSync(here("../../bench/results"), { recursive: true });
    writeFileSync(here("../../bench/results/peers.json"), `${JSON.stringify({ machine, rows, results }, null, 2)}\n`);
    writeFileSync(here("../../bench/results/peers.svg"), renderChart(rows));
  }

  const table = [
    "| workload | system | delivered/s | ratio | p50 ms | p99 ms | server µs/delivery | server / generator CPU s | join s | lost / dup / out of order (all runs) |",
    "|---|---|---|---|---|---|---|---|---|---|",
  ];
  const s2 = (x: number) => (Number.isNaN(x) ? "–" : x.toFixed(2));
  // a saturated server may not answer /metrics in time: its CPU is then known for fewer runs
  const us = (r: (typeof rows)[number]) => `${s2(r.usPerDelivery)}${r.cpuRuns > 0 && r.cpuRuns < r.runs ? ` (${r.cpuRuns} of ${r.runs} runs)` : ""}`;
  for (const r of rows) {
    if (r.deliveredPerS > 0) {
      table.push(`| ${r.workload} | ${r.system} | ${Math.round(r.deliveredPerS)} | ${(r.ratio * 100).toFixed(2)}% | ${r.p50} | ${r.p99} | ${us(r)} | ${s2(r.serverCpuS)} / ${s2(r.generatorCpuS)} | ${r.joinS.toFixed(2)} | ${r.lost} / ${r.dup} / ${r.ooo} |`);
    } else {
      // join-storm: nothing is sent, only the joins are measured
      table.push(`| ${r.workload} | ${r.system} | – | – | – | – | – | – | ${r.joinS.toFixed(2)} | ${r.lost} / ${r.dup} / ${r.ooo} |`);
    }
  }
  process.stdout.write(`${JSON.stringify(machine)}\n\n${table.join("\n")}\n`);
}

/**
 * RENDER=bench/results/peers.json: no run, the table and chart again from the runs saved there
 * (after a change to how they are summarised).
 */
async function main(): Promise<void> {
  const saved = process.env["RENDER"];
  if (saved) {
    const { machine, results } = JSON.parse(readFileSync(saved, "utf8")) as { machine: Machine; results: Results };
    summarize(machine, results, true);
    return;
  }
  const { machine, results } = await measure();
  const whole = SYSTEMS.length === ALL_SYSTEMS.length && WORKLOADS.length === ALL_WORKLOADS.length;
  if (!whole) process.stderr.write("a part of the comparison (SYSTEMS or WORKLOADS): bench/results is left as it was\n");
  summarize(machine, results, whole);
}

main().catch((err: unknown) => {
  process.stderr.write(`bench:peers: ${err instanceof Error ? err.message : String(err)}\n`);
  process.exit(1);
});
