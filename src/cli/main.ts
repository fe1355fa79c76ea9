#!/usr/bin/env node
/**
 * The `roomcast` command. One file per command in this folder; this one only assembles them.
 */
import { readFileSync } from "node:fs";
import { Command } from "commander";
import { benchCommand } from "./bench.js";
import { clusterCommand } from "./cluster.js";
import { nginxCommand } from "./nginx.js";
import { serveCommand } from "./serve.js";

const output = {
  // commander's own mistakes ("unknown option", "missing argument") in roomcast's one-line form
  outputError: (text: string, write: (s: string) => void) => write(`roomcast: ${text.replace(/^error: /, "").trimEnd()}\n`),
};

/**
 * The version of the package this file belongs to, read at run time (never copied in at build
 * time): package.json sits three folders above the built file (dist/src/cli/main.js), in a clone
 * and in an installed package alike.
 */
function packageVersion(): string {
  try {
    const file = new URL("../../../package.json", import.meta.url);
    return (JSON.parse(readFileSync(file, "utf8")) as { version: string }).version;
  } catch (err) {
    return `unknown (${err instanceof Error ? err.message : String(err)})`;
  }
}

const program = new Command("roomcast")
  .description("Multi-room, multi-process chat on Node.js, Socket.IO and Redis.")
  .version(packageVersion(), "-v, --version", "print roomcast's version")
  .configureOutput(output);
for (const command of [serveCommand(), clusterCommand(), nginxCommand(), benchCommand()]) program.addCommand(command.configureOutput(output));

program.parseAsync(process.argv).catch((err: unknown) => {
  process.stderr.write(`roomcast: ${err instanceof Error ? err.message : String(err)}\n`);
  process.exit(1);
});
