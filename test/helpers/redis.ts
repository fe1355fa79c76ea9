/** A private redis-server on a free port of 127.0.0.1, for one test file. */
import { mkdtempSync, rmSync } from "node:fs";
import { createConnection } from "node:net";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { freePort, startChild, type Child } from "./processes.js";

export interface TestRedis {
  readonly port: number;
  readonly url: string;
  /** Kills the server (its data is gone: nothing is saved). */
  stop(): Promise<void>;
  /** Stops the server after saving its data to disk (SHUTDOWN SAVE): the next start loads it. */
  saveAndStop(): Promise<void>;
  /** Starts the server again on the same port: empty, unless saveAndStop saved its data. */
  start(): Promise<void>;
}

export async function startRedis(): Promise<TestRedis> {
  const port = await freePort();
  const dir = mkdtempSync(join(tmpdir(), "roomcast-redis-"));
  process.once("exit", () => rmSync(dir, { recursive: true, force: true }));
  let child: Child | undefined;
  /** Sends one inline command; resolves with the first reply chunk, or "" when nobody answers. */
  const send = (command: string) =>
    new Promise<string>((resolve) => {
      const socket = createConnection({ port, host: "127.0.0.1" }, () => socket.write(`${command}\r\n`));
      socket.once("data", (d) => {
        socket.destroy();
        resolve(d.toString());
      });
      socket.once("error", () => resolve(""));
      socket.once("close", () => resolve(""));
    });
  const start = async () => {
    child = startChild("redis-server", [
      "--port", String(port), "--bind", "127.0.0.1", "--save", "", "--appendonly", "no", "--dir", dir,
      "--daemonize", "no", "--protected-mode", "yes", "--loglevel", "warning", "--logfile", "",
    ]);
    // With --loglevel warning nothing is printed on start: wait until it answers instead.
    const deadline = Date.now() + 10_000;
    for (;;) {
      if ((await send("PING")).startsWith("+PONG")) return;
      if (Date.now() > deadline) throw new Error(`redis-server did not start on ${port}:\n${child.output()}`);
      await new Promise((r) => setTimeout(r, 50));
    }
  };
  await start();
  return {
    port,
    url: `redis://127.0.0.1:${port}`,
    start,
    async stop() {
      rmSync(join(dir, "dump.rdb"), { force: true });
      await child?.stop("SIGKILL");
    },
    async saveAndStop() {
      const exited = child?.exited;
      await send("SHUTDOWN SAVE");
      await exited;
    },
  };
}
