/**
 * `npm run bench:slow-consumer`: the memory of a roomcast process over DURATION seconds (default
 * 120) with one member that never reads (but answers pings, so it looks alive) in a busy room,
 * with the default --max-queue-bytes (1 MiB) and with the cap out of the way (1 GiB). Prints the
 * process's RSS every 10 s for both, side by side, and whether the member was closed.
 *
 * The room: 50 members reading normally (the bench's lean client), 5 of them sending 10 messages
 * of 6,000 characters a second each: 300 KB/s for every member.
 */
import { spawn, type ChildProcess } from "node:child_process";
import { fileURLToPath } from "node:url";
import { createClient, type BenchClient } from "./clients.js";
import { eventPacket, RawWebSocket } from "../test/helpers/raw.js";

const DURATION_S = Number(process.env["DURATION"] ?? 120);
const SAMPLE_S = 10;
const CLI = fileURLToPath(new URL("../src/cli/main.js", import.meta.url));
const READERS = 50;
const SENDERS = 5;
const RATE = 10;
const TEXT = "x".repeat(6000);

function startServer(cap: number): Promise<{ child: ChildProcess; url: string }> {
  const child = spawn(process.execPath, [CLI, "serve", "--host", "127.0.0.1", "--port", "0", "--max-queue-bytes", String(cap), "--max-text-length", "10000", "--rate-limit", "100", "--rate-burst", "100"], {
    stdio: ["ignore", "pipe", "inherit"],
  });
  return new Promise((resolve, reject) => {
    let out = "";
    child.stdout!.on("data", (d: Buffer) => {
      out += d.toString();
      const m = /"port":(\d+)/.exec(out);
      if (m) resolve({ child, url: `http://127.0.0.1:${m[1]}` });
    });
    child.once("exit", (code) => reject(new Error(`roomcast exited (${code})`)));
  });
}

async function metrics(url: string): Promise<Record<string, number>> {
  const text = await (await fetch(`${url}/metrics`)).text();
  const out: Record<string, number> = {};
  for (const line of text.split("\n")) {
    const m = /^([a-z_]+) ([0-9.e+]+)$/.exec(line);
    if (m) out[m[1]!] = Number(m[2]);
  }
  return out;
}

interface Run {
  cap: number;
  rssMb: number[];
  externalMb: number[];
  closedAtS: number | undefined;
  delivered: number;
}

async function run(cap: number): Promise<Run> {
  const { child, url } = await startServer(cap);
  const room = `busy-${cap}`;
  let delivered = 0;
  const clients: BenchClient[] = [];
  for (let i = 0; i < READERS; i++) {
    const c = createClient("websocket", url, room, { said: () => delivered++ });
    await c.join(`reader${i}`);
    clients.push(c);
  }
  const lazy = await RawWebSocket.open(url, room);
  lazy.send(eventPacket("join", { username: "lazy" }, 1));
  await lazy.waitFor((f) => f.startsWith("431"), "the join's answer");
  lazy.pause();
  const pong = setInterval(() => lazy.send("3"), 10_000);
  const senders = setInterval(() => {
    for (let s = 0; s < SENDERS; s++) void clients[s]!.say(TEXT);
  }, 1000 / RATE);
  const result: Run = { cap, rssMb: [], externalMb: [], closedAtS: undefined, delivered: 0 };
  const started = Date.now();
  for (let t = 0; t <= DURATION_S; t += SAMPLE_S) {
    await new Promise((r) => setTimeout(r, Math.max(0, started + t * 1000 - Date.now())));
    const m = await metrics(url);
    result.rssMb.push((m["process_resident_memory_bytes"] ?? NaN) / 2 ** 20);
    result.externalMb.push((m["nodejs_external_memory_bytes"] ?? NaN) / 2 ** 20);
    if (result.closedAtS === undefined && (m["roomcast_slow_consumers_total"] ?? 0) > 0) result.closedAtS = (Date.now() - started) / 1000;
    process.stderr.write(`cap ${cap}: ${t} s, RSS ${result.rssMb.at(-1)!.toFixed(1)} MB\n`);
  }
  clearInterval(senders);
  clearInterval(pong);
  result.delivered = delivered;
  for (const c of clients) c.close();
  lazy.close();
  child.kill("SIGTERM");
  await new Promise((r) => child.once("exit", r));
  return result;
}

const capped = await run(1024 * 1024);
const uncapped = await run(1024 * 1024 * 1024);
const rows = capped.rssMb.map((_, i) => `| ${i * SAMPLE_S} s | ${capped.rssMb[i]!.toFixed(1)} | ${capped.externalMb[i]!.toFixed(1)} | ${uncapped.rssMb[i]!.toFixed(1)} | ${uncapped.externalMb[i]!.toFixed(1)} |`);
process.stdout.write(
  [
    `One member that never reads, in a room of ${READERS} readers taking ${SENDERS * RATE} messages of ${TEXT.length} characters a second (${((SENDERS * RATE * TEXT.length) / 1000).toFixed(0)} KB/s per member).`,
    "",
    "| time | RSS MB, cap 1 MiB | external MB, cap 1 MiB | RSS MB, no cap | external MB, no cap |",
    "|---|---|---|---|---|",
    ...rows,
    "",
    `With the cap the member was closed after ${capped.closedAtS === undefined ? "— (never)" : `${capped.closedAtS.toFixed(0)} s (first sample after it)`}; without: ${uncapped.closedAtS === undefined ? "never" : `${uncapped.closedAtS.toFixed(0)} s`}.`,
    `Deliveries to the readers: ${capped.delivered} with the cap, ${uncapped.delivered} without.`,
    "",
  ].join("\n"),
);
process.exit(0);
