/**
 * The peers' process layout, as the article's cluster.js: a primary forks N workers, worker i on
 * port-base + i. Peers are benchmark baselines, not roomcast: no restarts, no graceful stop.
 * Usage: node PEER.js --port-base 7001 --workers 2 [--redis redis://…]
 */
import { fork } from "node:child_process";
import { parseArgs } from "node:util";

export interface PeerArgs {
  port: number;
  redis: string;
}

export function runPool(script: string, worker: (args: PeerArgs) => Promise<void>): void {
  if (process.env["PEER_PORT"]) {
    void worker({ port: Number(process.env["PEER_PORT"]), redis: process.env["PEER_REDIS"] ?? "" }).then(() => process.send?.("listening"));
    return;
  }
  const { values } = parseArgs({ options: { "port-base": { type: "string" }, workers: { type: "string" }, redis: { type: "string" } } });
  const base = Number(values["port-base"] ?? 7001);
  const workers = Number(values.workers ?? 2);
  let listening = 0;
  const children = Array.from({ length: workers }, (_, i) => {
    const child = fork(script, [], { env: { ...process.env, PEER_PORT: String(base + i), PEER_REDIS: values.redis ?? "" } });
    child.on("message", () => {
      if (++listening === workers) process.stdout.write(`listening ${base}-${base + workers - 1}\n`);
    });
    return child;
  });
  const stop = () => {
    for (const c of children) c.kill("SIGKILL");
    process.exit(0);
  };
  process.on("SIGTERM", stop);
  process.on("SIGINT", stop);
}
