/** Real `roomcast` processes (the built CLI), listening on a free port of 127.0.0.1. */
import { fileURLToPath } from "node:url";
import { freePort, startChild, type Child, type Cleanup } from "./processes.js";
import { startRedis } from "./redis.js";

export const CLI = fileURLToPath(new URL("../../src/cli/main.js", import.meta.url));

export interface Roomcast extends Child {
  readonly port: number;
  readonly url: string;
}

/** Runs `roomcast serve` with these extra flags; resolves once it listens. */
export async function startServe(flags: string[] = [], env: NodeJS.ProcessEnv = {}): Promise<Roomcast> {
  const child = startChild(process.execPath, [CLI, "serve", "--host", "127.0.0.1", "--port", "0", ...flags], env);
  const line = await child.waitForLine((l) => l.includes('"msg":"listening"'), 15_000, "roomcast to listen");
  const port = (JSON.parse(line) as { port: number }).port;
  return Object.assign(child, { port, url: `http://127.0.0.1:${port}` });
}

/**
 * `roomcast serve` in memory, or on a private Redis started for it; both are stopped by `cleanup`
 * (for the suites that run once per engine).
 */
export async function startServeIn(mode: "memory" | "redis", flags: string[], cleanup: Cleanup): Promise<Roomcast> {
  const all = [...flags];
  if (mode === "redis") {
    const redis = await startRedis();
    cleanup.add(() => redis.stop());
    all.push("--redis", redis.url);
  }
  const server = await startServe(all);
  cleanup.add(() => server.stop());
  return server;
}

/** Runs the CLI to its end; for argument and start-up errors. */
export async function runCli(args: string[], env: NodeJS.ProcessEnv = {}): Promise<{ code: number | string; output: string }> {
  const child = startChild(process.execPath, [CLI, ...args], env);
  const code = await child.exited;
  return { code, output: child.output() };
}

/** One unlabelled metric of a roomcast process's /metrics (NaN when it is not there). */
export async function metric(url: string, name: string): Promise<number> {
  const text = await (await fetch(`${url}/metrics`)).text();
  const line = text.split("\n").find((l) => l.startsWith(`${name} `));
  return Number(line?.split(" ")[1] ?? NaN);
}

/** GET a JSON answer; with `apiKey`, as the server API's client (Authorization: Bearer). */
export async function getJson<T = unknown>(url: string, apiKey?: string): Promise<{ status: number; body: T }> {
  const res = await fetch(url, apiKey === undefined ? {} : { headers: { authorization: `Bearer ${apiKey}` } });
  return { status: res.status, body: (await res.json()) as T };
}

export interface Cluster extends Child {
  readonly portBase: number;
  readonly workers: number;
  url(worker: number): string;
  /** The pid of the worker now listening on port-base + index, from the primary's log. */
  workerPid(index: number): number;
}

/** Two consecutive (or `count`) ports free right now. */
export async function freePortRange(count: number): Promise<number> {
  for (let attempt = 0; attempt < 50; attempt++) {
    const base = await freePort();
    if (base + count > 65535) continue;
    let ok = true;
    for (let i = 1; i < count && ok; i++) ok = await isFree(base + i);
    if (ok) return base;
  }
  throw new Error("no free port range");
}

async function isFree(port: number): Promise<boolean> {
  const { createServer } = await import("node:net");
  return new Promise((resolve) => {
    const server = createServer();
    server.once("error", () => resolve(false));
    server.listen(port, "127.0.0.1", () => server.close(() => resolve(true)));
  });
}

/** Runs `roomcast cluster`; resolves once every worker listens. */
export async function startCluster(redisUrl: string, workers: number, flags: string[] = []): Promise<Cluster> {
  const portBase = await freePortRange(workers);
  const child = startChild(process.execPath, [
    CLI, "cluster", "--redis", redisUrl, "--workers", String(workers), "--port-base", String(portBase), "--host", "127.0.0.1", ...flags,
  ]);
  await child.waitForLine((l) => l.includes('"msg":"cluster ready"'), 20_000, "the cluster to be ready");
  return Object.assign(child, {
    portBase,
    workers,
    url: (worker: number) => `http://127.0.0.1:${portBase + worker}`,
    workerPid(index: number) {
      const lines = child
        .output()
        .split("\n")
        .filter((l) => l.includes('"msg":"worker listening"') && l.includes(`"worker":${index},`));
      const last = lines.at(-1);
      if (!last) throw new Error(`worker ${index} never listened`);
      return (JSON.parse(last) as { workerPid: number }).workerPid;
    },
  });
}
