/**
 * What the Sentinel and Cluster test topologies share: one redis-server (or redis-sentinel)
 * process in its own temporary directory that can be killed and started again on the same port,
 * and one-shot admin commands to any node.
 */
import { mkdtempSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { Redis } from "ioredis";
import { startChild, type Child } from "./processes.js";

/** "host:port", as Redis itself names a node (CLUSTER NODES, SENTINEL replicas). */
export type Address = string;

export function splitAddress(address: Address): { host: string; port: number } {
  const colon = address.lastIndexOf(":");
  return { host: address.slice(0, colon), port: Number(address.slice(colon + 1)) };
}

/**
 * Sends one command on a fresh connection and closes it. Rejects at once when nobody listens
 * (no retry, no offline queue), so a poll over killed nodes never hangs.
 */
export async function redisCall(address: Address, command: string, ...args: (string | number)[]): Promise<unknown> {
  const client = new Redis({
    ...splitAddress(address),
    lazyConnect: true,
    retryStrategy: () => null,
    maxRetriesPerRequest: 0,
    enableOfflineQueue: false,
    enableReadyCheck: false,
    connectTimeout: 1000,
    commandTimeout: 3000,
  });
  client.on("error", () => {});
  try {
    await client.connect();
    return await client.call(command, ...args);
  } finally {
    client.disconnect();
  }
}

/** INFO (or CLUSTER INFO) text as fields: "role:master" → { role: "master" }. */
export function parseInfo(text: unknown): Record<string, string> {
  const fields: Record<string, string> = {};
  for (const line of String(text).split("\r\n")) {
    const colon = line.indexOf(":");
    if (colon > 0 && !line.startsWith("#")) fields[line.slice(0, colon)] = line.slice(colon + 1);
  }
  return fields;
}

/** A SENTINEL reply of flat field/value pairs (SENTINEL replicas, SENTINEL master) as an object. */
export function pairs(reply: unknown): Record<string, string> {
  const fields: Record<string, string> = {};
  if (!Array.isArray(reply)) return fields;
  for (let i = 0; i + 1 < reply.length; i += 2) fields[String(reply[i])] = String(reply[i + 1]);
  return fields;
}

/** Directories of nodes not removed yet: removed when the test process exits, whatever happened. */
const directories = new Set<string>();
process.on("exit", () => {
  for (const dir of directories) rmSync(dir, { recursive: true, force: true });
});

export interface RedisNode {
  readonly address: Address;
  readonly port: number;
  /** Its own directory: config files, nodes.conf, logs. Removed by `remove()`. */
  readonly dir: string;
  /** False once killed or stopped, until started again. */
  running(): boolean;
  /** Starts the process (again) on the same port and directory; resolves once it answers PING. */
  start(): Promise<void>;
  /** SIGKILL: no goodbye to replicas, sentinels or the cluster bus. */
  kill(): Promise<void>;
  /** Everything the current process printed (redis-sentinel logs its events here). */
  output(): string;
  /** The current process, for `waitForLine`. */
  child(): Child | undefined;
  /** Kills the process and deletes its directory. */
  remove(): Promise<void>;
}

/**
 * A redis-server (or, with `command: "redis-sentinel"`, a sentinel) on `port` of 127.0.0.1.
 * `args(dir)` gives the arguments of each start; they may point to a config file in `dir`.
 */
export function redisNode(port: number, command: "redis-server" | "redis-sentinel", args: (dir: string) => string[]): RedisNode {
  const dir = mkdtempSync(join(tmpdir(), `roomcast-${command}-`));
  directories.add(dir);
  const removeDir = () => {
    rmSync(dir, { recursive: true, force: true });
    directories.delete(dir);
  };
  const address = `127.0.0.1:${port}`;
  let child: Child | undefined;
  const running = () => child !== undefined && child.process.exitCode === null && child.process.signalCode === null;
  const kill = async () => {
    await child?.stop("SIGKILL");
  };
  return {
    address,
    port,
    dir,
    running,
    output: () => child?.output() ?? "",
    child: () => child,
    async start() {
      if (running()) throw new Error(`${command} on ${address} is already running`);
      child = startChild(command, args(dir));
      const started = child;
      const deadline = Date.now() + 10_000;
      for (;;) {
        if (!running()) throw new Error(`${command} on ${address} exited at start:\n${started.output()}`);
        if ((await redisCall(address, "PING").catch(() => "")) === "PONG") return;
        if (Date.now() > deadline) throw new Error(`${command} did not answer on ${address}:\n${started.output()}`);
        await new Promise((r) => setTimeout(r, 50));
      }
    },
    kill,
    async remove() {
      await kill();
      removeDir();
    },
  };
}
