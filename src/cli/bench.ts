import { randomBytes } from "node:crypto";
import { Command, Option } from "commander";
import { z } from "zod";
import { formatReport, runBench, type BenchOptions, type BenchReport } from "../../bench/bench.js";
import { SATURATION_LIMITS, SATURATION_RATES, WORKLOADS, type WorkloadName } from "../../bench/workloads.js";
import { ConfigError, resolveOptions, type OptionSpec } from "../config.js";
import { addOptions, fail } from "./options.js";

const benchOptions = {
  workload: { flag: "--workload <name>", env: "BENCH_WORKLOAD", default: "classroom", description: `named workload: ${Object.keys(WORKLOADS).join(", ")}` },
  rooms: { flag: "--rooms <n>", env: "BENCH_ROOMS", description: "rooms (overrides the workload)" },
  clients: { flag: "--clients <n>", env: "BENCH_CLIENTS", description: "clients per room (overrides the workload)" },
  senders: { flag: "--senders <n>", env: "BENCH_SENDERS", description: "senders per room (overrides the workload)" },
  rate: { flag: "--rate <msg/s>", env: "BENCH_RATE", description: "messages per second per sender (overrides the workload)" },
  duration: { flag: "--duration <s>", env: "BENCH_DURATION", description: "measured seconds (overrides the workload)" },
  warmup: { flag: "--warmup <s>", env: "BENCH_WARMUP", description: "seconds of sending before measuring (overrides the workload)" },
  transport: { flag: "--transport <websocket|polling>", env: "BENCH_TRANSPORT", default: "websocket", description: "how clients connect (websocket: a lean raw-frame client; polling: socket.io-client)" },
  procs: { flag: "--procs <n>", env: "BENCH_PROCS", default: "1", description: "generator processes, so the generator is not the bottleneck" },
  authSecret: { flag: "--auth-secret <secret>", env: "BENCH_AUTH_SECRET", description: "every client connects with an HS256 token signed with this secret (start roomcast with the same --auth-secret)" },
  json: { flag: "--json", env: "BENCH_JSON", description: "print the report as JSON" },
} satisfies Record<string, OptionSpec>;

const count = (name: string, min: number) => z.coerce.number({ error: `${name} must be a number` }).int({ error: `${name} must be a whole number` }).min(min, { error: `${name} must be at least ${min}` });
const positive = (name: string) => z.coerce.number({ error: `${name} must be a number` }).positive({ error: `${name} must be above 0` });
const schema = z.object({
  workload: z.enum(Object.keys(WORKLOADS) as [WorkloadName, ...WorkloadName[]], { error: `--workload must be one of ${Object.keys(WORKLOADS).join(", ")}` }),
  rooms: count("--rooms", 1).optional(),
  clients: count("--clients", 1).optional(),
  senders: count("--senders", 0).optional(),
  rate: positive("--rate").optional(),
  duration: positive("--duration").optional(),
  warmup: z.coerce.number().min(0, { error: "--warmup must be 0 or more" }).optional(),
  transport: z.enum(["websocket", "polling"], { error: "--transport must be websocket or polling" }),
  procs: count("--procs", 1),
  authSecret: z.string().min(1, { error: "--auth-secret must not be empty" }).optional(),
  json: z.union([z.literal(true), z.enum(["1", "true", "yes"])]).optional(),
});

/** What each named workload does, for --help (from bench/workloads.ts, so the two never differ). */
function workloadHelp(): string {
  const names = Object.keys(WORKLOADS) as WorkloadName[];
  const width = Math.max(...names.map((name) => name.length));
  const rows = names.map((name) => `  ${name.padEnd(width)}  ${WORKLOADS[name].description}`);
  return `\nWorkloads (--workload NAME; the flags above override a workload's figures):\n${rows.join("\n")}`;
}

export function benchCommand(): Command {
  const command = new Command("bench")
    .description(
      "Load generator: connects many clients to one or more roomcast URLs (spread round-robin, so rooms span processes), " +
        "sends at a set rate, prints progress on stderr and a summary: deliveries, loss, duplicates, order, latency, " +
        "and the servers' CPU per delivered message read from their /metrics.",
    )
    .addHelpText("after", workloadHelp())
    .addOption(new Option("--url <url...>", "server URL(s), repeatable (env BENCH_URLS, comma-separated; default http://127.0.0.1:3000)"))
    .action(async (flags: Record<string, unknown>) => {
      let o;
      let urls: string[];
      try {
        o = resolveOptions(benchOptions, schema, flags);
        urls = (flags["url"] as string[] | undefined) ?? (process.env["BENCH_URLS"] ?? "http://127.0.0.1:3000").split(/[,\s]+/).filter(Boolean);
        for (const url of urls) if (!/^https?:\/\/[^\s/]+\/?$/.test(url)) throw new ConfigError(`--url ${url}: expected http://HOST:PORT`);
      } catch (err) {
        if (err instanceof ConfigError) fail(err.message);
        throw err;
      }
      const w = WORKLOADS[o.workload];
      const options: BenchOptions = {
        urls: urls.map((u) => u.replace(/\/$/, "")),
        rooms: o.rooms ?? w.rooms,
        clients: o.clients ?? w.clients,
        senders: o.senders ?? w.senders,
        rate: o.rate ?? w.rate,
        durationS: o.duration ?? w.durationS,
        warmupS: o.warmup ?? w.warmupS,
        transport: o.transport,
        procs: o.procs,
        joinWindowS: w.joinWindowS,
        authSecret: o.authSecret,
        roomPrefix: `bench-${randomBytes(3).toString("hex")}`,
        progress: (line) => process.stderr.write(`${line}\n`),
      };
      try {
        if (o.workload === "saturation") {
          const steps: BenchReport[] = [];
          let held: BenchReport | undefined;
          for (const rate of o.rate === undefined ? SATURATION_RATES : [o.rate]) {
            const r = await runBench({ ...options, rate, roomPrefix: `${options.roomPrefix}-${rate}` });
            steps.push(r);
            const ok = r.deliveryRatio >= SATURATION_LIMITS.minRatio && r.latencyMs.p99 <= SATURATION_LIMITS.maxP99Ms;
            process.stderr.write(`rate ${rate}/s per sender: ratio ${(r.deliveryRatio * 100).toFixed(3)}%, p99 ${r.latencyMs.p99} ms → ${ok ? "held" : "did not hold"}\n`);
            if (!ok) break;
            held = r;
          }
          if (o.json) process.stdout.write(`${JSON.stringify({ workload: "saturation", highestHeld: held ?? null, steps }, null, 2)}\n`);
          else process.stdout.write(held ? `${formatReport(held, "saturation: highest rate that held")}\n` : "saturation: even the lowest rate did not hold\n");
        } else {
          const r = await runBench(options);
          process.stdout.write(o.json ? `${JSON.stringify({ workload: o.workload, ...r }, null, 2)}\n` : `${formatReport(r, o.workload)}\n`);
        }
      } catch (err) {
        fail(err instanceof Error ? err.message : String(err));
      }
      process.exit(0);
    });
  return addOptions(command, benchOptions);
}
