/** `roomcast nginx` prints a configuration that nginx itself accepts. */
import assert from "node:assert/strict";
import { mkdtempSync, rmSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { describe, it } from "node:test";
import { startChild } from "../helpers/processes.js";
import { runCli } from "../helpers/roomcast.js";

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
    const { code, output } = await runCli(["nginx", "--upstream", "10.0.0.1:6001-6008", "--upstream", "10.0.0.2:6001-6008", "--listen", "127.0.0.1:18080", "--runtime-dir", "/tmp/roomcast-nginx-test"]);
    assert.equal(code, 0, output);
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
    rmSync("/tmp/roomcast-nginx-test", { recursive: true, force: true });
    assert.ok(checked.ok, checked.output);
  });

  it("keeps the article's ip_hash behind --balance ip_hash", async () => {
    const { code, output } = await runCli(["nginx", "--upstream", "127.0.0.1:6001", "--balance", "ip_hash"]);
    assert.equal(code, 0);
    assert.match(output, /^\s+ip_hash;/m);
    assert.doesNotMatch(output, /hash \$remote_addr/);
    assert.ok((await nginxAccepts(output)).ok);
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
