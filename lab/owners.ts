/**
 * Who owns which lab, so that nothing a lab creates outlives it:
 * - a lab claims an id and one of the 16 address slots with files in /run/roomcast-lab, created
 *   exclusively (two labs starting at once never get the same), naming the owner's pid and the
 *   start time of that process (a pid reused by another process is not taken for the owner);
 * - the owner tears its labs down on exit, on SIGINT, SIGTERM and SIGHUP, and after a crash
 *   (`process.on("exit")` runs for an uncaught exception too);
 * - a lab whose owner died without that (SIGKILL, a power cut of the test runner) is swept when
 *   the next lab starts on this machine: its processes, namespaces, veths, bridge and files.
 */
import { existsSync, linkSync, mkdirSync, readdirSync, readFileSync, rmSync, writeFileSync } from "node:fs";
import { randomBytes } from "node:crypto";
import { spawnSync } from "node:child_process";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { destroyLab, listLinks, listNetns, parseLinkName, parseNetnsName, parseProbeName, SLOTS } from "./netns.js";

const STATE_DIR = "/run/roomcast-lab";

interface OwnerRecord {
  id: string;
  pid: number;
  /** The owner's start time (field 22 of /proc/PID/stat), so a reused pid is not mistaken for it. */
  started: string;
}

/** The start time of a live process, or undefined when there is no such process. */
function startTimeOf(pid: number): string | undefined {
  try {
    const stat = readFileSync(`/proc/${pid}/stat`, "utf8");
    // the command name (field 2) may hold spaces and parentheses: count fields after its last ")"
    return stat.slice(stat.lastIndexOf(")") + 2).split(" ")[19];
  } catch {
    return undefined;
  }
}

function isAlive(owner: OwnerRecord): boolean {
  return startTimeOf(owner.pid) === owner.started;
}

/** A file's text, or undefined when it is gone (another lab released it meanwhile). */
function readQuiet(path: string): string | undefined {
  try {
    return readFileSync(path, "utf8");
  } catch {
    return undefined;
  }
}

function readOwner(id: string): OwnerRecord | undefined {
  try {
    return JSON.parse(readFileSync(join(STATE_DIR, `${id}.json`), "utf8")) as OwnerRecord;
  } catch {
    return undefined;
  }
}

/**
 * Creates `path` with `content`, or throws EEXIST when it exists: written aside and hard-linked
 * into place, so that no reader ever sees the file empty or half written.
 */
function createExclusive(path: string, content: string): void {
  const aside = `${path}.${process.pid}.tmp`;
  writeFileSync(aside, content);
  try {
    linkSync(aside, path);
  } finally {
    rmSync(aside, { force: true });
  }
}

/** Where a lab keeps its files (nginx's configuration, Redis's directory): removed with the lab. */
export function runtimeDir(id: string): string {
  return join(tmpdir(), `roomcast-lab-${id}`);
}

export interface Claim {
  readonly id: string;
  readonly slot: number;
  /** Gives the id and the slot back (after the lab's things are gone). */
  release(): void;
}

/** Claims a fresh id and a free slot for a lab of this process (after sweeping stale labs). */
export function claimLab(): Claim {
  mkdirSync(STATE_DIR, { recursive: true });
  sweepStaleLabs();
  const record: OwnerRecord = { id: "", pid: process.pid, started: startTimeOf(process.pid) ?? "" };
  for (let attempt = 0; ; attempt++) {
    record.id = randomBytes(2).toString("hex");
    try {
      createExclusive(join(STATE_DIR, `${record.id}.json`), JSON.stringify(record));
      break;
    } catch (err) {
      if ((err as NodeJS.ErrnoException).code !== "EEXIST" || attempt > 100) throw err;
    }
  }
  const id = record.id;
  for (let slot = 0; slot < SLOTS; slot++) {
    try {
      createExclusive(join(STATE_DIR, `slot-${slot}`), id);
    } catch (err) {
      if ((err as NodeJS.ErrnoException).code === "EEXIST") continue;
      throw err;
    }
    return {
      id,
      slot,
      release() {
        rmSync(join(STATE_DIR, `slot-${slot}`), { force: true });
        rmSync(join(STATE_DIR, `${id}.json`), { force: true });
      },
    };
  }
  rmSync(join(STATE_DIR, `${id}.json`), { force: true });
  throw new Error(`all ${SLOTS} lab slots are taken (by live processes): stop a lab first`);
}

/**
 * Removes every lab whose owner is dead, and anything named like a lab that no live owner
 * claims. Returns the ids swept.
 */
export function sweepStaleLabs(): string[] {
  mkdirSync(STATE_DIR, { recursive: true });
  const files = readdirSync(STATE_DIR);
  const live = new Set<string>();
  const stale = new Set<string>();
  for (const file of files) {
    const match = /^([0-9a-f]{4})\.json$/.exec(file);
    if (!match) continue;
    const owner = readOwner(match[1]!);
    if (owner && isAlive(owner)) live.add(match[1]!);
    else stale.add(match[1]!);
  }
  // Named things with no live owner: a namespace whose owner pid is dead, a veth or bridge whose
  // id no record claims (records are written before anything is created).
  for (const ns of listNetns()) {
    const parsed = parseNetnsName(ns);
    if (parsed && !live.has(parsed.id) && startTimeOf(parsed.ownerPid) === undefined) stale.add(parsed.id);
    const probePid = parseProbeName(ns);
    if (probePid !== undefined && startTimeOf(probePid) === undefined) spawnSync("ip", ["netns", "del", ns], { stdio: "ignore" });
  }
  for (const link of listLinks()) {
    const id = parseLinkName(link);
    // (looked up now, not in `files`: a lab starting meanwhile wrote its record before its links)
    if (id !== undefined && !live.has(id) && !existsSync(join(STATE_DIR, `${id}.json`))) stale.add(id);
    const probePid = parseProbeName(link);
    if (probePid !== undefined && startTimeOf(probePid) === undefined) spawnSync("ip", ["link", "del", link], { stdio: "ignore" });
  }
  for (const id of stale) {
    destroyLab(id);
    rmSync(runtimeDir(id), { recursive: true, force: true });
    for (const file of readdirSync(STATE_DIR)) {
      if (file.startsWith("slot-") && readQuiet(join(STATE_DIR, file)) === id) rmSync(join(STATE_DIR, file), { force: true });
    }
    rmSync(join(STATE_DIR, `${id}.json`), { force: true });
  }
  for (const file of readdirSync(STATE_DIR)) {
    // a file createExclusive left aside when its writer died
    const aside = /\.(\d+)\.tmp$/.exec(file);
    if (aside && startTimeOf(Number(aside[1])) === undefined) rmSync(join(STATE_DIR, file), { force: true });
  }
  // a slot whose lab record is gone (its owner died between the two writes)
  for (const file of readdirSync(STATE_DIR)) {
    if (!file.startsWith("slot-")) continue;
    const id = readQuiet(join(STATE_DIR, file));
    if (id !== undefined && !existsSync(join(STATE_DIR, `${id}.json`))) rmSync(join(STATE_DIR, file), { force: true });
  }
  return [...stale];
}

// ---- teardown when this process ends ------------------------------------------------------------

const teardowns = new Map<string, () => void>();
const SIGNALS: NodeJS.Signals[] = ["SIGINT", "SIGTERM", "SIGHUP"];

/** Tears down every lab of this process still up, and says so on stderr (one line each). */
function tearDownAll(why: string): void {
  for (const [id, teardown] of [...teardowns]) {
    teardowns.delete(id);
    try {
      teardown();
      process.stderr.write(`roomcast lab ${id}: torn down (${why})\n`);
    } catch (err) {
      // the next lab's sweep finishes the job
      process.stderr.write(`roomcast lab ${id}: teardown failed (${why}): ${err instanceof Error ? err.message : String(err)}\n`);
    }
  }
}

const onExit = (code: number) => tearDownAll(`exit ${code}`);

function onSignal(signal: NodeJS.Signals): void {
  tearDownAll(signal);
  uninstall();
  // Die of the signal as we would have without this handler, unless someone else handles it.
  if (process.listenerCount(signal) === 0) process.kill(process.pid, signal);
}

function install(): void {
  process.on("exit", onExit);
  for (const signal of SIGNALS) process.on(signal, onSignal);
}

function uninstall(): void {
  process.off("exit", onExit);
  for (const signal of SIGNALS) process.off(signal, onSignal);
}

/**
 * Runs `teardown` (synchronous) when this process exits or is stopped by a signal, unless
 * `forget(id)` was called first (the lab was torn down normally).
 */
export function tearDownOnExit(id: string, teardown: () => void): void {
  if (teardowns.size === 0) install();
  teardowns.set(id, teardown);
}

export function forget(id: string): void {
  teardowns.delete(id);
  if (teardowns.size === 0) uninstall();
}
