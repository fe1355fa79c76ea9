/**
 * `npm start` builds only when a source is newer than the last build, then serves.
 *
 * It runs in a copy of this checkout (sources, scripts and the built dist/, node_modules linked),
 * never in the checkout itself: a rebuild there would empty dist/ under the test files running
 * beside this one. The copy's file times are set by the test, so "newer" is the test's to decide.
 */
import assert from "node:assert/strict";
import { appendFileSync, cpSync, mkdtempSync, readdirSync, rmSync, statSync, symlinkSync, utimesSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { after, describe, it } from "node:test";
import { Cleanup, startChild } from "../helpers/processes.js";
import { ROOT, startGroup } from "./npm.js";

const cleanup = new Cleanup();
after(() => cleanup.run());

const COPIED = ["src", "web", "bench", "test", "lab", "scripts", "tsconfig.json", "tsconfig.web.json", "package.json", "package-lock.json", "dist"];

/** Sets the modification time of `path` and of everything under it. */
function setTimes(path: string, seconds: number): void {
  if (statSync(path).isDirectory()) for (const name of readdirSync(path)) setTimes(join(path, name), seconds);
  utimesSync(path, seconds, seconds);
}

/** `node scripts/build-stamp.mjs fresh` in the copy: exit 0 when dist/ is up to date. */
async function fresh(copy: string): Promise<{ code: number | string; output: string }> {
  const child = startChild(process.execPath, [join(copy, "scripts/build-stamp.mjs"), "fresh"]);
  return { code: await child.exited, output: child.output() };
}

/** Runs `npm start` in the copy until it serves; returns what it printed, and stops it. */
async function npmStart(copy: string, timeoutMs: number): Promise<string> {
  const npm = startGroup("npm", ["start", "--", "--host", "127.0.0.1", "--port", "0"], copy);
  cleanup.add(() => npm.stop());
  const listening = await npm.waitForLine((l) => l.includes('"msg":"listening"'), timeoutMs, "npm start to serve");
  const { port } = JSON.parse(listening) as { port: number };
  assert.equal((await fetch(`http://127.0.0.1:${port}/`)).status, 200, "the page is served");
  await npm.stop();
  return npm.output();
}

describe("npm start", () => {
  it("serves without building when dist/ is newer than every source, and builds first when one changed", async () => {
    const copy = mkdtempSync(join(tmpdir(), "roomcast-start-"));
    cleanup.add(() => rmSync(copy, { recursive: true, force: true }));
    for (const name of COPIED) cpSync(join(ROOT, name), join(copy, name), { recursive: true });
    symlinkSync(join(ROOT, "node_modules"), join(copy, "node_modules"));
    const hourAgo = Date.now() / 1000 - 3600;
    for (const name of COPIED) if (name !== "dist") setTimes(join(copy, name), hourAgo);
    utimesSync(join(copy, "dist/.build-stamp"), hourAgo + 1800, hourAgo + 1800);

    // up to date: no build, and it serves at once
    const first = await npmStart(copy, 20_000);
    assert.match(first, /dist\/ is up to date/);
    assert.doesNotMatch(first, /> roomcast@[^ ]+ build/);
    assert.match(first, /^roomcast listening on http:\/\/127\.0\.0\.1:\d+ \(memory\)$/m);

    // bench:peers' results are no source; a deleted source is (its folder's time changes)
    appendFileSync(join(copy, "bench/results/peers.json"), "\n");
    assert.equal((await fresh(copy)).code, 0, "bench/results changed: still up to date");
    rmSync(join(copy, "test/chat/shared-query.test.ts"));
    const deleted = await fresh(copy);
    assert.equal(deleted.code, 1, deleted.output);
    assert.match(deleted.output, /test\/chat changed since the last build: building/);
    utimesSync(join(copy, "test/chat"), hourAgo, hourAgo);
    assert.equal((await fresh(copy)).code, 0);

    // a source saved after the build: npm start builds (all of it), then serves the new build
    appendFileSync(join(copy, "src/protocol.ts"), "\n// edited after the build\n");
    const second = await npmStart(copy, 150_000);
    assert.match(second, /src\/protocol\.ts changed since the last build: building/);
    assert.match(second, /> roomcast@[^ ]+ build/);
    assert.ok(statSync(join(copy, "dist/.build-stamp")).mtimeMs > Date.now() - 300_000, "the build left a new stamp");
    assert.match(second, /"msg":"listening"/);

    // and the build it made counts as the last build
    const rebuilt = await fresh(copy);
    assert.equal(rebuilt.code, 0, rebuilt.output);
  });

  it("marks a build whole only at its end, so a failed build is built again", async () => {
    const copy = mkdtempSync(join(tmpdir(), "roomcast-start-"));
    cleanup.add(() => rmSync(copy, { recursive: true, force: true }));
    cpSync(join(ROOT, "scripts"), join(copy, "scripts"), { recursive: true });
    const begin = startChild(process.execPath, [join(copy, "scripts/build-stamp.mjs"), "begin"]);
    assert.equal(await begin.exited, 0, begin.output());
    const unfinished = await fresh(copy);
    assert.equal(unfinished.code, 1, "a build that never ran `done` is no build");
    assert.match(unfinished.output, /no complete build in dist\/: building/);
  });
});
