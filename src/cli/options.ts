import { isIPv6 } from "node:net";
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

/**
 * The URL a person can open for a process listening on `host`: `localhost` for the wildcard
 * addresses (0.0.0.0, ::), brackets around any other IPv6 address.
 */
export function browsableUrl(host: string, port: number): string {
  const bare = host.replace(/^\[(.*)\]$/, "$1");
  // new URL writes an IPv6 address in its shortest form: "0:0::0" is "[::]" too
  const name = isIPv6(bare) ? new URL(`http://[${bare}]`).hostname : host;
  return `http://${name === "0.0.0.0" || name === "[::]" ? "localhost" : name}:${port}`;
}

/** One line for people on stderr; stdout stays JSON log lines for machines. */
export function tell(line: string): void {
  process.stderr.write(`${line}\n`);
}
