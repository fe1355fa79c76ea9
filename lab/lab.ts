/**
 * The article's layout on several machines, built on this one with Linux network namespaces: one
 * namespace per host on one bridge (lab/netns.ts has the names and the address plan),
 *
 *   redis   redis-server on :6379
 *   app1…   `roomcast cluster --workers W --redis redis://<redis>:6379 --trust-proxy yes`, worker
 *           i on <host>:6001+i
 *   edge    nginx from `roomcast nginx --upstream <app1>:6001-… --upstream <app2>:6001-…`, on :80
 *   c1…     client hosts, each in its own /24, whose members are real socket.io-client
 *           connections started by a client runner in the host (lab/clients.ts)
 *
 * and the faults of a real network as methods: a machine lost, a cable pulled, partitions, a slow
 * link, Redis or roomcast restarted.
 *
 * Teardown is guaranteed: `stop()`; else, when the owning process exits, crashes or gets SIGINT,
 * SIGTERM or SIGHUP; else (SIGKILL) by the next lab started on this machine (lab/owners.ts).
 * Nothing is left: no process, namespace, veth, bridge, nftables table (they live in the
 * namespaces) or file.
 */
import { spawn, type ChildProcess } from "node:child_process";
import { mkdirSync, rmSync, writeFileSync } from "node:fs";
import { createConnection } from "node:net";
import { join } from "node:path";
import { createInterface } from "node:readline";
import { fileURLToPath } from "node:url";
import { eventually, startChild, withTimeout, type Child } from "../test/helpers/processes.js";
import { CLI, metric, runCli } from "../test/helpers/roomcast.js";
import { ClientHost } from "./clients.js";
import {
  AddressPlan,
  createBridge,
  createHost,
  destroyLab,
  killAllIn,
  LabNames,
  listLinks,
  listNetns,
  MAX_CLIENT_HOSTS,
  parseLinkName,
  parseNetnsName,
  pidsIn,
  setLink,
  sh,
} from "./netns.js";
import { claimLab, forget, runtimeDir, tearDownOnExit, type Claim } from "./owners.js";

export const PORT_BASE = 6001;
export const REDIS_PORT = 6379;
export const EDGE_PORT = 80;
/** The uid the slow-link proxies run as: their own connections are not redirected to themselves. */
const PROXY_UID = 65534;
const TCP_PROXY = fileURLToPath(new URL("./tcp-proxy.js", import.meta.url));

export interface LabOptions {
  /** App hosts app1…appN, each running `roomcast cluster`. @default 2 */
  appHosts?: number;
  /** Workers per app host (ports 6001…). @default 2 */
  workers?: number;
  /** Client hosts c1…cN (N ≤ 15), each in its own /24. @default 4 */
  clientHosts?: number;
  /** More flags for every `roomcast cluster`, e.g. ["--node-ttl", "5"]. */
  roomcastFlags?: string[];
  /** More flags for `roomcast nginx`, e.g. ["--balance", "ip_hash"]. */
  nginxFlags?: string[];
}

export type HostKind = "edge" | "redis" | "app" | "client";

export interface LabHost {
  readonly name: string;
  readonly kind: HostKind;
  readonly address: string;
  readonly netns: string;
}

export type PartitionMode = "drop" | "reject";

export interface SlowLink {
  /** Changes the delay (ms, each direction) and the rate (bytes a second, 0: no limit); resolves once the proxy has. */
  set(link: { delayMs?: number; bytesPerSecond?: number }): Promise<void>;
  /** Connections opened from now on go straight again (open ones stay on the proxy until they close). */
  remove(): Promise<void>;
}

export class Lab {
  readonly names: LabNames;
  readonly plan: AddressPlan;
  readonly hosts = new Map<string, LabHost>();
  /** The running service of each server host: the cluster's primary, redis-server, nginx. */
  private readonly services = new Map<string, Child>();
  private readonly runners = new Set<ClientHost>();
  /** A client runner per host that fetchFrom asks. */
  private readonly probes = new Map<string, ClientHost>();
  private readonly proxies = new Set<ChildProcess>();
  /** Cut pairs "a|b" (a < b) and how. */
  private readonly partitions = new Map<string, PartitionMode>();
  /** Slow links per near host: proxy port → far address and port. */
  private readonly slowLinks = new Map<string, Map<number, { address: string; port: number }>>();
  private nextProxyPort = 17001;
  private readonly dir: string;
  private stopped = false;

  private constructor(
    private readonly claim: Claim,
    readonly options: Required<LabOptions>,
  ) {
    this.names = new LabNames(claim.id, process.pid);
    this.plan = new AddressPlan(claim.slot);
    this.dir = runtimeDir(claim.id);
  }

  /** Brings the whole layout up; resolves once the edge answers /healthz through to a worker. */
  static async start(options: LabOptions = {}): Promise<Lab> {
    const full: Required<LabOptions> = {
      appHosts: options.appHosts ?? 2,
      workers: options.workers ?? 2,
      clientHosts: options.clientHosts ?? 4,
      roomcastFlags: options.roomcastFlags ?? [],
      nginxFlags: options.nginxFlags ?? [],
    };
    if (full.clientHosts > MAX_CLIENT_HOSTS) throw new Error(`at most ${MAX_CLIENT_HOSTS} client hosts`);
    const lab = new Lab(claimLab(), full);
    tearDownOnExit(lab.id, () => lab.destroy());
    try {
      lab.build();
      const [, nginxConfig] = await Promise.all([
        lab.startRedis().then(() => Promise.all(lab.appHosts.map((host) => lab.startRoomcast(host)))),
        lab.writeNginxConfig(),
      ]);
      await lab.startEdge(nginxConfig);
    } catch (err) {
      await lab.stop();
      throw err;
    }
    return lab;
  }

  get id(): string {
    return this.names.id;
  }
  get slot(): number {
    return this.plan.slot;
  }
  /** The URL to open: nginx on the edge host. */
  get edgeUrl(): string {
    return `http://${this.plan.edge}`;
  }
  get redisUrl(): string {
    return `redis://${this.plan.redis}:${REDIS_PORT}`;
  }
  get appHosts(): string[] {
    return [...this.hosts.values()].filter((h) => h.kind === "app").map((h) => h.name);
  }
  get clientHosts(): string[] {
    return [...this.hosts.values()].filter((h) => h.kind === "client").map((h) => h.name);
  }
  host(name: string): LabHost {
    const host = this.hosts.get(name);
    if (!host) throw new Error(`no host ${name} in this lab (hosts: ${[...this.hosts.keys()].join(", ")})`);
    return host;
  }
  /** Worker `index` (0-based) of an app host, reached straight from the test runner. */
  workerUrl(host: string, index: number): string {
    return `http://${this.host(host).address}:${PORT_BASE + index}`;
  }
  /** The process that runs a server host's service (for its output; see test/helpers/processes). */
  service(host: string): Child {
    const service = this.services.get(host);
    if (!service) throw new Error(`${host} runs no service now`);
    return service;
  }

  // ---- bringing it up ---------------------------------------------------------------------------

  private addHost(name: string, kind: HostKind, address: string): void {
    createHost(this.names, this.plan, name, address);
    this.hosts.set(name, { name, kind, address, netns: this.names.netns(name) });
  }

  private build(): void {
    mkdirSync(this.dir, { recursive: true });
    createBridge(this.names, this.plan);
    this.addHost("edge", "edge", this.plan.edge);
    this.addHost("redis", "redis", this.plan.redis);
    for (let i = 1; i <= this.options.appHosts; i++) this.addHost(`app${i}`, "app", this.plan.app(i));
    for (let i = 1; i <= this.options.clientHosts; i++) this.addHost(`c${i}`, "client", this.plan.client(i));
  }

  /** Runs `command` inside a host's namespace, as a child of this process. */
  private exec(host: string, command: string, args: string[]): Child {
    return startChild("ip", ["netns", "exec", this.host(host).netns, command, ...args]);
  }

  private async startRedis(): Promise<void> {
    const dir = join(this.dir, "redis");
    mkdirSync(dir, { recursive: true });
    const child = this.exec("redis", "redis-server", [
      "--bind", this.plan.redis, "--port", String(REDIS_PORT), "--protected-mode", "no", "--save", "", "--appendonly", "no",
      "--dir", dir, "--daemonize", "no", "--loglevel", "warning", "--logfile", "",
    ]);
    this.services.set("redis", child);
    await eventually(async () => ((await this.redisCommand("PING")).startsWith("+PONG") ? true : undefined), 10_000, `redis-server:\n${child.output()}`);
  }

  /** One inline command to Redis from the runner; "" when nobody answers within 2 s. */
  redisCommand(command: string): Promise<string> {
    return new Promise((resolve) => {
      const socket = createConnection({ host: this.plan.redis, port: REDIS_PORT }, () => socket.write(`${command}\r\n`));
      socket.setTimeout(2000, () => socket.destroy());
      socket.once("data", (d) => {
        socket.destroy();
        resolve(d.toString());
      });
      socket.once("error", () => resolve(""));
      socket.once("close", () => resolve(""));
    });
  }

  private async startRoomcast(host: string): Promise<void> {
    const { address } = this.host(host);
    const child = this.exec(host, process.execPath, [
      CLI, "cluster", "--redis", this.redisUrl, "--workers", String(this.options.workers), "--port-base", String(PORT_BASE),
      "--host", address, "--trust-proxy", "yes", ...this.options.roomcastFlags,
    ]);
    this.services.set(host, child);
    // (generous: on a loaded machine, four node processes starting at once take a while)
    await child.waitForLine((l) => l.includes('"msg":"cluster ready"'), 60_000, `roomcast cluster on ${host}`);
  }

  /** Writes nginx's configuration, from `roomcast nginx`, and returns its path. */
  private async writeNginxConfig(): Promise<string> {
    const dir = join(this.dir, "nginx");
    mkdirSync(dir, { recursive: true });
    const lastPort = PORT_BASE + this.options.workers - 1;
    const upstreams = this.appHosts.flatMap((h) => ["--upstream", `${this.host(h).address}:${PORT_BASE}-${lastPort}`]);
    const generated = await runCli(["nginx", "--listen", `${this.plan.edge}:${EDGE_PORT}`, "--runtime-dir", dir, ...upstreams, ...this.options.nginxFlags]);
    if (generated.code !== 0) throw new Error(`roomcast nginx failed: ${generated.output}`);
    const file = join(dir, "nginx.conf");
    writeFileSync(file, generated.output);
    return file;
  }

  private async startEdge(config = join(this.dir, "nginx", "nginx.conf")): Promise<void> {
    const child = this.exec("edge", "nginx", ["-c", config, "-p", join(this.dir, "nginx"), "-g", "daemon off;"]);
    this.services.set("edge", child);
    await eventually(async () => ((await this.get(`${this.edgeUrl}/healthz`)).status === 200 ? true : undefined), 15_000, `nginx on the edge:\n${child.output()}`);
  }

  // ---- looking at it ----------------------------------------------------------------------------

  /** GET from the test runner (the root namespace); status 0 with the error when it fails. */
  async get(url: string, timeoutMs = 5000): Promise<{ status: number; body: string }> {
    try {
      const res = await fetch(url, { signal: AbortSignal.timeout(timeoutMs) });
      return { status: res.status, body: await res.text() };
    } catch (err) {
      return { status: 0, body: err instanceof Error ? `${err.message} ${String(err.cause ?? "")}` : String(err) };
    }
  }

  /**
   * GET from inside a host (its address, its partitions): what that machine sees. Status 0 with
   * why in `body` when the request fails or takes longer than `timeoutMs`. Asked through a client
   * runner kept in the host for this (started on first use, as the host's probe).
   */
  fetchFrom(host: string, url: string, timeoutMs = 5000): Promise<{ status: number; body: string }> {
    return this.probe(host).fetch(url, timeoutMs);
  }

  /** The host's probe (a client runner kept in it for fetchFrom and reaches). */
  private probe(host: string): ClientHost {
    let probe = this.probes.get(host);
    if (!probe) {
      const started = this.clients(host);
      this.probes.set(host, started);
      void started.exited.then(() => this.probes.get(host) === started && this.probes.delete(host));
      probe = started;
    }
    return probe;
  }

  /** Whether `from` can open a TCP connection to `to`:`port` now (false after `timeoutMs`). */
  async reaches(from: string, to: string, port: number, timeoutMs = 2000): Promise<boolean> {
    return (await this.probe(from).connect(this.host(to).address, port, timeoutMs)).reached;
  }

  /** The addresses of the peers of a host's established TCP connections (from `ss`), repeats kept. */
  tcpPeers(host: string): string[] {
    const out = sh("ip", ["netns", "exec", this.host(host).netns, "ss", "-Htn", "state", "established"]);
    // columns: Recv-Q Send-Q Local:Port Peer:Port
    return out
      .split("\n")
      .map((line) => line.trim().split(/\s+/)[3])
      .filter((peer): peer is string => peer !== undefined)
      .map((peer) => peer.slice(0, peer.lastIndexOf(":")));
  }

  /** Open Socket.IO connections on an app host: the sum of its workers' `roomcast_connections`. */
  async connectionsOn(host: string): Promise<number> {
    let sum = 0;
    for (let i = 0; i < this.options.workers; i++) sum += await metric(this.workerUrl(host, i), "roomcast_connections");
    return sum;
  }

  /** A client runner in a client host (or any host): its members connect from that host's address. */
  clients(host: string): ClientHost {
    const { address, netns } = this.host(host);
    const runner = new ClientHost(host, address, netns);
    this.runners.add(runner);
    void runner.exited.then(() => this.runners.delete(runner));
    return runner;
  }

  /** Every process in the lab's namespaces now. */
  pids(): number[] {
    return [...this.hosts.values()].flatMap((h) => pidsIn(h.netns));
  }

  // ---- faults -----------------------------------------------------------------------------------

  /**
   * The machine is lost: every process of the host is SIGKILLed. With `silently`, its cable is
   * pulled first, so nobody hears its sockets close (no FIN, no RST: a power cut), and it stays
   * pulled until `linkUp` (or `startHost`). Returns the pids killed.
   */
  killHost(host: string, options: { silently?: boolean } = {}): number[] {
    if (options.silently) this.linkDown(host);
    const killed = killAllIn(this.host(host).netns);
    this.services.delete(host);
    return killed;
  }

  /** Starts a server host's service again (after killHost): the machine rebooted. */
  async startHost(host: string): Promise<void> {
    const { kind } = this.host(host);
    setLink(this.names, host, "up");
    if (this.services.has(host)) throw new Error(`${host} runs already`);
    if (kind === "app") await this.startRoomcast(host);
    else if (kind === "redis") await this.startRedis();
    else if (kind === "edge") await this.startEdge();
    else throw new Error(`${host} is a client host: start a runner with clients()`);
  }

  /**
   * Restarts an app host's `roomcast cluster`: SIGTERM (graceful: members are told to reconnect
   * elsewhere) or SIGKILL (every process of the host at once).
   */
  async restartRoomcast(host: string, signal: "SIGTERM" | "SIGKILL" = "SIGTERM"): Promise<void> {
    if (this.host(host).kind !== "app") throw new Error(`${host} is not an app host`);
    if (signal === "SIGKILL") this.killHost(host);
    else {
      await this.services.get(host)?.stop("SIGTERM", 12_000);
      killAllIn(this.host(host).netns); // a worker the primary did not stop in time
      this.services.delete(host);
    }
    await this.startRoomcast(host);
  }

  /** Restarts redis-server: empty (SIGKILL, nothing saved) or, with keepData, after SHUTDOWN SAVE. */
  async restartRedis(options: { keepData?: boolean } = {}): Promise<void> {
    const child = this.services.get("redis");
    if (options.keepData && child) {
      await this.redisCommand("SHUTDOWN SAVE");
      await withTimeout(child.exited, 10_000, "redis-server to save and stop");
    } else {
      rmSync(join(this.dir, "redis", "dump.rdb"), { force: true });
      killAllIn(this.host("redis").netns);
    }
    this.services.delete("redis");
    await this.startRedis();
  }

  /** Pulls the host's cable (its veth, at the bridge): it hears and reaches no one; its sockets stay open. */
  linkDown(host: string): void {
    setLink(this.names, host, "down");
  }
  linkUp(host: string): void {
    setLink(this.names, host, "up");
  }
  /** The cable pulled for `seconds`, then plugged back; resolves once it is back. */
  async cutLink(host: string, seconds: number): Promise<void> {
    this.linkDown(host);
    try {
      await new Promise((r) => setTimeout(r, seconds * 1000));
    } finally {
      if (!this.stopped) this.linkUp(host);
    }
  }

  /**
   * Cuts `a` from `b` both ways, with nftables rules in both namespaces; everything else stays.
   * "drop" (default): packets vanish, as in a real partition — nobody learns of it but by
   * timeouts. "reject": a TCP reset or an ICMP error answers at once, as a firewall that refuses.
   */
  partition(a: string, b: string, mode: PartitionMode = "drop"): void {
    if (a === b) throw new Error("a host cannot be cut from itself");
    this.host(a);
    this.host(b);
    this.partitions.set(pairKey(a, b), mode);
    this.applyFirewall(a);
    this.applyFirewall(b);
  }

  heal(a: string, b: string): void {
    this.partitions.delete(pairKey(a, b));
    this.applyFirewall(a);
    this.applyFirewall(b);
  }

  healAll(): void {
    const touched = new Set([...this.partitions.keys()].flatMap((k) => k.split("|")));
    this.partitions.clear();
    for (const host of touched) this.applyFirewall(host);
  }

  /** Rewrites a host's table `inet rclab` from the partitions it is part of, in one nft transaction. */
  private applyFirewall(host: string): void {
    const input: string[] = [];
    const output: string[] = [];
    for (const [key, mode] of this.partitions) {
      const [a, b] = key.split("|") as [string, string];
      if (a !== host && b !== host) continue;
      const peer = this.host(a === host ? b : a).address;
      if (mode === "drop") {
        input.push(`ip saddr ${peer} drop`);
        output.push(`ip daddr ${peer} drop`);
      } else {
        // Refused where it is sent: the sender's own kernel answers with a reset, which comes in
        // from the peer's address and must pass the input chain.
        input.push(`ip saddr ${peer} tcp flags rst accept`, `ip saddr ${peer} drop`);
        output.push(`ip daddr ${peer} meta l4proto tcp reject with tcp reset`, `ip daddr ${peer} drop`);
      }
    }
    let script = "table inet rclab\ndelete table inet rclab\n";
    if (input.length > 0) {
      script +=
        "table inet rclab {\n" +
        `  chain input { type filter hook input priority 0; policy accept;\n${input.map((r) => `    ${r}\n`).join("")}  }\n` +
        `  chain output { type filter hook output priority 0; policy accept;\n${output.map((r) => `    ${r}\n`).join("")}  }\n` +
        "}\n";
    }
    sh("ip", ["netns", "exec", this.host(host).netns, "nft", "-f", "-"], script);
  }

  /**
   * Makes the link from `from` to `to`:`port` slow: connections `from` opens to it from now on go
   * through a TCP proxy in `from` (lab/tcp-proxy.ts) that passes bytes on `delayMs` late (each
   * way) and at most `bytesPerSecond`. Connections already open are not affected: restart or cut
   * what should reconnect through it. Partitions still apply (the proxy runs inside `from`).
   */
  async slowLink(from: string, to: string, port: number, link: { delayMs?: number; bytesPerSecond?: number } = {}): Promise<SlowLink> {
    const near = this.host(from);
    const far = this.host(to);
    const proxyPort = this.nextProxyPort++;
    const proxy = spawn(
      "ip",
      [
        "netns", "exec", near.netns, "setpriv", `--reuid=${PROXY_UID}`, `--regid=${PROXY_UID}`, "--clear-groups",
        process.execPath, TCP_PROXY, String(proxyPort), far.address, String(port), String(link.delayMs ?? 0), String(link.bytesPerSecond ?? 0),
      ],
      { stdio: ["pipe", "pipe", "pipe"] },
    );
    this.proxies.add(proxy);
    proxy.once("exit", () => this.proxies.delete(proxy));
    let stderr = "";
    proxy.stderr?.on("data", (d: Buffer) => (stderr += d.toString()));
    const lines = createInterface({ input: proxy.stdout! });
    /** Resolves with the proxy's next line that contains `word`. */
    const nextLine = (word: string) =>
      new Promise<void>((resolve, reject) => {
        const onLine = (line: string) => {
          if (!line.includes(word)) return;
          lines.off("line", onLine);
          resolve();
        };
        lines.on("line", onLine);
        proxy.once("exit", (code) => reject(new Error(`tcp proxy in ${from} exited (${code}): ${stderr}`)));
      });
    await withTimeout(
      nextLine('"listening"'),
      10_000,
      () => `tcp proxy in ${from} to start: ${stderr}`,
    );
    const links = this.slowLinks.get(from) ?? new Map<number, { address: string; port: number }>();
    this.slowLinks.set(from, links);
    links.set(proxyPort, { address: far.address, port });
    this.applyRedirects(from);
    return {
      set: async (change) => {
        const changed = nextLine('"link"');
        proxy.stdin?.write(`${JSON.stringify(change)}\n`);
        await withTimeout(changed, 5000, `tcp proxy in ${from} to change`);
      },
      remove: async () => {
        links.delete(proxyPort);
        if (!this.stopped) this.applyRedirects(from);
      },
    };
  }

  /** Rewrites a host's table `ip rclab_slow`: its slow links' connections redirected to their proxies. */
  private applyRedirects(host: string): void {
    const rules = [...(this.slowLinks.get(host) ?? [])].map(
      ([proxyPort, far]) => `    meta skuid != ${PROXY_UID} ip daddr ${far.address} tcp dport ${far.port} redirect to :${proxyPort}\n`,
    );
    let script = "table ip rclab_slow\ndelete table ip rclab_slow\n";
    if (rules.length > 0) script += `table ip rclab_slow {\n  chain output { type nat hook output priority -100; policy accept;\n${rules.join("")}  }\n}\n`;
    sh("ip", ["netns", "exec", this.host(host).netns, "nft", "-f", "-"], script);
  }

  // ---- tearing it down --------------------------------------------------------------------------

  /** Everything of this lab still on the machine: for tests that teardown left nothing. */
  leftovers(): { netns: string[]; links: string[] } {
    return {
      netns: listNetns().filter((n) => parseNetnsName(n)?.id === this.id),
      links: listLinks().filter((l) => parseLinkName(l) === this.id),
    };
  }

  /** Synchronous, idempotent: also what runs when the process exits. */
  private destroy(): void {
    this.stopped = true;
    for (const proxy of this.proxies) proxy.stdin?.end();
    destroyLab(this.id);
    rmSync(this.dir, { recursive: true, force: true });
    this.claim.release();
  }

  /** Stops everything of the lab and removes it from the machine. */
  async stop(): Promise<void> {
    if (this.stopped) return;
    this.destroy();
    forget(this.id);
    // the children were SIGKILLed with their namespaces: wait for them to be reaped
    await Promise.all([...this.services.values()].map((s) => s.exited));
    await Promise.all([...this.runners].map((r) => r.exited));
    this.services.clear();
  }
}

function pairKey(a: string, b: string): string {
  return a < b ? `${a}|${b}` : `${b}|${a}`;
}
