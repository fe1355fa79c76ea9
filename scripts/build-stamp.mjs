// The build's stamp, so that `npm start` rebuilds only when a source changed since the last build.
//
//   node scripts/build-stamp.mjs begin   first step of `npm run build` (after rm -rf dist)
//   node scripts/build-stamp.mjs done    last step: the CLI made executable, the build marked whole
//   node scripts/build-stamp.mjs fresh   exit 0 if dist/ is newer than every source, else exit 1
//                                        (`npm start`: `fresh || npm run build`)
//
// The stamp's time is when the build BEGAN (`begin` writes it, `done` only renames it), so a source
// saved while the build ran counts as newer than the build. A build that failed half-way never ran
// `done`, leaves no stamp, and the next start builds again.
import { chmodSync, mkdirSync, readdirSync, renameSync, statSync, writeFileSync } from "node:fs";
import { join } from "node:path";
import process from "node:process";
import { fileURLToPath, URL } from "node:url";

// Paths below are the project's, wherever this is run from.
process.chdir(fileURLToPath(new URL("..", import.meta.url)));

const STARTED = "dist/.build-started";
const STAMP = "dist/.build-stamp";
/** The executable of the `roomcast` command (package.json `bin`); tsc writes it without the execute bit. */
const CLI = "dist/src/cli/main.js";

/** What the build reads: everything tsc, tsconfig.web.json and scripts/build-web.mjs take in. */
const SOURCES = ["src", "web", "bench", "test", "lab", "tsconfig.json", "tsconfig.web.json", "scripts/build-web.mjs", "package-lock.json"];
/** Written by `npm run bench:peers` and read by nothing the build makes. */
const NOT_SOURCES = new Set(["bench/results"]);

/**
 * The newest modification among the sources: files and folders alike, since a folder's time changes
 * when a file in it is added, removed or renamed (a deleted source must rebuild too).
 */
function newestSource(path, newest = { path: "", mtimeMs: 0 }) {
  if (NOT_SOURCES.has(path)) return newest;
  let stat;
  try {
    stat = statSync(path);
  } catch {
    return newest; // an optional source that is not there
  }
  if (stat.mtimeMs > newest.mtimeMs) newest = { path, mtimeMs: stat.mtimeMs };
  if (stat.isDirectory()) for (const name of readdirSync(path)) newest = newestSource(join(path, name), newest);
  return newest;
}

const command = process.argv[2];
if (command === "begin") {
  mkdirSync("dist", { recursive: true });
  writeFileSync(STARTED, "`npm run build` began at this file's modification time and has not finished\n");
} else if (command === "done") {
  chmodSync(CLI, 0o755);
  renameSync(STARTED, STAMP);
} else if (command === "fresh") {
  let built;
  try {
    built = statSync(STAMP).mtimeMs;
  } catch {
    process.stderr.write("roomcast: no complete build in dist/: building\n");
    process.exit(1);
  }
  const newest = SOURCES.reduce((acc, path) => newestSource(path, acc), { path: "", mtimeMs: 0 });
  // At the same time counts as newer: on a file system with whole-second times, an edit in the
  // second the build began may have come after it.
  if (newest.mtimeMs >= built) {
    process.stderr.write(`roomcast: ${newest.path} changed since the last build: building\n`);
    process.exit(1);
  }
  process.stderr.write(`roomcast: dist/ is up to date (built ${new Date(built).toISOString().replace(/\.\d+Z$/, "Z")}): not building\n`);
} else {
  process.stderr.write("usage: node scripts/build-stamp.mjs begin|done|fresh\n");
  process.exit(2);
}
