/**
 * A Redis Cluster for one test file: 3 masters with one replica each, on free ports of 127.0.0.1,
 * each node in its own temporary directory (its nodes.conf lives there), nothing saved to disk.
 *
 * The cluster bus of a node listens on its own port too. Redis's default is port + 10000, which
 * for a free port above 55535 does not exist and otherwise may be taken; so each node is given a
 * second free port as its bus (`cluster-port`, Redis 7.0+, which `redis-cli --cluster create`
 * honours).
 *
 * `cluster-node-timeout` is 1000 ms (default 15000) so that a killed master is replaced in a few
 * seconds: a node is failing after 1 s of silence; its replica waits 0.5 to 1 s more before it
 * asks the other masters for their votes.
 */
import { Cleanup, eventually, freePort, startChild } from "./processes.js";
import { parseInfo, redisCall, redisNode, splitAddress, type Address, type RedisNode } from "./redis-admin.js";

export interface ClusterFailover {
  killed: Address;
  /** The replica that took over the killed master's slots. */
  promoted: Address;
  /** From the SIGKILL until every live node reports cluster_state:ok with the new master. */
  ms: number;
}

export interface TestCluster {
  /** Every node, "127.0.0.1:port": a client may be given any of them. */
  readonly nodes: Address[];
  /** The masters that own slots now, ordered by their lowest slot. */
  masters(): Promise<Address[]>;
  /** The replicas of a master now. */
  replicasOf(master: Address): Promise<Address[]>;
  /** The hash slot of a key (asked of the cluster: hash tags as Redis reads them). */
  slotOf(key: string): Promise<number>;
  /** The master that owns a slot (a number) or a key's slot (a string) now. */
  masterOf(slotOrKey: number | string): Promise<Address>;
  /**
   * SIGKILLs `masters()[i]` (or the master at that address) and resolves once one of its
   * replicas owns its slots and every live node says cluster_state:ok and agrees on the slots.
   */
  killMaster(master: number | Address): Promise<ClusterFailover>;
  /**
   * Moves these slots with their keys from master `from` to master `to`, one slot after another,
   * the way `redis-cli --cluster reshard` does (CLUSTER SETSLOT IMPORTING/MIGRATING, MIGRATE the
   * keys in batches, SETSLOT NODE on every master). Clients may keep writing meanwhile: a key
   * not (or no more) on `from` is redirected to `to` with ASK. Resolves once every node agrees.
   */
  reshard(slots: readonly number[], from: Address, to: Address): Promise<{ keys: number; ms: number }>;
  /** Starts a killed node again; a killed master comes back as a replica of its successor. */
  restart(node: Address): Promise<void>;
  /** Stops every node and removes every directory. */
  stop(): Promise<void>;
}

/** One line of CLUSTER NODES. */
interface NodeLine {
  id: string;
  address: Address;
  flags: string[];
  /** The id of its master, for a replica. */
  masterId: string | undefined;
  /** Owned slots as [first, last] ranges ("[slot->-id]" migration marks left out). */
  slots: [number, number][];
}

function parseNodes(text: unknown): NodeLine[] {
  return String(text)
    .split("\n")
    .filter((l) => l.trim() !== "")
    .map((line) => {
      const [id = "", addr = "", flags = "", master = "-", , , , , ...slots] = line.trim().split(" ");
      return {
        id,
        // "127.0.0.1:30001@40001[,hostname]": the client address is before the "@".
        address: addr.split("@")[0] ?? "",
        flags: flags.split(","),
        masterId: master === "-" ? undefined : master,
        slots: slots
          .filter((s) => !s.startsWith("["))
          .map((s) => {
            const [first, last = first] = s.split("-").map(Number) as [number, number?];
            return [first, last] as [number, number];
          }),
      };
    });
}

const owns = (line: NodeLine, slot: number) => line.slots.some(([first, last]) => slot >= first && slot <= last);

const NODE_TIMEOUT_MS = 1000;
/** Keys moved by one MIGRATE (redis-cli's --cluster-pipeline default is 10). */
const MIGRATE_BATCH = 100;

export async function startCluster(): Promise<TestCluster> {
  const cleanup = new Cleanup();
  try {
    const all: RedisNode[] = [];
    for (let i = 0; i < 6; i++) {
      const port = await freePort();
      let bus = await freePort();
      while (bus === port) bus = await freePort();
      const node = redisNode(port, "redis-server", (dir) => [
        "--port", String(port), "--bind", "127.0.0.1", "--dir", dir,
        "--cluster-enabled", "yes", "--cluster-port", String(bus), "--cluster-config-file", "nodes.conf",
        "--cluster-node-timeout", String(NODE_TIMEOUT_MS),
        "--save", "", "--appendonly", "no", "--daemonize", "no", "--protected-mode", "no",
        "--loglevel", "notice", "--logfile", "",
        "--repl-diskless-sync", "yes", "--repl-diskless-sync-delay", "0",
      ]);
      cleanup.add(() => node.remove());
      all.push(node);
    }
    await Promise.all(all.map((n) => n.start()));
    const addresses = all.map((n) => n.address);
    await runRedisCli(["--cluster", "create", ...addresses, "--cluster-replicas", "1", "--cluster-yes"]);

    const live = () => all.filter((n) => n.running());
    const byAddress = (address: Address) => {
      const node = all.find((n) => n.address === address);
      if (!node) throw new Error(`no node ${address} in this cluster`);
      return node;
    };
    const view = async (address: Address) => parseNodes(await redisCall(address, "CLUSTER", "NODES"));

    /**
     * The live nodes agree: each says cluster_state:ok, sees every live node as connected and not
     * failing, and they all report the same masters, slots and replicas. Returns that view.
     */
    const agreed = async (): Promise<NodeLine[] | undefined> => {
      const liveAddresses = live().map((n) => n.address);
      let signature: string | undefined;
      let agreedView: NodeLine[] | undefined;
      for (const address of liveAddresses) {
        if (parseInfo(await redisCall(address, "CLUSTER", "INFO")).cluster_state !== "ok") return undefined;
        const lines = await view(address);
        const current = lines.filter((l) => liveAddresses.includes(l.address));
        if (current.length !== liveAddresses.length) return undefined;
        if (current.some((l) => l.flags.some((f) => f === "fail" || f === "fail?" || f === "handshake" || f === "noaddr"))) return undefined;
        const own = current
          .map((l) => `${l.address} ${l.flags.includes("master") ? "master" : `replica-of ${l.masterId}`} ${l.slots.map((r) => r.join("-")).join(",")}`)
          .sort()
          .join("\n");
        if (signature === undefined) {
          signature = own;
          agreedView = current;
        } else if (own !== signature) return undefined;
      }
      const covered = (agreedView ?? []).reduce((n, l) => n + l.slots.reduce((m, [a, b]) => m + b - a + 1, 0), 0);
      return covered === 16384 ? agreedView : undefined;
    };
    const settle = (what: string, timeoutMs = 30_000) =>
      eventually(agreed, timeoutMs, what).catch((err: unknown) => {
        throw new Error(`${String(err)}\n${all.map((n) => `--- ${n.address}\n${n.output().split("\n").slice(-15).join("\n")}`).join("\n")}`);
      });
    /** Every live replica's link to its master is up (a replica that never synced cannot take over). */
    const replicasInSync = async () => {
      for (const node of live()) {
        const info = parseInfo(await redisCall(node.address, "INFO", "replication"));
        if (info.role === "slave" && info.master_link_status !== "up") return undefined;
      }
      return true;
    };
    await settle("the new cluster to agree on its slots (cluster_state:ok everywhere)");
    await eventually(replicasInSync, 20_000, "every replica to sync with its master");

    const anyLive = () => {
      const node = live()[0];
      if (!node) throw new Error("no live node");
      return node.address;
    };
    /** A node's own line of CLUSTER NODES: its id, role and slots as it sees them itself. */
    const myself = async (address: Address) => {
      const me = (await view(address)).find((l) => l.flags.includes("myself"));
      if (!me) throw new Error(`${address} does not name itself`);
      return me;
    };
    /** The live masters, as each one says of itself (no agreement needed mid-reshard). */
    const mastersNow = async () => {
      const out: Address[] = [];
      for (const node of live()) if ((await myself(node.address)).flags.includes("master")) out.push(node.address);
      return out;
    };
    const slotOf = async (key: string) => Number(await redisCall(anyLive(), "CLUSTER", "KEYSLOT", key));

    const cluster: TestCluster = {
      nodes: addresses,
      async masters() {
        const lines = (await settle("the cluster to agree before reading its masters")) ?? [];
        return lines
          .filter((l) => l.flags.includes("master") && l.slots.length > 0)
          .sort((a, b) => (a.slots[0]?.[0] ?? 0) - (b.slots[0]?.[0] ?? 0))
          .map((l) => l.address);
      },
      async replicasOf(master) {
        const lines = (await settle("the cluster to agree before reading its replicas")) ?? [];
        const id = lines.find((l) => l.address === master)?.id;
        return lines.filter((l) => id !== undefined && l.masterId === id).map((l) => l.address);
      },
      slotOf,
      async masterOf(slotOrKey) {
        const slot = typeof slotOrKey === "number" ? slotOrKey : await slotOf(slotOrKey);
        // The owner is the node that claims the slot itself; others may lag behind by a gossip round.
        for (const node of live()) {
          const me = await myself(node.address);
          if (me.flags.includes("master") && owns(me, slot)) return node.address;
        }
        throw new Error(`no live master owns slot ${slot}`);
      },
      async killMaster(which) {
        const killed = typeof which === "number" ? (await cluster.masters())[which] : which;
        if (killed === undefined) throw new Error(`no master #${String(which)}`);
        const replicas = await cluster.replicasOf(killed);
        if (replicas.length === 0) throw new Error(`${killed} has no replica to take over`);
        const { slots } = await myself(killed);
        const at = Date.now();
        await byAddress(killed).kill();
        const lines = (await settle(`a replica of ${killed} to take over its slots`)) ?? [];
        const ms = Date.now() - at;
        const firstSlot = slots[0]?.[0] ?? -1;
        const promoted = lines.find((l) => l.flags.includes("master") && owns(l, firstSlot))?.address;
        if (!promoted || !replicas.includes(promoted)) throw new Error(`slot ${firstSlot} of ${killed} went to ${promoted}, not to one of its replicas ${replicas.join(", ")}`);
        return { killed, promoted, ms };
      },
      async reshard(slots, from, to) {
        const at = Date.now();
        const [fromId, toId] = [(await myself(from)).id, (await myself(to)).id];
        const target = splitAddress(to);
        let moved = 0;
        for (const slot of slots) {
          // The order matters: the target accepts ASKed commands for the slot before the source
          // starts sending them there.
          await redisCall(to, "CLUSTER", "SETSLOT", slot, "IMPORTING", fromId);
          await redisCall(from, "CLUSTER", "SETSLOT", slot, "MIGRATING", toId);
          for (;;) {
            const keys = (await redisCall(from, "CLUSTER", "GETKEYSINSLOT", slot, MIGRATE_BATCH)) as string[];
            if (keys.length === 0) break;
            await redisCall(from, "MIGRATE", target.host, target.port, "", 0, 10_000, "KEYS", ...keys);
            moved += keys.length;
          }
          // Target first, so the slot always has an owner that takes it: then the source, which
          // from now on answers MOVED, then the other masters, so they need not wait for gossip.
          await redisCall(to, "CLUSTER", "SETSLOT", slot, "NODE", toId);
          await redisCall(from, "CLUSTER", "SETSLOT", slot, "NODE", toId);
          for (const master of await mastersNow()) {
            if (master !== to && master !== from) await redisCall(master, "CLUSTER", "SETSLOT", slot, "NODE", toId);
          }
        }
        await settle(`every node to agree that slots ${slots.join(",")} moved to ${to}`);
        return { keys: moved, ms: Date.now() - at };
      },
      async restart(address) {
        await byAddress(address).start();
        await settle(`${address} to rejoin the cluster`);
        await eventually(replicasInSync, 20_000, `${address} to sync with its master`);
      },
      stop: () => cleanup.run(),
    };
    return cluster;
  } catch (err) {
    await cleanup.run();
    throw err;
  }
}

async function runRedisCli(args: string[]): Promise<string> {
  const child = startChild("redis-cli", args);
  const code = await child.exited;
  if (code !== 0) throw new Error(`redis-cli ${args.join(" ")} exited with ${code}:\n${child.output()}`);
  return child.output();
}
