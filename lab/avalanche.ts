/**
 * Case 4 of issue 13, the reconnect avalanche at scale: N clients in many rooms on both app hosts
 * of the lab (lab/lab.ts), a few senders keeping a stream going, then app1 is lost (every process
 * SIGKILLed). Its clients reconnect through nginx to app2 with the SDK's back-off (socket.io-client,
 * 500 ms doubling to 10 s, randomization 0.5) and re-join with `since`. Measured: when each client
 * lost its connection, made its first reconnect attempt, was connected again and had re-joined
 * (history in hand: recovered), as p50/p99/max after the loss; the clients never recovered; app2's
 * CPU (its processes' /proc stat) before and during the recovery; that every acknowledged message
 * is in its room's history and every client has its room's messages once, in order.
 *
 * `npm run lab:avalanche -- --clients 10000` (root; builds first). `runAvalanche` is the same for
 * the test (test/e2e/lab-avalanche.test.ts).
 */
import { execFileSync } from "node:child_process";
import { readFileSync } from "node:fs";
import { pathToFileURL } from "node:url";
import { Command, InvalidArgumentError } from "commander";
import type { RecoveryResult } from "./client-protocol.js";
import type { ClientHost } from "./clients.js";
import { Lab } from "./lab.js";
import { labUnavailable, MAX_CLIENT_HOSTS, pidsIn } from "./netns.js";
import { roomHistory } from "./scenario.js";

export interface AvalancheOptions {
  clients: number;
  /** @default 100 */
  rooms?: number;
  /** @default 8 */
  clientHosts?: number;
  /** Workers per app host. @default 2 */
  workers?: number;
  /** Members that keep sending through the loss, each in its own room, half on each app host. @default 4 */
  senders?: number;
  /** ms between a sender's messages. @default 200 */
  sayIntervalMs?: number;
  /** Connections opened a second, over every client host. @default 1000 */
  openRate?: number;
  /** How long after the loss a client may take to recover before it counts as never recovered. @default 120000 */
  recoveryTimeoutMs?: number;
  /** nginx stickiness. @default "hash" */
  balance?: "hash" | "ip_hash";
}

/** The SDK's reconnect back-off (src/client/client.ts: reconnectDelayMs, reconnectDelayMaxMs, randomizationFactor). */
export const SDK_BACKOFF = { delayMs: 500, delayMaxMs: 10_000, randomization: 0.5 } as const;

export interface Spread {
  p50: number;
  p99: number;
  max: number;
}

export interface AvalancheResult {
  clients: number;
  rooms: number;
  /** Client host → app host nginx sent its members to; members per client host. */
  hosts: { host: string; app: string; members: number }[];
  /** Members on app1 when it was lost. */
  onApp1: number;
  killed: number;
  /** Clients whose connection was lost at or after the loss. */
  lost: number;
  recovered: number;
  neverRecovered: number;
  /** ms after the loss, over the lost clients that did (the never recovered are not in them). */
  firstAttempt: Spread & { min: number; peakPer10ms: number; peakPer100ms: number };
  connected: Spread;
  rejoined: Spread;
  attempts: { median: number; max: number };
  /** ms from the loss until the last lost client recovered (or the timeout). */
  allRecoveredMs: number;
  /** app2's processes' CPU, % of one core: over 2 s before the loss, over the recovery, the busiest 1 s of it. */
  cpu: { processes: number; beforePct: number; recoveryPct: number; peakPct: number };
  messages: { acked: number; ackedLost: number; refused: number; wrongClients: number; duplicates: number; outOfOrder: number; missing: number };
  /** Every client connected, joined and with its room's messages at the end. */
  allReady: boolean;
  wallMs: number;
}

type Log = (line: string) => void;

const delay = (ms: number) => new Promise((resolve) => setTimeout(resolve, ms));

/** Nearest-rank percentile of sorted values. */
function percentile(sorted: number[], p: number): number {
  if (sorted.length === 0) return Number.NaN;
  return sorted[Math.min(sorted.length - 1, Math.max(0, Math.ceil((p / 100) * sorted.length) - 1))]!;
}

function spread(values: number[]): Spread {
  const sorted = values.filter((v) => v >= 0).sort((a, b) => a - b);
  return { p50: percentile(sorted, 50), p99: percentile(sorted, 99), max: sorted.at(-1) ?? Number.NaN };
}

/** The most values in any window of `width` ms (sorted input). */
function peakIn(sorted: number[], width: number): number {
  let peak = 0;
  let lo = 0;
  for (let hi = 0; hi < sorted.length; hi++) {
    while (sorted[hi]! - sorted[lo]! >= width) lo++;
    peak = Math.max(peak, hi - lo + 1);
  }
  return peak;
}

/**
 * Raises this process's open-file limit (soft and hard, as root) so that everything the lab spawns
 * from now on inherits it: nginx's workers, `roomcast cluster` and the client runners hold one or
 * two descriptors per client.
 */
export function raiseFileLimit(wanted: number): number {
  try {
    execFileSync("prlimit", ["--pid", String(process.pid), `--nofile=${wanted}:${wanted}`], { stdio: "ignore" });
  } catch {
    // not root or no prlimit: what we have
  }
  const limits = readFileSync(`/proc/${process.pid}/limits`, "utf8");
  const line = limits.split("\n").find((l) => l.startsWith("Max open files"));
  return Number(line?.split(/\s+/)[3] ?? Number.NaN);
}

/** CPU seconds (user + system) of the processes, from /proc (0 for one that is gone). */
function cpuSeconds(pids: number[], tick: number): number {
  let ticks = 0;
  for (const pid of pids) {
    try {
      const stat = readFileSync(`/proc/${pid}/stat`, "utf8");
      const fields = stat.slice(stat.lastIndexOf(")") + 2).split(" ");
      ticks += Number(fields[11]) + Number(fields[12]); // utime, stime (fields 14 and 15)
    } catch {
      // exited
    }
  }
  return ticks / tick;
}

function sum(results: RecoveryResult[], key: "members" | "ready" | "lost" | "recovered" | "wrong"): number {
  return results.reduce((n, r) => n + r[key], 0);
}

/** Brings the lab up, runs the avalanche, tears the lab down; `log` hears the progress. */
export async function runAvalanche(options: AvalancheOptions, log: Log = () => {}): Promise<AvalancheResult> {
  const started = Date.now();
  const o = {
    rooms: 100, clientHosts: 8, workers: 2, senders: 4, sayIntervalMs: 200, openRate: 1000, recoveryTimeoutMs: 120_000, balance: "hash" as const,
    ...options,
  };
  if (o.rooms * 2 > o.clients) throw new Error(`--rooms ${o.rooms}: at most half the clients (a member on each app host in every room)`);
  if (o.senders > o.rooms) throw new Error(`--senders ${o.senders}: at most one a room (${o.rooms} rooms)`);
  const files = raiseFileLimit(Math.max(65_536, o.clients * 4));
  if (files < o.clients * 2 + 1000) log(`warning: open files limited to ${files}; nginx needs two a client`);
  const lab = await Lab.start({
    clientHosts: o.clientHosts,
    workers: o.workers,
    // senders say every sayIntervalMs: keep them under the rate limit
    roomcastFlags: ["--rate-limit", String(Math.max(10, Math.ceil(2000 / o.sayIntervalMs))), "--rate-burst", "50"],
    nginxFlags: ["--balance", o.balance, "--worker-connections", String(Math.max(4096, o.clients * 2 + 1024))],
  });
  log(`lab ${lab.id} up in ${((Date.now() - started) / 1000).toFixed(1)} s (open files ${files})`);
  const stopSenders = { stop: false };
  try {
    // Which app host nginx sends each client host to (sticky by address): one probe member each.
    const runners = new Map<string, ClientHost>();
    const appOf = new Map<string, string>();
    for (const host of lab.clientHosts) {
      const runner = lab.clients(host);
      runners.set(host, runner);
      const before = await Promise.all(lab.appHosts.map((a) => lab.connectionsOn(a)));
      await runner.open({ url: lab.edgeUrl, room: "probe", names: [`probe-${host}`], reconnect: false });
      const now = await Promise.all(lab.appHosts.map((a) => lab.connectionsOn(a)));
      const app = lab.appHosts.find((_, i) => now[i]! - before[i]! === 1);
      if (!app) throw new Error(`could not tell which app host ${host} is sent to`);
      appOf.set(host, app);
      await runner.close();
    }
    const sides = ["app1", "app2"].map((app) => lab.clientHosts.filter((h) => appOf.get(h) === app));
    if (sides.some((s) => s.length === 0)) {
      throw new Error(`nginx sends every client host to one app host (${[...appOf].map(([h, a]) => `${h}→${a}`).join(" ")}): try another --client-hosts`);
    }

    // Clients alternate between the sides (half on each app host), each side's spread over its
    // hosts; client i is in room ⌊i/2⌋ mod rooms, so every room has members on both sides.
    const byHost = new Map<string, Map<string, string[]>>(lab.clientHosts.map((h) => [h, new Map()]));
    const counts = new Map<string, number>();
    const firstOf = new Map<string, { host: string; name: string }[]>();
    for (let i = 0; i < o.clients; i++) {
      const side = sides[i % 2]!;
      const host = side[Math.floor(i / 2) % side.length]!;
      const room = `room-${Math.floor(i / 2) % o.rooms}`;
      const name = `${host}-${counts.get(host) ?? 0}`;
      counts.set(host, (counts.get(host) ?? 0) + 1);
      const rooms = byHost.get(host)!;
      rooms.set(room, [...(rooms.get(room) ?? []), name]);
      const first = firstOf.get(room) ?? [];
      if (first.length < 2) first.push({ host, name }); // one on app1's side, one on app2's
      firstOf.set(room, first);
    }
    const roomNames = Array.from({ length: o.rooms }, (_, i) => `room-${i}`);
    const onApp1 = sides[0]!.reduce((n, h) => n + (counts.get(h) ?? 0), 0);

    const opening = Date.now();
    log(`opening ${o.clients} clients in ${o.rooms} rooms: ${lab.clientHosts.map((h) => `${h}→${appOf.get(h)} ${counts.get(h) ?? 0}`).join(", ")}`);
    await Promise.all(
      lab.clientHosts.map(async (host) => {
        const runner = runners.get(host)!;
        const members = counts.get(host) ?? 0;
        const spreadMs = Math.round((members / (o.openRate / lab.clientHosts.length)) * 1000);
        await Promise.all(
          [...byHost.get(host)!].map(([room, names]) =>
            runner.open({ url: lab.edgeUrl, room, names, reconnect: SDK_BACKOFF, spreadMs, timeoutMs: spreadMs + 60_000 }),
          ),
        );
      }),
    );
    log(`${o.clients} clients joined in ${((Date.now() - opening) / 1000).toFixed(1)} s`);

    // A first message in every room, so that every client re-joins with `since`.
    await Promise.all(roomNames.map((room) => { const f = firstOf.get(room)![0]!; return runners.get(f.host)!.sayReliably(f.name, `hello ${room}`); }));
    const histories = async () => new Map(await Promise.all(roomNames.map(async (r) => [r, await roomHistory(lab, r)] as const)));
    const warm = Object.fromEntries(await histories());
    const warmed = await Promise.all([...runners.values()].map((r) => r.recovery({ since: Date.now(), expected: warm, timeoutMs: 30_000 })));
    if (warmed.some((w) => !w.done)) throw new Error(`not every client had the first message of its room: ${JSON.stringify(warmed.map((w) => w.worst[0])).slice(0, 500)}`);

    // The stream: senders in their own rooms, alternating sides, until the recovery is over.
    const acked: { room: string; id: string }[] = [];
    let refused = 0;
    const streams = roomNames.slice(0, o.senders).map(async (room, i) => {
      const sender = firstOf.get(room)![i % 2]!;
      const runner = runners.get(sender.host)!;
      for (let n = 0; !stopSenders.stop; n++) {
        try {
          acked.push({ room, id: await runner.sayReliably(sender.name, `${sender.name} ${n}`, 60_000) });
        } catch {
          refused++;
        }
        await delay(o.sayIntervalMs);
      }
    });

    const app2Pids = pidsIn(lab.host("app2").netns);
    const tick = Number(execFileSync("getconf", ["CLK_TCK"], { encoding: "utf8" }).trim()) || 100;
    const cpuBefore0 = cpuSeconds(app2Pids, tick);
    await delay(2000);
    const cpuBefore = ((cpuSeconds(app2Pids, tick) - cpuBefore0) / 2) * 100;

    const lossAt = Date.now();
    const killed = lab.killHost("app1").length;
    const cpuAtLoss = cpuSeconds(app2Pids, tick);
    log(`app1 lost (${killed} processes SIGKILLed) with ${acked.length} messages acknowledged; ${onApp1} clients were on it`);

    // Wait for every lost client to be back, sampling app2's CPU meanwhile.
    const samples: { at: number; cpu: number }[] = [{ at: lossAt, cpu: cpuAtLoss }];
    let allRecoveredAt = 0;
    let lastLog = lossAt;
    for (;;) {
      await delay(500);
      samples.push({ at: Date.now(), cpu: cpuSeconds(app2Pids, tick) });
      const now = await Promise.all([...runners.values()].map((r) => r.recovery({ since: lossAt })));
      const lost = sum(now, "lost");
      const recovered = sum(now, "recovered");
      if (lost >= onApp1 && recovered === lost && sum(now, "ready") === o.clients) {
        allRecoveredAt = Date.now();
        break;
      }
      if (Date.now() - lossAt > o.recoveryTimeoutMs) break;
      if (Date.now() - lastLog >= 5000) {
        lastLog = Date.now();
        log(`  ${((Date.now() - lossAt) / 1000).toFixed(0)} s after the loss: ${recovered} of ${lost} lost clients recovered`);
      }
    }
    const endAt = allRecoveredAt || Date.now();
    const windowS = Math.max(0.001, (samples.at(-1)!.at - lossAt) / 1000);
    const recoveryPct = ((samples.at(-1)!.cpu - cpuAtLoss) / windowS) * 100;
    // the busiest second: each sample against the latest one at least 1 s before it
    let peakPct = 0;
    for (const s of samples) {
      const from = samples.findLast((e) => e.at <= s.at - 1000);
      if (from) peakPct = Math.max(peakPct, ((s.cpu - from.cpu) / ((s.at - from.at) / 1000)) * 100);
    }
    if (peakPct === 0) peakPct = recoveryPct;

    // A little more stream on app2 alone, then the truth: the rooms' histories.
    await delay(1000);
    stopSenders.stop = true;
    await Promise.all(streams);
    const final = await histories();
    const inHistory = new Set([...final.values()].flat());
    const ackedLost = acked.filter((a) => !inHistory.has(a.id)).length;
    const judged = await Promise.all(
      [...runners.values()].map((r) => r.recovery({ since: lossAt, expected: Object.fromEntries(final), timeoutMs: 30_000 })),
    );
    const all = (key: "firstAttemptMs" | "connectedMs" | "rejoinedMs" | "attempts") => judged.flatMap((r) => r[key]);
    const attempts = all("attempts").sort((a, b) => a - b);
    const firstAttempts = all("firstAttemptMs").filter((v) => v >= 0).sort((a, b) => a - b);
    const lost = sum(judged, "lost");
    const recovered = sum(judged, "recovered");
    const totals = judged.reduce(
      (t, r) => ({ duplicates: t.duplicates + r.totals.duplicates, outOfOrder: t.outOfOrder + r.totals.outOfOrder, missing: t.missing + r.totals.missing }),
      { duplicates: 0, outOfOrder: 0, missing: 0 },
    );
    const wrong = judged.flatMap((r) => r.worst).slice(0, 3);
    if (wrong.length > 0) log(`clients without their room's messages once, in order, e.g. ${JSON.stringify(wrong).slice(0, 800)}`);
    return {
      clients: o.clients,
      rooms: o.rooms,
      hosts: lab.clientHosts.map((host) => ({ host, app: appOf.get(host)!, members: counts.get(host) ?? 0 })),
      onApp1,
      killed,
      lost,
      recovered,
      neverRecovered: lost - recovered,
      firstAttempt: { ...spread(firstAttempts), min: firstAttempts[0] ?? Number.NaN, peakPer10ms: peakIn(firstAttempts, 10), peakPer100ms: peakIn(firstAttempts, 100) },
      connected: spread(all("connectedMs")),
      rejoined: spread(all("rejoinedMs")),
      attempts: { median: percentile(attempts, 50), max: attempts.at(-1) ?? 0 },
      allRecoveredMs: endAt - lossAt,
      cpu: { processes: app2Pids.length, beforePct: cpuBefore, recoveryPct, peakPct },
      messages: { acked: acked.length, ackedLost, refused, wrongClients: sum(judged, "wrong"), ...totals },
      allReady: judged.every((r) => r.done),
      wallMs: Date.now() - started,
    };
  } finally {
    stopSenders.stop = true;
    await lab.stop();
  }
}

const seconds = (ms: number) => (Number.isNaN(ms) ? "—" : `${(ms / 1000).toFixed(2)} s`);

/** The summary table, comparable with Socket.IO's "deploy avalanche" (p50, p99, max, % never recovered). */
export function formatSummary(r: AvalancheResult): string {
  const pct = (n: number, of: number) => (of === 0 ? "—" : `${((n / of) * 100).toFixed(2)} %`);
  const row = (label: string, s: Spread) => `| ${label.padEnd(44)} | ${seconds(s.p50).padStart(8)} | ${seconds(s.p99).padStart(8)} | ${seconds(s.max).padStart(8)} |`;
  const lines = [
    `Reconnect avalanche: ${r.clients} clients in ${r.rooms} rooms on ${r.hosts.length} client hosts ` +
      `(${r.hosts.map((h) => `${h.host}→${h.app} ${h.members}`).join(", ")}); app1 lost (${r.killed} processes SIGKILLed) with ${r.onApp1} clients on it.`,
    `Back-off: socket.io-client as the SDK, ${SDK_BACKOFF.delayMs} ms doubling to ${SDK_BACKOFF.delayMaxMs} ms, randomization ${SDK_BACKOFF.randomization}.`,
    "",
    `| ${"after the loss (clients that lost their connection)".padEnd(44)} |      p50 |      p99 |      max |`,
    `|${"-".repeat(46)}|---------:|---------:|---------:|`,
    row("first reconnect attempt", r.firstAttempt),
    row("connected again (through nginx to app2)", r.connected),
    row("recovered (re-joined with since, history in)", r.rejoined),
    "",
    `| ${"".padEnd(44)} | |`,
    `|${"-".repeat(46)}|---|`,
    ...[
      ["clients that lost their connection", `${r.lost} of ${r.clients}`],
      ["recovered", `${r.recovered}; every one in ${seconds(r.allRecoveredMs)}`],
      ["never recovered", `${r.neverRecovered} (${pct(r.neverRecovered, r.lost)})`],
      ["reconnect attempts per client", `median ${r.attempts.median}, max ${r.attempts.max}`],
      ["spread of first attempts", `${seconds(r.firstAttempt.min)}–${seconds(r.firstAttempt.max)} after the loss; at most ${r.firstAttempt.peakPer10ms} in any 10 ms, ${r.firstAttempt.peakPer100ms} in any 100 ms`],
      [`app2 CPU (${r.cpu.processes} processes, % of a core)`, `${r.cpu.beforePct.toFixed(0)} % before, ${r.cpu.recoveryPct.toFixed(0)} % mean during the recovery, ${r.cpu.peakPct.toFixed(0)} % busiest second`],
      ["messages acknowledged through the loss", `${r.messages.acked} (${r.messages.refused} refused), ${r.messages.ackedLost} lost`],
      ["clients without every message once, in order", `${r.messages.wrongClients} (duplicates ${r.messages.duplicates}, out of order ${r.messages.outOfOrder}, missing ${r.messages.missing})`],
    ].map(([k, v]) => `| ${k!.padEnd(44)} | ${v} |`),
    "",
    `Socket.IO's published "deploy avalanche" (5,000 clients): p50 4.97 s, 3.8 % never reconnected. Here: p50 ${seconds(r.rejoined.p50)} to recovered ` +
      `(${seconds(r.connected.p50)} to connected), ${pct(r.neverRecovered, r.lost)} never recovered. Wall time ${seconds(r.wallMs)}.`,
  ];
  return lines.join("\n");
}

function count(min: number, max: number) {
  return (value: string): number => {
    const n = Number(value);
    if (!/^\d+$/.test(value) || n < min || n > max) throw new InvalidArgumentError(`a whole number from ${min} to ${max}`);
    return n;
  };
}

async function main(): Promise<void> {
  const fail = (message: string): never => {
    process.stderr.write(`lab:avalanche: ${message}\n`);
    process.exit(1);
  };
  const program = new Command("npm run lab:avalanche --")
    .description(
      "Issue 13 case 4, the reconnect avalanche: bring the lab up (needs root), open the clients in many rooms over both app hosts, " +
        "keep a few senders going, lose app1 (SIGKILL), measure how long its clients take to recover through app2, app2's CPU, " +
        "and that nothing acknowledged is lost; print a table; tear the lab down. Exit 0 when every client recovered " +
        "with every message and nothing acknowledged was lost, 2 when not, 1 on a mistake.",
    )
    .option("--clients <count>", "clients, half on each app host", count(4, 50_000), 10_000)
    .option("--rooms <count>", "rooms (at most half the clients)", count(1, 25_000), 100)
    .option("--client-hosts <count>", `client hosts, one runner each, each in its own /24 (2 to ${MAX_CLIENT_HOSTS})`, count(2, MAX_CLIENT_HOSTS), 8)
    .option("--workers <count>", "workers per app host", count(1, 16), 2)
    .option("--senders <count>", "members that keep sending through the loss (one a room)", count(1, 1000), 4)
    .option("--say-interval <ms>", "ms between a sender's messages", count(20, 10_000), 200)
    .option("--open-rate <per-second>", "connections opened a second (over every client host)", count(10, 100_000), 1000)
    .option("--recovery-timeout <seconds>", "after this, a client not back counts as never recovered", count(5, 3600), 120)
    .option("--balance <hash|ip_hash>", "nginx stickiness (see `roomcast nginx --help`)", "hash")
    .option("--json", "print the result as JSON after the table")
    .configureOutput({ writeErr: (s) => process.stderr.write(s.startsWith("error: ") ? `lab:avalanche: ${s.slice(7)}` : s) })
    .exitOverride((err) => process.exit(err.exitCode === 0 ? 0 : 1));
  program.parse();
  const opts = program.opts<{
    clients: number; rooms: number; clientHosts: number; workers: number; senders: number; sayInterval: number;
    openRate: number; recoveryTimeout: number; balance: string; json?: boolean;
  }>();
  if (opts.balance !== "hash" && opts.balance !== "ip_hash") fail(`--balance ${opts.balance}: hash or ip_hash`);
  if (opts.rooms * 2 > opts.clients) fail(`--rooms ${opts.rooms}: at most half of --clients ${opts.clients} (a member on each app host in every room)`);
  if (opts.senders > opts.rooms) fail(`--senders ${opts.senders}: at most --rooms ${opts.rooms}`);
  const unavailable = labUnavailable();
  if (unavailable) fail(unavailable);
  const log = (line: string) => process.stderr.write(`${line}\n`);
  let result: AvalancheResult;
  try {
    result = await runAvalanche(
      {
        clients: opts.clients, rooms: opts.rooms, clientHosts: opts.clientHosts, workers: opts.workers, senders: opts.senders,
        sayIntervalMs: opts.sayInterval, openRate: opts.openRate, recoveryTimeoutMs: opts.recoveryTimeout * 1000,
        balance: opts.balance as "hash" | "ip_hash",
      },
      log,
    );
  } catch (err) {
    fail(err instanceof Error ? err.message.split("\n")[0]! : String(err));
  }
  process.stdout.write(`${formatSummary(result!)}\n`);
  if (opts.json) process.stdout.write(`${JSON.stringify(result!)}\n`);
  process.exit(result!.neverRecovered === 0 && result!.messages.ackedLost === 0 && result!.messages.wrongClients === 0 ? 0 : 2);
}

if (process.argv[1] && import.meta.url === pathToFileURL(process.argv[1]).href) await main();
