/**
 * The npm package: `npm pack`, then `npm install -g --prefix DIR TARBALL` on its own gives a
 * working `roomcast` command that knows nothing of this checkout.
 */
import assert from "node:assert/strict";
import { execFileSync } from "node:child_process";
import { existsSync, mkdtempSync, readdirSync, readFileSync, rmSync, statSync } from "node:fs";
import { builtinModules } from "node:module";
import { tmpdir } from "node:os";
import { dirname, join, relative, resolve } from "node:path";
import { after, describe, it } from "node:test";
import { Cleanup, startChild } from "../helpers/processes.js";
import { npmEnv, ROOT } from "./npm.js";

const cleanup = new Cleanup();
after(() => cleanup.run());

interface PackageJson {
  version: string;
  dependencies: Record<string, string>;
  devDependencies: Record<string, string>;
}
const pkg = JSON.parse(readFileSync(join(ROOT, "package.json"), "utf8")) as PackageJson;

/** Runs a command to its end with npm's clean environment; fails the test with its output if it fails. */
async function run(command: string, args: string[], env: NodeJS.ProcessEnv = npmEnv()): Promise<string> {
  const child = startChild(command, args, env);
  const code = await child.exited;
  assert.equal(code, 0, `${command} ${args.join(" ")}:\n${child.output()}`);
  return child.output();
}

function filesUnder(dir: string): string[] {
  return readdirSync(dir, { recursive: true, encoding: "utf8" }).filter((f) => statSync(join(dir, f)).isFile());
}

/** The module specifiers a built file imports (static `from "…"` and dynamic `import("…")`). */
function importsOf(file: string): string[] {
  const text = readFileSync(file, "utf8");
  return [...text.matchAll(/\bfrom\s+"([^"]+)"|\bimport\(\s*"([^"]+)"\s*\)|^import\s+"([^"]+)"/gm)].map((m) => (m[1] ?? m[2] ?? m[3])!);
}

describe("the npm package", () => {
  it("installs from its tarball with npm alone and serves the page", async () => {
    const dir = mkdtempSync(join(tmpdir(), "roomcast-pack-"));
    cleanup.add(() => rmSync(dir, { recursive: true, force: true }));

    // --ignore-scripts: prepack (a full clean build) would empty dist/ under the test files that
    // run beside this one; `npm test` has just built it, and the tarball is made from that build.
    const packed = JSON.parse(await run("npm", ["pack", ROOT, "--ignore-scripts", "--pack-destination", dir, "--json", "--loglevel", "error"])) as [
      { filename: string; files: { path: string }[] },
    ];
    const files = packed[0].files.map((f) => f.path);
    for (const needed of ["package.json", "README.md", "LICENSE", "dist/src/cli/main.js", "dist/src/cluster/worker.js", "dist/bench/bench.js", "dist/bench/child.js", "dist/web/app.js", "dist/web/index.html", "dist/web/style.css"]) {
      assert.ok(files.includes(needed), `the package holds ${needed}`);
    }
    for (const file of files) {
      assert.ok(!file.startsWith("dist/test/") && !file.endsWith(".map") && !file.startsWith("dist/bench/peers"), `the package leaves out ${file}`);
    }

    // --prefer-offline: the dependencies' tarballs come from the cache that `npm ci` filled. Not
    // --offline: npm ci caches no registry metadata, and installing a tarball must resolve the
    // ranges of its dependencies, so the metadata is fetched once (then cached) if it is missing.
    const prefix = join(dir, "prefix");
    await run("npm", ["install", "--global", "--prefix", prefix, "--prefer-offline", "--no-audit", "--no-fund", "--loglevel", "error", join(dir, packed[0].filename)]);
    const installed = join(prefix, "lib/node_modules/roomcast");
    const roomcast = join(prefix, "bin/roomcast");

    // only runtime dependencies came along: a devDependency is there only if one of them needs it
    const modules = join(installed, "node_modules");
    const names = readdirSync(modules).filter((n) => !n.startsWith(".")).flatMap((n) => (n.startsWith("@") ? readdirSync(join(modules, n)).map((m) => `${n}/${m}`) : [n]));
    const needed = new Set(names.flatMap((n) => Object.keys((JSON.parse(readFileSync(join(modules, n, "package.json"), "utf8")) as Partial<PackageJson>).dependencies ?? {})));
    for (const dev of Object.keys(pkg.devDependencies)) {
      if (!needed.has(dev)) assert.ok(!names.includes(dev), `${dev}, a devDependency, is not installed`);
    }
    assert.ok(!names.includes("typescript") && !names.includes("playwright-core"));
    // every import of the shipped code is found in the package, and every dependency is used
    const used = new Set<string>();
    for (const file of filesUnder(join(installed, "dist")).filter((f) => f.endsWith(".js") && !f.startsWith("web/"))) {
      const path = join(installed, "dist", file);
      for (const spec of importsOf(path)) {
        if (spec.startsWith(".")) {
          assert.ok(existsSync(resolve(dirname(path), spec)), `${relative(installed, path)} imports ${spec}, which is in the package`);
        } else if (!spec.startsWith("node:") && !builtinModules.includes(spec)) {
          const name = spec.startsWith("@") ? spec.split("/").slice(0, 2).join("/") : spec.split("/")[0]!;
          assert.ok(name in pkg.dependencies, `${relative(installed, path)} imports ${name}, which is a dependency`);
          used.add(name);
        }
      }
    }
    assert.deepEqual([...used].sort(), Object.keys(pkg.dependencies).sort(), "every dependency is imported by the shipped code");

    // the client SDK, as an application imports it: `roomcast/client`, with its types
    const sdk = execFileSync(process.execPath, ["--input-type=module", "-e", "const m = await import('roomcast/client'); console.log(typeof m.connect, typeof m.RoomcastError)"], {
      cwd: join(prefix, "lib"),
      encoding: "utf8",
    });
    assert.equal(sdk, "function function\n");
    assert.ok(existsSync(join(installed, "dist/src/client/index.d.ts")), "the SDK's types are in the package");

    // the command, run from outside any checkout
    const version = await run(roomcast, ["--version"], {});
    assert.equal(version, `${pkg.version}\n`);
    const server = startChild(roomcast, ["serve", "--port", "0", "--host", "127.0.0.1"]);
    cleanup.add(() => server.stop());
    const listening = await server.waitForLine((l) => l.includes('"msg":"listening"'), 15_000, "the installed roomcast to listen");
    const url = `http://127.0.0.1:${(JSON.parse(listening) as { port: number }).port}`;
    const page = await fetch(`${url}/`);
    assert.equal(page.status, 200);
    const html = await page.text();
    const script = /<script[^>]*\ssrc="([^"]+)"/.exec(html)?.[1];
    assert.ok(script, `the page names its script:\n${html}`);
    const asset = await fetch(new URL(script, url));
    assert.equal(asset.status, 200, script);
    assert.match(asset.headers.get("content-type") ?? "", /javascript/);
    assert.ok((await asset.text()).length > 10_000, "the bundled client, not an empty file");
    await server.stop();
    assert.equal(await server.exited, 0, server.output());
  });
});
