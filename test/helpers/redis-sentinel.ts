/**
 * A Redis Sentinel deployment for one test file: 1 master, 2 replicas and 3 sentinels (quorum 2)
 * on free ports of 127.0.0.1, each in its own temporary directory, nothing saved to disk.
 *
 * Timing is tuned for tests: a master is subjectively down after `down-after-milliseconds` 1000 of
 * silence; then the sentinels agree (objectively down), elect a leader and promote a replica.
 * Measured here (7.0.15, 2 shared cores): the first sentinel logs +switch-master 2.2 to 2.9 s after
 * the SIGKILL, every sentinel 2.3 to 3.4 s after it; `waitForFailover` reports each run's figure.
 */
import { existsSync, writeFileSync } from "node:fs";
import { join } from "node:path";
import { Cleanup, eventually, freePort, withTimeout } from "./processes.js";
import { pairs, parseInfo, redisCall, redisNode, type Address, type RedisNode } from "./redis-admin.js";

export interface SentinelFailover {
  /** The replica the sentinels promoted. */
  master: Address;
  /** The master that was killed. */
  previous: Address;
  /** From `killMaster()` until every live sentinel names the new master. */
  ms: number;
}

export interface TestSentinel {
  /** The sentinels, "127.0.0.1:port" each: what a client is given. */
  readonly sentinels: Address[];
  /** The name the sentinels monitor the master under. */
  readonly name: string;
  /** The master, the replicas and the sentinels. */
  readonly servers: Address[];
  /** The current master, as the first sentinel that answers names it. */
  masterAddress(): Promise<Address>;
  /** SIGKILLs the current master (no shutdown, no goodbye) and remembers when. */
  killMaster(): Promise<Address>;
  /**
   * Resolves once every live sentinel names a new master, that master says role:master, and
   * the other live replica replicates from it; with how long it took since `killMaster()`.
   */
  waitForFailover(timeoutMs?: number): Promise<SentinelFailover>;
  /**
   * Starts a killed node (server or sentinel) again on its port. A restarted server comes up as
   * an empty master (or as a replica of the master it was started under); the sentinels turn it
   * into a replica of the current master (+convert-to-slave), and this resolves once it replicates
   * from it. For a killed master that takes about 10 s: a sentinel leaves a master that reappears
   * alone for 8 s (4 hello periods) before it reconfigures it.
   */
  restart(node: Address): Promise<void>;
  /** Stops every process and removes every directory. */
  stop(): Promise<void>;
}

const DOWN_AFTER_MS = 1000;
const FAILOVER_TIMEOUT_MS = 3000;

export async function startSentinel(name = "roomcast"): Promise<TestSentinel> {
  const cleanup = new Cleanup();
  try {
    const masterPort = await freePort();
    const serverArgs = (port: number, replicaOf?: number) => (dir: string) => [
      "--port", String(port), "--bind", "127.0.0.1", "--dir", dir,
      "--save", "", "--appendonly", "no", "--daemonize", "no", "--protected-mode", "no",
      "--loglevel", "notice", "--logfile", "",
      // A replica's first sync sends the data set over the socket at once, no RDB file, no delay.
      "--repl-diskless-sync", "yes", "--repl-diskless-sync-delay", "0",
      ...(replicaOf === undefined ? [] : ["--replicaof", "127.0.0.1", String(replicaOf)]),
    ];
    const master = redisNode(masterPort, "redis-server", serverArgs(masterPort));
    cleanup.add(() => master.remove());
    const replicas: RedisNode[] = [];
    for (let i = 0; i < 2; i++) {
      const port = await freePort();
      const replica = redisNode(port, "redis-server", serverArgs(port, masterPort));
      cleanup.add(() => replica.remove());
      replicas.push(replica);
    }
    const sentinels: RedisNode[] = [];
    for (let i = 0; i < 3; i++) {
      const port = await freePort();
      // The config lives in the node's directory: a sentinel rewrites it with what it learns
      // (replicas, other sentinels, the current master), so a restart remembers them.
      const sentinel = redisNode(port, "redis-sentinel", (dir) => {
        const file = join(dir, "sentinel.conf");
        if (!existsSync(file)) {
          writeFileSync(file, [
            `port ${port}`,
            "bind 127.0.0.1",
            "protected-mode no",
            `dir ${dir}`,
            'logfile ""',
            "loglevel notice",
            `sentinel monitor ${name} 127.0.0.1 ${masterPort} 2`,
            `sentinel down-after-milliseconds ${name} ${DOWN_AFTER_MS}`,
            `sentinel failover-timeout ${name} ${FAILOVER_TIMEOUT_MS}`,
            `sentinel parallel-syncs ${name} 2`,
            "",
          ].join("\n"));
        }
        return [file];
      });
      cleanup.add(() => sentinel.remove());
      sentinels.push(sentinel);
    }
    await master.start();
    await Promise.all(replicas.map((r) => r.start()));
    await Promise.all(sentinels.map((s) => s.start()));
    const servers = [master, ...replicas];
    const all = [...servers, ...sentinels];
    const byAddress = (address: Address) => {
      const node = all.find((n) => n.address === address);
      if (!node) throw new Error(`no node ${address} in this deployment`);
      return node;
    };

    /** What one sentinel believes: the master's address and its healthy replicas and sentinels. */
    const view = async (sentinel: RedisNode) => {
      const addr = (await redisCall(sentinel.address, "SENTINEL", "get-master-addr-by-name", name)) as [string, string] | null;
      if (!addr) return undefined;
      const healthy = (reply: unknown) =>
        (reply as unknown[]).map(pairs).filter((r) => !/s_down|o_down|disconnected/.test(r.flags ?? ""));
      const replicasSeen = healthy(await redisCall(sentinel.address, "SENTINEL", "replicas", name));
      const sentinelsSeen = healthy(await redisCall(sentinel.address, "SENTINEL", "sentinels", name));
      return {
        master: `${addr[0]}:${addr[1]}`,
        replicas: replicasSeen.map((r) => `${r.ip}:${r.port}`).sort(),
        sentinels: sentinelsSeen.length,
      };
    };
    const liveSentinels = () => sentinels.filter((s) => s.running());
    const liveServers = () => servers.filter((s) => s.running());

    /** The server's replication: its role and, for a replica, whom it follows and whether the link is up. */
    const replication = async (server: Address) => parseInfo(await redisCall(server, "INFO", "replication"));
    const replicatesFrom = async (server: Address, from: Address) => {
      const info = await replication(server);
      return info.role === "slave" && `${info.master_host}:${info.master_port}` === from && info.master_link_status === "up";
    };

    /**
     * Every live sentinel names `master`, knows the other live servers as healthy replicas and
     * the other live sentinels; every live replica replicates from `master`.
     */
    const settled = async (master: Address) => {
      const expectedReplicas = liveServers().map((s) => s.address).filter((a) => a !== master).sort();
      for (const sentinel of liveSentinels()) {
        const seen = await view(sentinel);
        if (!seen || seen.master !== master) return false;
        if (expectedReplicas.some((r) => !seen.replicas.includes(r))) return false;
        if (seen.sentinels < liveSentinels().length - 1) return false;
      }
      if ((await replication(master)).role !== "master") return false;
      for (const replica of expectedReplicas) if (!(await replicatesFrom(replica, master))) return false;
      return true;
    };

    // Sentinels find the replicas through the master's INFO and each other through hello messages
    // on the master every 2 s: without the others, none could gather a quorum to fail over.
    await eventually(async () => ((await settled(master.address)) ? true : undefined), 20_000, "the sentinels to agree on the master, both replicas and each other");

    let killed: { address: Address; at: number; logOffsets: number[] } | undefined;
    const deployment: TestSentinel = {
      sentinels: sentinels.map((s) => s.address),
      name,
      servers: servers.map((s) => s.address),
      async masterAddress() {
        for (const sentinel of liveSentinels()) {
          const addr = (await redisCall(sentinel.address, "SENTINEL", "get-master-addr-by-name", name).catch(() => null)) as [string, string] | null;
          if (addr) return `${addr[0]}:${addr[1]}`;
        }
        throw new Error("no sentinel answers");
      },
      async killMaster() {
        const address = await deployment.masterAddress();
        const logOffsets = sentinels.map((s) => s.child()?.outputLength() ?? 0);
        await byAddress(address).kill();
        killed = { address, at: Date.now(), logOffsets };
        return address;
      },
      async waitForFailover(timeoutMs = 30_000) {
        if (!killed) throw new Error("waitForFailover() without killMaster()");
        const { address: previous, at, logOffsets } = killed;
        // Each sentinel logs "+switch-master <name> <old ip> <old port> <new ip> <new port>" once
        // it has switched: the moment to measure, without polling.
        const switched = await withTimeout(
          Promise.all(
            sentinels.map((s, i) => {
              const child = s.child();
              if (!s.running() || !child) return Promise.resolve(undefined);
              return child.waitForLine((l) => l.includes(`+switch-master ${name} `), timeoutMs, "+switch-master", logOffsets[i]);
            }),
          ),
          timeoutMs,
          () => `no failover of ${previous} within ${timeoutMs} ms; sentinel logs:\n${sentinels.map((s) => s.output()).join("\n---\n")}`,
        );
        const ms = Date.now() - at;
        const masters = new Set(switched.filter((l) => l !== undefined).map((l) => l.trim().split(/\s+/).slice(-2).join(":")));
        if (masters.size !== 1) throw new Error(`the sentinels switched to different masters: ${[...masters].join(", ")}`);
        const [master] = [...masters] as [Address];
        // The promoted replica answers role:master only after the sentinels' SLAVEOF NO ONE went
        // through, and the other replica follows it once reconfigured (+slave-reconf-done).
        await eventually(async () => {
          if ((await replication(master)).role !== "master") return undefined;
          for (const replica of liveServers()) {
            if (replica.address !== master && !(await replicatesFrom(replica.address, master))) return undefined;
          }
          return true;
        }, timeoutMs, `${master} to be master with the other live replicas following it`);
        killed = undefined;
        return { master, previous, ms };
      },
      async restart(address) {
        const node = byAddress(address);
        await node.start();
        if (sentinels.includes(node)) {
          await eventually(async () => ((await settled(await deployment.masterAddress())) ? true : undefined), 20_000, `sentinel ${address} to rejoin`);
          return;
        }
        const master = await deployment.masterAddress();
        if (master === address) return;
        await eventually(async () => ((await replicatesFrom(address, master)) ? true : undefined), 30_000, `${address} to replicate from ${master}`);
      },
      stop: () => cleanup.run(),
    };
    return deployment;
  } catch (err) {
    await cleanup.run();
    throw err;
  }
}
