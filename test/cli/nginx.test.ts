/** `roomcast nginx` prints a configuration that nginx itself accepts. */
import assert from "node:assert/strict";
import { mkdtempSync, rmSync, statSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { dirname, join } from "node:path";
import { after, describe, it } from "node:test";
import { Cleanup, eventually, freePort, startChild } from "../helpers/processes.js";
import { runCli, startServe } from "../helpers/roomcast.js";

const cleanup = new Cleanup();
after(() => cleanup.run());

/** The runtime directory a printed configuration names in its first lines (removed after the tests). */
function runtimeDirOf(config: string): string {
  const dir = /^# Runtime directory \(pid file, temporary files\): (\S+)$/m.exec(config)?.[1];
  assert.ok(dir, `the configuration names its runtime directory:\n${config}`);
  assert.ok(config.includes(`pid ${dir}/nginx.pid;`), "nginx's pid file is in it");
  return dir;
}

/** `roomcast nginx` with these flags; its own runtime directory is removed after the tests. */
async function generate(args: string[]): Promise<{ config: string; dir: string }> {
  const { code, output } = await runCli(["nginx", ...args]);
  assert.equal(code, 0, output);
  const dir = runtimeDirOf(output);
  cleanup.add(() => rmSync(dir, { recursive: true, force: true }));
  return { config: output, dir };
}

async function nginxAccepts(config: string): Promise<{ ok: boolean; output: string }> {
  const dir = mkdtempSync(join(tmpdir(), "roomcast-nginx-t-"));
  try {
    const file = join(dir, "nginx.conf");
    writeFileSync(file, config);
    const child = startChild("nginx", ["-t", "-c", file, "-p", dir]);
    const code = await child.exited;
    return { ok: code === 0, output: child.output() };
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
}

describe("roomcast nginx", () => {
  it("prints the article's layout for two machines with eight workers each, and nginx accepts it", async () => {
    const { config: output } = await generate(["--upstream", "10.0.0.1:6001-6008", "--upstream", "10.0.0.2:6001-6008", "--listen", "127.0.0.1:18080"]);
    assert.equal((output.match(/^\s+server 10\.0\.0\.[12]:600[1-8] /gm) ?? []).length, 16);
    for (const directive of [
      "hash $remote_addr consistent;",
      "map $http_upgrade $connection_upgrade",
      "proxy_set_header Upgrade $http_upgrade;",
      "proxy_set_header Connection $connection_upgrade;",
      "proxy_http_version 1.1;",
      "proxy_set_header X-Forwarded-For $proxy_add_x_forwarded_for;",
      "proxy_read_timeout 75s;",
      "proxy_next_upstream error timeout",
    ]) {
      assert.ok(output.includes(directive), `has ${directive}`);
    }
    const checked = await nginxAccepts(output);
    assert.ok(checked.ok, checked.output);
  });

  it("keeps the article's ip_hash behind --balance ip_hash", async () => {
    const { config: output } = await generate(["--upstream", "127.0.0.1:6001", "--balance", "ip_hash"]);
    assert.match(output, /^\s+ip_hash;/m);
    assert.doesNotMatch(output, /hash \$remote_addr/);
    assert.ok((await nginxAccepts(output)).ok);
  });

  it("makes a new private runtime directory for each run unless --runtime-dir chooses one", async () => {
    const first = await generate(["--upstream", "127.0.0.1:6001"]);
    const second = await generate(["--upstream", "127.0.0.1:6001"]);
    assert.notEqual(first.dir, second.dir, "two runs never share a runtime directory");
    for (const { dir } of [first, second]) {
      assert.equal(dirname(dir), tmpdir(), "under the OS temp dir");
      const stat = statSync(dir);
      assert.ok(stat.isDirectory());
      assert.equal(stat.uid, process.getuid?.(), "owned by whoever ran roomcast nginx");
      // only the owner lists or changes it; nginx's workers (nobody, under a root master) pass through
      assert.equal(stat.mode & 0o777, 0o711);
    }
    assert.ok((await nginxAccepts(first.config)).ok);

    const chosen = join(mkdtempSync(join(tmpdir(), "roomcast-nginx-chosen-")), "run");
    cleanup.add(() => rmSync(dirname(chosen), { recursive: true, force: true }));
    const given = await generate(["--upstream", "127.0.0.1:6001", "--runtime-dir", chosen]);
    assert.equal(given.dir, chosen);
    assert.ok(statSync(chosen).isDirectory(), "--runtime-dir is created if missing");

    const help = await runCli(["nginx", "--help"]);
    assert.doesNotMatch(help.output, /\/tmp\/roomcast-nginx/);
    assert.match(help.output.replace(/\s+/g, " "), /new private directory under the OS temp dir for each run/);
  });

  it("passes request bodies larger than nginx's memory buffer through the default runtime directory", async () => {
    // nginx keeps a body over client_body_buffer_size (16 KB) in a temp file in the runtime
    // directory, written by its worker processes; run as root, those are `nobody`.
    const server = await startServe();
    cleanup.add(() => server.stop());
    const port = await freePort();
    const { config, dir } = await generate(["--upstream", `127.0.0.1:${server.port}`, "--listen", `127.0.0.1:${port}`]);
    const file = join(dir, "nginx.conf");
    writeFileSync(file, config);
    const nginx = startChild("nginx", ["-c", file, "-p", dir, "-g", "daemon off;"]);
    cleanup.add(() => nginx.stop());
    const url = `http://127.0.0.1:${port}`;
    await eventually(async () => ((await fetch(`${url}/healthz`)).ok ? true : undefined), 10_000, `nginx on ${port}:\n${nginx.output()}`);
    // roomcast answers any POST but Socket.IO's with 405: that answer came through nginx
    const res = await fetch(`${url}/api/rooms`, { method: "POST", body: "x".repeat(100_000) });
    assert.equal(res.status, 405, nginx.output());
  });

  it("refuses a missing or malformed upstream in one line", async () => {
    for (const args of [["nginx"], ["nginx", "--upstream", "nohost"], ["nginx", "--upstream", "h:9-3"], ["nginx", "--upstream", "h:1", "--listen", "x y"]]) {
      const { code, output } = await runCli(args);
      assert.equal(code, 1, args.join(" "));
      assert.equal(output.trimEnd().split("\n").length, 1, output);
      assert.match(output, /^roomcast: /);
    }
  });
});
