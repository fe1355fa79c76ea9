/**
 * Real processes for tests: free ports, child processes that are always stopped (also when a test
 * fails, and when the test runner itself exits), and waiting on conditions instead of sleeping.
 */
import { spawn, type ChildProcess } from "node:child_process";
import { createServer } from "node:net";

const children = new Set<ChildProcess>();
process.on("exit", () => {
  for (const child of children) child.kill("SIGKILL");
});

/** A TCP port free on 127.0.0.1 right now. */
export async function freePort(): Promise<number> {
  return new Promise((resolve, reject) => {
    const server = createServer();
    server.unref();
    server.once("error", reject);
    server.listen(0, "127.0.0.1", () => {
      const address = server.address();
      server.close(() => (typeof address === "object" && address ? resolve(address.port) : reject(new Error("no port"))));
    });
  });
}

export interface Child {
  readonly process: ChildProcess;
  /** Everything written to stdout and stderr so far. */
  output(): string;
  /** Resolves with the exit code (or the signal) once the process has exited. */
  readonly exited: Promise<number | string>;
  /**
   * Resolves with the first output line that `match` accepts, among the lines printed after
   * `fromOffset` characters of output (see `outputLength`).
   */
  waitForLine(match: (line: string) => boolean, timeoutMs?: number, what?: string, fromOffset?: number): Promise<string>;
  /** How much has been printed so far: an offset for `waitForLine`. */
  outputLength(): number;
  /** Stops the process (SIGKILL after `graceMs`) and waits until it is gone. */
  stop(signal?: NodeJS.Signals, graceMs?: number): Promise<void>;
}

export function startChild(command: string, args: string[], env: NodeJS.ProcessEnv = {}): Child {
  const child = spawn(command, args, { env: { ...process.env, ...env }, stdio: ["ignore", "pipe", "pipe"] });
  children.add(child);
  let output = "";
  const lineWaiters: { match: (l: string) => boolean; resolve: (l: string) => void }[] = [];
  let partial = "";
  const onData = (chunk: Buffer) => {
    const text = chunk.toString();
    output += text;
    partial += text;
    const lines = partial.split("\n");
    partial = lines.pop() ?? "";
    for (const line of lines) {
      for (const waiter of [...lineWaiters]) {
        if (waiter.match(line)) {
          lineWaiters.splice(lineWaiters.indexOf(waiter), 1);
          waiter.resolve(line);
        }
      }
    }
  };
  child.stdout?.on("data", onData);
  child.stderr?.on("data", onData);
  const exited = new Promise<number | string>((resolve) => {
    child.once("exit", (code, signal) => {
      children.delete(child);
      resolve(code ?? signal ?? "unknown");
    });
  });
  return {
    process: child,
    output: () => output,
    exited,
    outputLength: () => output.length,
    waitForLine(match, timeoutMs = 15_000, what = "an output line", fromOffset = 0) {
      const seen = output.slice(fromOffset).split("\n").find(match);
      if (seen !== undefined) return Promise.resolve(seen);
      return withTimeout(
        new Promise<string>((resolve, reject) => {
          lineWaiters.push({ match, resolve });
          void exited.then((code) => reject(new Error(`${command} exited (${code}) before ${what}:\n${output}`)));
        }),
        timeoutMs,
        () => `timed out waiting for ${what}; output so far:\n${output}`,
      );
    },
    async stop(signal = "SIGTERM", graceMs = 10_000) {
      if (child.exitCode !== null || child.signalCode !== null) return;
      child.kill(signal);
      const timer = setTimeout(() => child.kill("SIGKILL"), graceMs);
      await exited;
      clearTimeout(timer);
    },
  };
}

export async function withTimeout<T>(promise: Promise<T>, ms: number, message: string | (() => string)): Promise<T> {
  let timer: NodeJS.Timeout | undefined;
  const timeout = new Promise<never>((_, reject) => {
    timer = setTimeout(() => reject(new Error(typeof message === "string" ? message : message())), ms);
  });
  try {
    return await Promise.race([promise, timeout]);
  } finally {
    clearTimeout(timer);
  }
}

/** Polls `check` until it returns a value that is not undefined (events we cannot subscribe to: HTTP state). */
export async function eventually<T>(check: () => Promise<T | undefined> | T | undefined, timeoutMs: number, what: string): Promise<T> {
  const deadline = Date.now() + timeoutMs;
  let last: unknown;
  for (;;) {
    try {
      const value = await check();
      if (value !== undefined) return value;
    } catch (err) {
      last = err;
    }
    if (Date.now() > deadline) throw new Error(`timed out waiting for ${what}${last ? `: ${String(last)}` : ""}`);
    await new Promise((r) => setTimeout(r, 100));
  }
}

/** Runs cleanups in reverse order of registration; for `after()` hooks. */
export class Cleanup {
  private readonly steps: (() => unknown)[] = [];
  add(step: () => unknown): void {
    this.steps.push(step);
  }
  async run(): Promise<void> {
    while (this.steps.length > 0) {
      const step = this.steps.pop();
      try {
        await step?.();
      } catch {
        // keep cleaning up
      }
    }
  }
}
