/**
 * `npm run lab`: the article's layout for people — the lab of lab/lab.ts up until Ctrl-C, with
 * the URL to open and every host's address. Needs root and a build (`npm run build`).
 */
import { Command, InvalidArgumentError } from "commander";
import { Lab, PORT_BASE, REDIS_PORT } from "./lab.js";
import { labUnavailable, MAX_CLIENT_HOSTS } from "./netns.js";

function count(max: number) {
  return (value: string): number => {
    const n = Number(value);
    if (!Number.isInteger(n) || n < 1 || n > max) throw new InvalidArgumentError(`a whole number from 1 to ${max}`);
    return n;
  };
}

function fail(message: string): never {
  process.stderr.write(`roomcast lab: ${message}\n`);
  process.exit(1);
}

const program = new Command("npm run lab --")
  .description(
    "Bring up the article's layout on this machine, one Linux network namespace per host: redis, " +
      "app hosts running `roomcast cluster`, nginx on the edge, client hosts in different /24s. " +
      "Ctrl-C tears it all down. Needs root.",
  )
  .option("--app-hosts <count>", "app hosts, each a `roomcast cluster`", count(50), 2)
  .option("--workers <count>", "workers per app host", count(16), 2)
  .option("--client-hosts <count>", `client hosts, each in its own /24 (at most ${MAX_CLIENT_HOSTS})`, count(MAX_CLIENT_HOSTS), 4)
  .option("--balance <hash|ip_hash>", "nginx stickiness (see `roomcast nginx --help`)", "hash")
  .configureOutput({ writeErr: (s) => process.stderr.write(s.startsWith("error: ") ? `roomcast lab: ${s.slice(7)}` : s) })
  .exitOverride((err) => process.exit(err.exitCode === 0 ? 0 : 1));
program.parse();
const options = program.opts<{ appHosts: number; workers: number; clientHosts: number; balance: string }>();
if (options.balance !== "hash" && options.balance !== "ip_hash") fail(`--balance ${options.balance}: hash or ip_hash`);

const unavailable = labUnavailable();
if (unavailable) fail(unavailable);

let lab: Lab;
try {
  lab = await Lab.start({
    appHosts: options.appHosts,
    workers: options.workers,
    clientHosts: options.clientHosts,
    nginxFlags: ["--balance", options.balance],
  });
} catch (err) {
  fail(`could not bring the lab up: ${err instanceof Error ? err.message.split("\n")[0] : String(err)}`);
}

const out = (line = "") => process.stdout.write(`${line}\n`);
const pad = (s: string) => s.padEnd(7);
out(`roomcast lab ${lab.id} is up (addresses ${lab.plan.network}; this machine is ${lab.plan.runner} on bridge ${lab.names.bridge})`);
out();
out(`  open   ${lab.edgeUrl}/   nginx on the edge host (${lab.plan.edge})`);
out(`  ${pad("redis")}${lab.plan.redis}:${REDIS_PORT}`);
for (const host of lab.appHosts) {
  const workers = Array.from({ length: options.workers }, (_, i) => `:${PORT_BASE + i}`).join(" ");
  out(`  ${pad(host)}${lab.host(host).address}   roomcast cluster, workers on ${workers}`);
}
for (const host of lab.clientHosts) out(`  ${pad(host)}${lab.host(host).address}   client host`);
out();
out(`  A command on a host: ip netns exec ${lab.host(lab.clientHosts[0] ?? "edge").netns} <command>`);
out("  Ctrl-C tears everything down.");

let stopping = false;
for (const host of [...lab.appHosts, "redis", "edge"]) {
  void lab.service(host).exited.then((code) => stopping || out(`roomcast lab: ${host}'s service exited (${code})`));
}

// The lab tears itself down on these signals and says so (lab/owners.ts); this only exits 0.
for (const signal of ["SIGINT", "SIGTERM", "SIGHUP"] as const) {
  process.on(signal, () => {
    stopping = true;
    void lab.stop().then(() => process.exit(0));
  });
}
