/**
 * `roomcast bench`: plans a run over one or more generator processes, coordinates their phases,
 * reads each server's /metrics before and after the measured window, and reports.
 */
import { fork, type ChildProcess } from "node:child_process";
import { fileURLToPath } from "node:url";
import { build, decodeFromCompressedBase64 } from "hdr-histogram-js";
import { Share, type Progress, type SharePlan, type ShareResult, type ShareTimes } from "./run.js";

export interface BenchOptions {
  urls: string[];
  rooms: number;
  clients: number;
  senders: number;
  rate: number;
  durationS: number;
  warmupS: number;
  transport: "websocket" | "polling";
  procs: number;
  joinWindowS: number;
  /** With a secret: every client connects with an HS256 token signed with it (the servers run with --auth-secret). */
  authSecret?: string | undefined;
  /** Prefix of the room names; unique per run so that history of an earlier run does not count. */
  roomPrefix: string;
  /** Progress lines go here (stderr); undefined: quiet. */
  progress?: ((line: string) => void) | undefined;
  /**
   * Called at the start and at the end of the measured window, beside the reads of the servers'
   * /metrics, and awaited with them: to read other counters (Redis's CPU) over the same span.
   */
  onWindow?: ((edge: "start" | "end") => Promise<void>) | undefined;
}

export interface BenchReport {
  options: Omit<BenchOptions, "progress" | "onWindow" | "authSecret"> & { tokens: boolean };
  clients: number;
  joinS: number;
  offeredPerS: number;
  expectedPerS: number;
  deliveredPerS: number;
  deliveryRatio: number;
  lost: number;
  duplicated: number;
  outOfOrder: number;
  latencyMs: { p50: number; p95: number; p99: number; max: number };
  refusals: Record<string, number>;
  generatorCpuS: number;
  /** The generator's CPU during the measured window, the same span as `serverCpuS`. */
  generatorWindowCpuS: number;
  serverCpuS: number | undefined;
  serverProcesses: number;
  serverCpuUsPerDelivery: number | undefined;
  /**
   * Deliveries in the window per write of room events to a member (roomcast's
   * roomcast_fanout_writes_total): above 1 when several went out in one write. Undefined for
   * servers without that metric.
   */
  deliveriesPerWrite: number | undefined;
}

/** Splits the run into per-process shares: rooms round-robin, a room larger than the rest split. */
export function planShares(o: BenchOptions): SharePlan[] {
  const shares: SharePlan[] = Array.from({ length: o.procs }, () => ({
    urls: o.urls,
    rooms: [],
    rate: o.rate,
    transport: o.transport,
    joinWindowMs: o.joinWindowS * 1000,
    authSecret: o.authSecret,
  }));
  let sender = 0;
  for (let r = 0; r < o.rooms; r++) {
    const name = `${o.roomPrefix}-${r}`;
    const senders = Math.min(o.senders, o.clients);
    if (o.rooms >= o.procs) {
      shares[r % o.procs]!.rooms.push({ name, clients: o.clients, members: o.clients, senders, firstSender: sender });
    } else {
      // fewer rooms than processes: every process takes a slice of every room
      let left = o.clients;
      let sendersLeft = senders;
      for (let p = 0; p < o.procs; p++) {
        const clients = Math.floor(left / (o.procs - p));
        const mine = Math.min(sendersLeft, clients);
        shares[p]!.rooms.push({ name, clients, members: o.clients, senders: mine, firstSender: sender + (senders - sendersLeft) });
        left -= clients;
        sendersLeft -= mine;
      }
    }
    sender += senders;
  }
  return shares.filter((s) => s.rooms.length > 0);
}

/** One share, in this process or in a child process. */
interface ShareHandle {
  join(): Promise<number>;
  run(times: ShareTimes): Promise<ShareResult>;
  progress(): Progress;
  close(): void;
}

function localShare(plan: SharePlan): ShareHandle {
  const share = new Share(plan);
  return { join: () => share.join(), run: (t) => share.run(t), progress: () => share.progress(), close: () => share.close() };
}

const CHILD = fileURLToPath(new URL("./child.js", import.meta.url));

function childShare(plan: SharePlan): ShareHandle {
  const child: ChildProcess = fork(CHILD, [], { stdio: ["ignore", "inherit", "inherit", "ipc"] });
  let last: Progress = { connected: 0, sent: 0, received: 0, p99us: 0 };
  const waiters = new Map<string, { resolve: (v: unknown) => void; reject: (e: Error) => void }>();
  child.on("message", (m: { type: string; value: unknown }) => {
    if (m.type === "progress") last = m.value as Progress;
    else waiters.get(m.type)?.resolve(m.value);
  });
  child.on("exit", (code) => {
    for (const w of waiters.values()) w.reject(new Error(`a generator process exited (${code})`));
  });
  const ask = <T>(answer: string, message: object) =>
    new Promise<T>((resolve, reject) => {
      waiters.set(answer, { resolve: resolve as (v: unknown) => void, reject });
      child.send(message);
    });
  return {
    join: () => ask<number>("joined", { type: "join", plan }),
    run: (times) => ask<ShareResult>("result", { type: "run", times }),
    progress: () => last,
    close: () => child.kill(),
  };
}

/** Longest a server may take to answer /metrics for its counters to count. */
const METRICS_ANSWER_MS = 500;

interface ServerCounters {
  cpuS: number | undefined;
  /** roomcast_fanout_writes_total; undefined unless every server has it (roomcast does, its peers do not). */
  writes: number | undefined;
}

/** Counters of every server's /metrics, summed: its CPU seconds and, for roomcast, its fan-out writes. */
async function serverCounters(urls: string[]): Promise<ServerCounters> {
  let cpuS: number | undefined = 0;
  let writes: number | undefined = 0;
  const read = (text: string, name: string) => {
    const match = new RegExp(`^${name}(?:\\{[^}]*\\})? ([\\d.e+-]+)`, "m").exec(text);
    return match ? Number(match[1]) : undefined;
  };
  for (const url of new Set(urls)) {
    try {
      // A server too busy to answer at once (saturated, with a backlog of seconds) would be read
      // seconds late, and the window's CPU with it: then its CPU is unknown, not wrong.
      const res = await fetch(`${url}/metrics`, { signal: AbortSignal.timeout(METRICS_ANSWER_MS) });
      const text = res.ok ? await res.text() : "";
      const cpu = read(text, "process_cpu_seconds_total");
      const w = read(text, "roomcast_fanout_writes_total");
      cpuS = cpu === undefined || cpuS === undefined ? undefined : cpuS + cpu;
      writes = w === undefined || writes === undefined ? undefined : writes + w;
    } catch {
      return { cpuS: undefined, writes: undefined };
    }
  }
  return { cpuS, writes };
}

const difference = (after: number | undefined, before: number | undefined) => (after === undefined || before === undefined ? undefined : after - before);

export async function runBench(o: BenchOptions): Promise<BenchReport> {
  const plans = planShares(o);
  const shares = plans.map((plan) => (o.procs > 1 ? childShare(plan) : localShare(plan)));
  const totalClients = o.rooms * o.clients;
  const say = o.progress ?? (() => {});
  const sum = () =>
    shares.map((s) => s.progress()).reduce(
      (a, p) => ({ connected: a.connected + p.connected, sent: a.sent + p.sent, received: a.received + p.received, p99us: Math.max(a.p99us, p.p99us) }),
      { connected: 0, sent: 0, received: 0, p99us: 0 },
    );
  let lastReceived = 0;
  let lastAt = Date.now();
  const ticker = setInterval(() => {
    const p = sum();
    const now = Date.now();
    const rate = ((p.received - lastReceived) * 1000) / Math.max(1, now - lastAt);
    lastReceived = p.received;
    lastAt = now;
    say(`clients ${p.connected}/${totalClients}  sent ${p.sent}  delivered ${Math.round(rate)}/s  p99 ${(p.p99us / 1000).toFixed(1)} ms`);
  }, 1000);
  try {
    const joinStarted = performance.now();
    await Promise.all(shares.map((s) => s.join()));
    const joinS = (performance.now() - joinStarted) / 1000;
    say(`${totalClients} clients joined in ${joinS.toFixed(2)} s`);

    const times: ShareTimes = { start: Date.now() + 200, warmupMs: o.warmupS * 1000, durationMs: o.durationS * 1000 };
    const running = Promise.all(shares.map((s) => s.run(times)));
    const measureFrom = times.start + times.warmupMs;
    await new Promise((r) => setTimeout(r, measureFrom - Date.now()));
    const [before] = await Promise.all([serverCounters(o.urls), o.onWindow?.("start")]);
    await new Promise((r) => setTimeout(r, Math.max(0, measureFrom + times.durationMs - Date.now())));
    const [after] = await Promise.all([serverCounters(o.urls), o.onWindow?.("end")]);
    const results = await running;
    return report(o, results, joinS, difference(after.cpuS, before.cpuS), difference(after.writes, before.writes));
  } finally {
    clearInterval(ticker);
    for (const s of shares) s.close();
  }
}

function report(o: BenchOptions, results: ShareResult[], joinS: number, serverCpuS: number | undefined, serverWrites: number | undefined): BenchReport {
  const latency = build({ lowestDiscernibleValue: 1, highestTrackableValue: 120_000_000, numberOfSignificantValueDigits: 3 });
  const refusals: Record<string, number> = {};
  let sent = 0, expected = 0, received = 0, duplicated = 0, outOfOrder = 0, cpuMs = 0, windowCpuMs = 0, clients = 0;
  for (const r of results) {
    latency.add(decodeFromCompressedBase64(r.latency));
    sent += r.sent;
    expected += r.expected;
    received += r.received;
    duplicated += r.duplicated;
    outOfOrder += r.outOfOrder;
    cpuMs += r.cpuMs;
    windowCpuMs += r.windowCpuMs;
    clients += r.clients;
    for (const [code, n] of Object.entries(r.refusals)) refusals[code] = (refusals[code] ?? 0) + n;
  }
  const ms = (p: number) => Math.round(latency.getValueAtPercentile(p) / 10) / 100;
  // the secret is not reported (a report may be published): only whether tokens were used
  const { progress: _p, onWindow: _w, authSecret, ...rest } = o;
  const options = { ...rest, tokens: authSecret !== undefined };
  const serverProcesses = new Set(o.urls).size;
  return {
    options,
    clients,
    joinS,
    offeredPerS: sent / o.durationS,
    expectedPerS: expected / o.durationS,
    deliveredPerS: received / o.durationS,
    deliveryRatio: expected === 0 ? 1 : received / expected,
    lost: Math.max(0, expected - received),
    duplicated,
    outOfOrder,
    latencyMs: { p50: ms(50), p95: ms(95), p99: ms(99), max: Math.round(latency.maxValue / 10) / 100 },
    refusals,
    generatorCpuS: cpuMs / 1000,
    generatorWindowCpuS: windowCpuMs / 1000,
    serverCpuS,
    serverProcesses,
    serverCpuUsPerDelivery: serverCpuS === undefined || received === 0 ? undefined : (serverCpuS * 1e6) / received,
    deliveriesPerWrite: serverWrites === undefined || serverWrites === 0 ? undefined : received / serverWrites,
  };
}

export function formatReport(r: BenchReport, title: string): string {
  const o = r.options;
  const pct = (x: number) => `${(x * 100).toFixed(3)}%`;
  const refusals = Object.entries(r.refusals).map(([c, n]) => `${c} ${n}`).join(", ") || "none";
  return [
    `${title}: ${o.rooms} room(s) × ${o.clients} clients, ${o.senders} sender(s)/room at ${o.rate} msg/s, ${o.durationS} s (+${o.warmupS} s warm-up), ${o.transport}${o.tokens ? " with tokens" : ""}, ${o.procs} generator process(es)`,
    `  clients joined        ${r.clients} in ${r.joinS.toFixed(2)} s`,
    `  offered               ${r.offeredPerS.toFixed(1)} msg/s`,
    `  deliveries            expected ${Math.round(r.expectedPerS)}/s, actual ${Math.round(r.deliveredPerS)}/s, ratio ${pct(r.deliveryRatio)}`,
    `  lost / dup / order    ${r.lost} lost, ${r.duplicated} duplicated, ${r.outOfOrder} out of order`,
    `  latency               p50 ${r.latencyMs.p50} ms, p95 ${r.latencyMs.p95} ms, p99 ${r.latencyMs.p99} ms, max ${r.latencyMs.max} ms`,
    `  refusals              ${refusals}`,
    `  generator CPU         ${r.generatorWindowCpuS.toFixed(2)} s in the measured window (${r.generatorCpuS.toFixed(2)} s in all)`,
    r.serverCpuS === undefined
      ? `  server CPU            unknown (a server has no /metrics, or did not answer it within ${METRICS_ANSWER_MS} ms)`
      : `  server CPU            ${r.serverCpuS.toFixed(2)} s over ${r.serverProcesses} process(es): ${r.serverCpuUsPerDelivery === undefined ? "no deliveries to divide by" : `${r.serverCpuUsPerDelivery.toFixed(2)} µs per delivered message`}`,
    ...(r.deliveriesPerWrite === undefined ? [] : [`  fan-out writes        ${r.deliveriesPerWrite.toFixed(2)} deliveries per write to a member`]),
  ].join("\n");
}
