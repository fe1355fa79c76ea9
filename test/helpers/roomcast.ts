/** Real `roomcast` processes (the built CLI), listening on a free port of 127.0.0.1. */
import { fileURLToPath } from "node:url";
import { startChild, type Child } from "./processes.js";

export const CLI = fileURLToPath(new URL("../../src/cli/main.js", import.meta.url));

export interface Roomcast extends Child {
  readonly port: number;
  readonly url: string;
}

/** Runs `roomcast serve` with these extra flags; resolves once it listens. */
export async function startServe(flags: string[] = [], env: NodeJS.ProcessEnv = {}): Promise<Roomcast> {
  const child = startChild(process.execPath, [CLI, "serve", "--host", "127.0.0.1", "--port", "0", ...flags], env);
  const line = await child.waitForLine((l) => l.includes('"msg":"listening"'), 15_000, "roomcast to listen");
  const port = (JSON.parse(line) as { port: number }).port;
  return Object.assign(child, { port, url: `http://127.0.0.1:${port}` });
}

/** Runs the CLI to its end; for argument and start-up errors. */
export async function runCli(args: string[], env: NodeJS.ProcessEnv = {}): Promise<{ code: number | string; output: string }> {
  const child = startChild(process.execPath, [CLI, ...args], env);
  const code = await child.exited;
  return { code, output: child.output() };
}

export async function getJson<T = unknown>(url: string): Promise<{ status: number; body: T }> {
  const res = await fetch(url);
  return { status: res.status, body: (await res.json()) as T };
}
