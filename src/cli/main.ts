#!/usr/bin/env node
/**
 * The `roomcast` command. One file per command in this folder; this one only assembles them.
 */
import { Command } from "commander";
import { benchCommand } from "./bench.js";
import { clusterCommand } from "./cluster.js";
import { nginxCommand } from "./nginx.js";
import { serveCommand } from "./serve.js";

const output = {
  // commander's own mistakes ("unknown option", "missing argument") in roomcast's one-line form
  outputError: (text: string, write: (s: string) => void) => write(`roomcast: ${text.replace(/^error: /, "").trimEnd()}\n`),
};

const program = new Command("roomcast")
  .description("Multi-room, multi-process chat on Node.js, Socket.IO and Redis.")
  .configureOutput(output);
for (const command of [serveCommand(), clusterCommand(), nginxCommand(), benchCommand()]) program.addCommand(command.configureOutput(output));

program.parseAsync(process.argv).catch((err: unknown) => {
  process.stderr.write(`roomcast: ${err instanceof Error ? err.message : String(err)}\n`);
  process.exit(1);
});
