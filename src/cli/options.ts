import { Command, Option } from "commander";
import type { OptionSpec } from "../config.js";

/** Adds a table of OptionSpecs to a command; --help shows each one's variable and default. */
export function addOptions(command: Command, specs: Record<string, OptionSpec>): Command {
  for (const [key, spec] of Object.entries(specs)) {
    const extra = spec.default === undefined ? `(env ${spec.env})` : `(env ${spec.env}, default ${spec.default})`;
    const option = new Option(spec.flag, `${spec.description} ${extra}`);
    option.attributeName = () => key;
    command.addOption(option);
  }
  return command;
}

/** One clear line on stderr and exit code 1: how roomcast answers a mistake it can name. */
export function fail(message: string): never {
  process.stderr.write(`roomcast: ${message}\n`);
  process.exit(1);
}
