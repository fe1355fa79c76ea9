/** npm run by a test, outside this checkout: its environment, and whole process groups. */
import { spawn } from "node:child_process";
import { fileURLToPath } from "node:url";
import { eventually, withTimeout } from "../helpers/processes.js";

/** The checkout these tests were built from (dist/test/cli/ is three folders below it). */
export const ROOT = fileURLToPath(new URL("../../../", import.meta.url));

/**
 * The environment for an npm that a test starts: the suite runs under `npm test`, whose npm_*
 * variables (npm_config_local_prefix=this checkout, npm_config_prefix, npm_package_*) would make a
 * nested npm act on this checkout instead of the folder it runs in. npm's cache stays the same.
 */
export function npmEnv(): NodeJS.ProcessEnv {
  const env: NodeJS.ProcessEnv = {};
  for (const [key, value] of Object.entries(process.env)) {
    if (!key.toLowerCase().startsWith("npm_") || key.toLowerCase() === "npm_config_cache") env[key] = value;
  }
  return { ...env, npm_config_update_notifier: "false", npm_config_fund: "false", npm_config_audit: "false" };
}

const groups = new Set<number>();
process.on("exit", () => {
  for (const pid of groups) killGroup(pid, "SIGKILL");
});

function killGroup(pid: number, signal: NodeJS.Signals | 0): boolean {
  try {
    process.kill(-pid, signal);
    return true;
  } catch {
    return false; // nobody of the group is left
  }
}

export interface Group {
  /** Everything written to stdout and stderr so far. */
  output(): string;
  readonly exited: Promise<number | string>;
  /** Resolves with the first whole output line `match` accepts (also one printed before the call). */
  waitForLine(match: (line: string) => boolean, timeoutMs: number, what: string): Promise<string>;
  /**
   * Stops every process of the group and waits for the leader. `npm start` does not pass SIGTERM
   * on to the server it started (the server would live on as an orphan), so the signal goes to the
   * whole group: npm, its shell and the server.
   */
  stop(): Promise<void>;
}

/** Runs a command in `cwd` as the leader of a new process group (npm → sh → node). */
export function startGroup(command: string, args: string[], cwd: string, env: NodeJS.ProcessEnv = npmEnv()): Group {
  const child = spawn(command, args, { cwd, env, detached: true, stdio: ["ignore", "pipe", "pipe"] });
  const pid = child.pid;
  if (pid === undefined) throw new Error(`cannot start ${command}`);
  groups.add(pid);
  let output = "";
  const waiters = new Set<() => void>();
  const onData = (chunk: Buffer) => {
    output += chunk.toString();
    for (const wake of [...waiters]) wake();
  };
  child.stdout.on("data", onData);
  child.stderr.on("data", onData);
  const exited = new Promise<number | string>((resolve) => {
    child.once("exit", (code, signal) => resolve(code ?? signal ?? "unknown"));
  });
  return {
    output: () => output,
    exited,
    waitForLine(match, timeoutMs, what) {
      let wake: (() => void) | undefined;
      const found = new Promise<string>((resolve, reject) => {
        wake = () => {
          const line = output.split("\n").slice(0, -1).find(match); // whole lines only
          if (line !== undefined) resolve(line);
        };
        waiters.add(wake);
        wake();
        void exited.then((code) => reject(new Error(`${command} exited (${code}) before ${what}:\n${output}`)));
      });
      return withTimeout(found, timeoutMs, () => `timed out waiting for ${what}; output so far:\n${output}`).finally(() => {
        if (wake) waiters.delete(wake);
      });
    },
    async stop() {
      killGroup(pid, "SIGTERM");
      await exited;
      // npm, the leader, leaves at once; the server may take a few seconds to stop gracefully
      await eventually(() => (killGroup(pid, 0) ? undefined : true), 10_000, `process group ${pid} to end`).catch(() => killGroup(pid, "SIGKILL"));
      groups.delete(pid);
    },
  };
}
