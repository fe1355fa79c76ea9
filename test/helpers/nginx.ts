/** A real nginx (Debian's), configured by `roomcast nginx`, on a free port of 127.0.0.1. */
import { chmodSync, mkdtempSync, rmSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { eventually, freePort, startChild, type Child } from "./processes.js";
import { runCli } from "./roomcast.js";

export interface TestNginx extends Child {
  readonly port: number;
  readonly url: string;
  readonly config: string;
}

export async function startNginx(upstreams: string[], extra: string[] = []): Promise<TestNginx> {
  const port = await freePort();
  const dir = mkdtempSync(join(tmpdir(), "roomcast-nginx-"));
  // nginx's workers (nobody, when the tests run as root) write request bodies under it
  chmodSync(dir, 0o711);
  const args = ["nginx", "--listen", `127.0.0.1:${port}`, "--runtime-dir", dir, ...upstreams.flatMap((u) => ["--upstream", u]), ...extra];
  const generated = await runCli(args);
  if (generated.code !== 0) throw new Error(`roomcast nginx failed: ${generated.output}`);
  const file = join(dir, "nginx.conf");
  writeFileSync(file, generated.output);
  const child = startChild("nginx", ["-c", file, "-p", dir, "-g", "daemon off;"]);
  const url = `http://127.0.0.1:${port}`;
  await eventually(async () => ((await fetch(`${url}/healthz`)).ok ? true : undefined), 10_000, `nginx on ${port}:\n${child.output()}`);
  const stop = child.stop.bind(child);
  return Object.assign(child, {
    port,
    url,
    config: generated.output,
    async stop(signal?: NodeJS.Signals, graceMs?: number) {
      await stop(signal ?? "SIGTERM", graceMs);
      rmSync(dir, { recursive: true, force: true });
    },
  });
}
