/**
 * The Linux side of the lab: one network namespace per host, each joined by a veth pair to one
 * bridge of the root namespace, driven with iproute2 (`ip`). Nothing here knows about roomcast.
 *
 * Names. Every name carries the lab's id (4 hex digits), so two labs (two test files run at once
 * by `node --test`) never meet, and a lab left by a killed process can be found and swept:
 *   bridge      rcl<id>                 (7 characters; Linux allows 15)
 *   veth        rcl<id>-<host>          the root side, a port of the bridge; the host's side is
 *                                       `eth0` inside its namespace
 *   namespace   rclab-<pid>-<id>-<host> <pid>: the process that owns the lab
 *
 * Addresses. Only inside 10.77.0.0/16, cut into 16 slots of a /20, one per running lab, so labs
 * side by side have disjoint routes in the root namespace. Slot s is 10.77.(16s).0/20:
 *   10.77.16s.1      the root namespace (the bridge): how the test runner reaches every host
 *   10.77.16s.2      edge (nginx)
 *   10.77.16s.3      redis
 *   10.77.16s.(10+i) app host i
 *   10.77.(16s+i).10 client host i (1 ≤ i ≤ 15): each in its own /24, so that nginx's
 *                    `hash $remote_addr` (and `ip_hash`) spread them
 * No namespace has a default route, so nothing a host sends can leave the /20.
 */
import { spawnSync } from "node:child_process";
import { readFileSync } from "node:fs";

export const SLOTS = 16;
export const MAX_CLIENT_HOSTS = 15;
const PREFIX_LENGTH = 20;

export interface HostAddress {
  /** The host's name in the lab: edge, redis, app1…, c1… */
  readonly name: string;
  readonly address: string;
}

export class AddressPlan {
  /** The slot's third octet: 10.77.<base>.0/20. */
  private readonly base: number;

  constructor(readonly slot: number) {
    if (!Number.isInteger(slot) || slot < 0 || slot >= SLOTS) throw new Error(`no lab slot ${slot}`);
    this.base = 16 * slot;
  }

  get network(): string {
    return `10.77.${this.base}.0/${PREFIX_LENGTH}`;
  }
  get runner(): string {
    return `10.77.${this.base}.1`;
  }
  get edge(): string {
    return `10.77.${this.base}.2`;
  }
  get redis(): string {
    return `10.77.${this.base}.3`;
  }
  app(index: number): string {
    if (index < 1 || index > 200) throw new Error(`no app host ${index}`);
    return `10.77.${this.base}.${10 + index}`;
  }
  client(index: number): string {
    if (index < 1 || index > MAX_CLIENT_HOSTS) throw new Error(`no client host ${index} (1 to ${MAX_CLIENT_HOSTS})`);
    return `10.77.${this.base + index}.10`;
  }
  withPrefix(address: string): string {
    return `${address}/${PREFIX_LENGTH}`;
  }
}

/** The names of one lab's bridge, veths and namespaces. */
export class LabNames {
  constructor(
    readonly id: string,
    readonly ownerPid: number,
  ) {
    if (!/^[0-9a-f]{4}$/.test(id)) throw new Error(`a lab id is 4 hex digits, not ${id}`);
  }
  get bridge(): string {
    return `rcl${this.id}`;
  }
  veth(host: string): string {
    const name = `rcl${this.id}-${host}`;
    if (name.length > 15) throw new Error(`host name ${host} too long for an interface name`);
    return name;
  }
  netns(host: string): string {
    return `rclab-${this.ownerPid}-${this.id}-${host}`;
  }
}

/** The owner and lab of a namespace named by LabNames, or undefined for any other namespace. */
export function parseNetnsName(name: string): { ownerPid: number; id: string; host: string } | undefined {
  const match = /^rclab-(\d+)-([0-9a-f]{4})-(.+)$/.exec(name);
  return match ? { ownerPid: Number(match[1]), id: match[2]!, host: match[3]! } : undefined;
}

/** The lab id of a bridge or veth named by LabNames, or undefined for any other interface. */
export function parseLinkName(name: string): string | undefined {
  return /^rcl([0-9a-f]{4})(?:-|$)/.exec(name)?.[1];
}

/**
 * Runs a command to its end and returns its stdout; throws with its stderr when it fails.
 * Synchronous on purpose: the lab is torn down from `process.on("exit")`, where nothing
 * asynchronous runs, and each of these commands takes a few milliseconds.
 */
export function sh(command: string, args: string[], input?: string): string {
  const result = spawnSync(command, args, { input, encoding: "utf8", timeout: 20_000 });
  if (result.error) throw new Error(`${command} ${args.join(" ")}: ${result.error.message}`);
  if (result.status !== 0) throw new Error(`${command} ${args.join(" ")}: ${(result.stderr || result.stdout).trim()}`);
  return result.stdout;
}

/** Like sh, but a failure is ignored (teardown goes on). */
function shQuiet(command: string, args: string[]): void {
  spawnSync(command, args, { stdio: "ignore", timeout: 20_000 });
}

export function listNetns(): string[] {
  const out = sh("ip", ["-j", "netns", "list"]).trim();
  if (out === "") return [];
  return (JSON.parse(out) as { name: string }[]).map((n) => n.name);
}

export function listLinks(): string[] {
  return (JSON.parse(sh("ip", ["-j", "link", "show"])) as { ifname: string }[]).map((l) => l.ifname);
}

/** Every process whose network namespace is `netns` (empty when the namespace is gone). */
export function pidsIn(netns: string): number[] {
  const result = spawnSync("ip", ["netns", "pids", netns], { encoding: "utf8" });
  if (result.status !== 0) return [];
  return result.stdout.split(/\s+/).filter(Boolean).map(Number);
}

/** A process that runs (a zombie, dead but not yet reaped, does not). */
export function isRunning(pid: number): boolean {
  try {
    const stat = readFileSync(`/proc/${pid}/stat`, "utf8");
    return stat.slice(stat.lastIndexOf(")") + 2)[0] !== "Z";
  } catch {
    return false;
  }
}

/**
 * SIGKILLs every process of a namespace, again until none is left (a roomcast primary may fork a
 * new worker between two looks). Returns the pids killed.
 */
export function killAllIn(netns: string): number[] {
  const killed: number[] = [];
  for (let round = 0; round < 50; round++) {
    const pids = pidsIn(netns);
    if (pids.length === 0) return killed;
    for (const pid of pids) {
      try {
        process.kill(pid, "SIGKILL");
        killed.push(pid);
      } catch {
        // gone already
      }
    }
    // A SIGKILLed process leaves the namespace once the kernel has reaped its sockets: wait a bit.
    spawnSync("sleep", ["0.02"]);
  }
  throw new Error(`processes of ${netns} keep coming back: ${pidsIn(netns).join(" ")}`);
}

export function createBridge(names: LabNames, plan: AddressPlan): void {
  sh("ip", ["link", "add", names.bridge, "type", "bridge"]);
  sh("ip", ["addr", "add", plan.withPrefix(plan.runner), "dev", names.bridge]);
  sh("ip", ["link", "set", names.bridge, "up"]);
}

/** A namespace for `host`, plugged into the lab's bridge, with `address` on its `eth0`. */
export function createHost(names: LabNames, plan: AddressPlan, host: string, address: string): void {
  const ns = names.netns(host);
  const veth = names.veth(host);
  sh("ip", ["netns", "add", ns]);
  sh("ip", ["link", "add", veth, "type", "veth", "peer", "name", "eth0", "netns", ns]);
  sh("ip", ["link", "set", veth, "master", names.bridge, "up"]);
  sh("ip", ["-n", ns, "addr", "add", plan.withPrefix(address), "dev", "eth0"]);
  sh("ip", ["-n", ns, "link", "set", "eth0", "up"]);
  sh("ip", ["-n", ns, "link", "set", "lo", "up"]);
}

/** The host's side of the cable, seen from the bridge: down, the host hears and reaches nothing. */
export function setLink(names: LabNames, host: string, state: "up" | "down"): void {
  sh("ip", ["link", "set", names.veth(host), state]);
}

/**
 * Removes everything of the lab `id` on this machine: every process of its namespaces (SIGKILL),
 * the namespaces (their veths go with them, and their nftables tables), the bridge and any veth
 * left over. Idempotent; never throws.
 */
export function destroyLab(id: string): { netns: string[]; links: string[]; pids: number[] } {
  const namespaces = listNetnsQuiet().filter((n) => parseNetnsName(n)?.id === id);
  const pids: number[] = [];
  for (const ns of namespaces) {
    try {
      pids.push(...killAllIn(ns));
    } catch {
      // keep going: the namespace's name goes away below, its last process with its own death
    }
  }
  for (const ns of namespaces) shQuiet("ip", ["netns", "del", ns]);
  const links = listLinksQuiet().filter((l) => parseLinkName(l) === id);
  // veths first: deleting one end deletes the pair; then the bridge
  for (const link of links.filter((l) => l.includes("-"))) shQuiet("ip", ["link", "del", link]);
  for (const link of links.filter((l) => !l.includes("-"))) shQuiet("ip", ["link", "del", link]);
  return { netns: namespaces, links, pids };
}

function listNetnsQuiet(): string[] {
  try {
    return listNetns();
  } catch {
    return [];
  }
}

function listLinksQuiet(): string[] {
  try {
    return listLinks();
  } catch {
    return [];
  }
}

/** The names labUnavailable tries things with: its own, so that a killed probe is swept as well. */
function probeNames(pid = process.pid): { netns: string; bridge: string } {
  return { netns: `rclab-probe-${pid}`, bridge: `rclp${pid.toString(16)}` };
}

/** The pid of a probe's namespace or bridge (see labUnavailable), or undefined for other names. */
export function parseProbeName(name: string): number | undefined {
  const netns = /^rclab-probe-(\d+)$/.exec(name);
  if (netns) return Number(netns[1]);
  const bridge = /^rclp([0-9a-f]+)$/.exec(name);
  return bridge ? parseInt(bridge[1]!, 16) : undefined;
}

/** Why this machine cannot run a lab (not root, no namespaces, no `ip`), or undefined when it can. */
export function labUnavailable(): string | undefined {
  if (process.platform !== "linux") return "the lab needs Linux network namespaces";
  if (process.getuid?.() !== 0) return "the lab needs root (network namespaces, veths, nftables)";
  for (const tool of ["ip", "nft"]) {
    if (spawnSync(tool, ["-V"], { stdio: "ignore" }).error) return `the lab needs \`${tool}\` (${tool === "ip" ? "iproute2" : "nftables"})`;
  }
  const probe = probeNames().netns;
  const added = spawnSync("ip", ["netns", "add", probe], { encoding: "utf8" });
  if (added.status !== 0) return `network namespaces cannot be created here: ${(added.stderr || "ip netns add failed").trim()}`;
  shQuiet("ip", ["netns", "del", probe]);
  const bridge = probeNames().bridge;
  const link = spawnSync("ip", ["link", "add", bridge, "type", "bridge"], { encoding: "utf8" });
  if (link.status !== 0) return `bridges cannot be created here: ${(link.stderr || "ip link add failed").trim()}`;
  shQuiet("ip", ["link", "del", bridge]);
  return undefined;
}
