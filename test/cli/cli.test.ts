/** The `roomcast` command line: help, and one clear line with exit code 1 for every mistake. */
import assert from "node:assert/strict";
import { readFileSync, statSync } from "node:fs";
import { createServer } from "node:net";
import { after, describe, it } from "node:test";
import { WORKLOADS } from "../../bench/workloads.js";
import { serveOptions } from "../../src/config.js";
import { Cleanup, freePort, startChild, type Child } from "../helpers/processes.js";
import { startRedis } from "../helpers/redis.js";
import { CLI, freePortRange, runCli, startServe } from "../helpers/roomcast.js";

const cleanup = new Cleanup();
after(() => cleanup.run());

/** One line on stderr, exit 1, no stack trace. */
function assertOneLineError(result: { code: number | string; output: string }, pattern: RegExp) {
  assert.equal(result.code, 1, result.output);
  const lines = result.output.trimEnd().split("\n");
  assert.equal(lines.length, 1, `one line, got:\n${result.output}`);
  assert.match(lines[0]!, /^roomcast: /);
  assert.match(lines[0]!, pattern);
  assert.doesNotMatch(result.output, /\n\s+at /);
}

/**
 * Starts the CLI with its stdout and stderr kept apart; resolves once `ready` was logged on stdout
 * and `human` printed on stderr.
 */
async function startApart(args: string[], ready: string, human: RegExp): Promise<{ child: Child; stdout(): string; stderr(): string }> {
  const child = startChild(process.execPath, [CLI, ...args]);
  cleanup.add(() => child.stop());
  let stdout = "";
  let stderr = "";
  child.process.stdout?.on("data", (chunk: Buffer) => (stdout += chunk.toString()));
  child.process.stderr?.on("data", (chunk: Buffer) => (stderr += chunk.toString()));
  await child.waitForLine((l) => l.includes(ready), 20_000, ready);
  await child.waitForLine((l) => human.test(l), 5_000, String(human));
  return { child, stdout: () => stdout, stderr: () => stderr };
}

/** stdout holds JSON log lines only, as before: machines parse them. */
function assertJsonLines(stdout: string, msg: string) {
  const lines = stdout.trimEnd().split("\n");
  for (const line of lines) assert.doesNotThrow(() => JSON.parse(line), `a JSON line on stdout: ${line}`);
  assert.ok(lines.some((l) => (JSON.parse(l) as { msg?: string }).msg === msg), `stdout logs "${msg}"`);
}

describe("what a newcomer sees", () => {
  it("prints the package's version with --version and -v, also run as an executable", async () => {
    const { version } = JSON.parse(readFileSync(new URL("../../../package.json", import.meta.url), "utf8")) as { version: string };
    for (const flag of ["--version", "-v"]) {
      const result = await runCli([flag]);
      assert.equal(result.code, 0, result.output);
      assert.equal(result.output, `${version}\n`);
    }
    // `npm link` and `npm install -g` run this file itself: the build must leave it executable
    assert.ok((statSync(CLI).mode & 0o111) !== 0, `${CLI} is executable`);
    const direct = startChild(CLI, ["--version"]);
    assert.equal(await direct.exited, 0, direct.output());
    assert.equal(direct.output(), `${version}\n`);
  });

  it("says where serve listens in one line on stderr, beside the unchanged JSON log on stdout", async () => {
    const server = await startApart(["serve", "--host", "127.0.0.1", "--port", "0"], '"msg":"listening"', /^roomcast listening on /);
    const port = (JSON.parse(server.stdout().split("\n").find((l) => l.includes('"msg":"listening"'))!) as { port: number }).port;
    assert.equal(server.stderr(), `roomcast listening on http://127.0.0.1:${port} (memory)\n`);
    assertJsonLines(server.stdout(), "listening");
    await server.child.stop();
    assert.equal(await server.child.exited, 0);

    // every address: a URL that opens in a browser on this machine; with Redis: says so
    const redis = await startRedis();
    cleanup.add(() => redis.stop());
    const wide = await startApart(["serve", "--host", "0.0.0.0", "--port", "0", "--redis", redis.url], '"msg":"listening"', /^roomcast listening on /);
    assert.match(wide.stderr(), /^roomcast listening on http:\/\/localhost:\d+ \(redis\)\n$/);
    assertJsonLines(wide.stdout(), "listening");
    await wide.child.stop();
  });

  it("names the workers' URLs of a cluster in one line on stderr", async () => {
    const redis = await startRedis();
    cleanup.add(() => redis.stop());
    const base = await freePortRange(2);
    const cluster = await startApart(
      ["cluster", "--redis", redis.url, "--workers", "2", "--port-base", String(base), "--host", "127.0.0.1"],
      '"msg":"cluster ready"',
      /^roomcast cluster: /,
    );
    assert.equal(cluster.stderr(), `roomcast cluster: 2 workers on http://127.0.0.1:${base} … http://127.0.0.1:${base + 1}\n`);
    assertJsonLines(cluster.stdout(), "cluster ready");
    await cluster.child.stop();
    assert.equal(await cluster.child.exited, 0);
  });

  it("describes every bench workload in bench --help", async () => {
    const { code, output } = await runCli(["bench", "--help"]);
    assert.equal(code, 0);
    for (const [name, workload] of Object.entries(WORKLOADS)) {
      assert.match(output, new RegExp(`^\\s+${name}\\s+${workload.description.replace(/[.*+?^${}()|[\]\\]/g, "\\$&")}$`, "m"), `${name}: ${workload.description}`);
    }
  });
});

describe("roomcast CLI", () => {
  it("explains every serve option with its environment variable in --help", async () => {
    const { code, output: raw } = await runCli(["serve", "--help"]);
    assert.equal(code, 0);
    const output = raw.replace(/\s+/g, " "); // --help wraps its lines
    for (const spec of Object.values(serveOptions)) {
      assert.ok(output.includes(spec.flag.split(" ")[0]!), `--help lists ${spec.flag}`);
      assert.ok(output.includes(`env ${spec.env}`), `--help names ${spec.env}`);
    }
    const top = await runCli(["--help"]);
    assert.equal(top.code, 0);
    for (const command of ["serve", "cluster", "nginx", "bench"]) assert.match(top.output, new RegExp(`\\b${command}\\b`));
    for (const command of ["cluster", "nginx", "bench"]) {
      const help = await runCli([command, "--help"]);
      assert.equal(help.code, 0, `${command} --help`);
      assert.match(help.output, /Options:/);
    }
  });

  it("answers bad options and values with one line and exit code 1", async () => {
    assertOneLineError(await runCli(["serve", "--bogus"]), /unknown option '--bogus'/);
    assertOneLineError(await runCli(["serve", "--port", "http"]), /--port must be a number/);
    assertOneLineError(await runCli(["serve", "--port", "70000"]), /--port must be at most 65535/);
    assertOneLineError(await runCli(["serve", "--redis", "localhost"]), /--redis must be a URL/);
    assertOneLineError(await runCli(["serve"], { PORT: "-1" }), /--port must be at least 0/);
    assertOneLineError(await runCli(["serve", "--log-level", "loud"]), /--log-level must be one of/);
    assertOneLineError(await runCli(["frobnicate"]), /unknown command 'frobnicate'/);
    assertOneLineError(await runCli(["cluster"], { REDIS_URL: "" }), /cluster needs Redis/);
    assertOneLineError(await runCli(["cluster", "--redis", "redis://127.0.0.1:1", "--workers", "0"]), /--workers must be at least 1/);
    assertOneLineError(await runCli(["bench", "--workload", "party"]), /--workload must be one of classroom, big-room/);
    assertOneLineError(await runCli(["bench", "--url", "ftp://x"]), /--url ftp:\/\/x: expected http/);
    assertOneLineError(await runCli(["bench", "--rate", "0"]), /--rate must be above 0/);
  });

  it("says so and exits 1 when Redis cannot be reached at start", async () => {
    const port = await freePort();
    assertOneLineError(
      await runCli(["serve", "--host", "127.0.0.1", "--port", "0", "--redis", `redis://127.0.0.1:${port}`]),
      new RegExp(`cannot reach Redis at redis://127.0.0.1:${port}.*ECONNREFUSED`),
    );
    // also from the environment; the flag wins over the variable
    assertOneLineError(await runCli(["serve", "--port", "0"], { REDIS_URL: `redis://127.0.0.1:${port}` }), /cannot reach Redis/);
  });

  it("says so and exits 1 when the port is in use", async () => {
    const blocker = createServer();
    await new Promise<void>((resolve) => blocker.listen(0, "127.0.0.1", resolve));
    cleanup.add(() => blocker.close());
    const port = (blocker.address() as { port: number }).port;
    assertOneLineError(await runCli(["serve", "--host", "127.0.0.1", "--port", String(port)]), new RegExp(`port ${port} is already in use`));
  });

  it("reads options from the environment, and a flag wins over its variable", async () => {
    const server = await startServe([], { PORT: "1", MAX_TEXT_LENGTH: "5" }); // --port 0 from startServe wins
    cleanup.add(() => server.stop());
    assert.notEqual(server.port, 1);
    const { TestClient } = await import("../helpers/client.js");
    const c = new TestClient(server.url, "env");
    cleanup.add(() => c.close());
    await c.join("ann");
    const ack = await c.request("say", { text: "123456" });
    assert.equal(!ack.ok && ack.error.code, "BAD_TEXT", "MAX_TEXT_LENGTH=5 applies");
  });

  it("stops gracefully on SIGTERM with exit code 0", async () => {
    const server = await startServe();
    await server.stop("SIGTERM");
    assert.equal(await server.exited, 0);
    assert.match(server.output(), /"msg":"stopped"/);
  });
});
