import { chmodSync, mkdirSync, mkdtempSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { Command, Option } from "commander";
import { z } from "zod";
import { ConfigError, resolveOptions, type OptionSpec } from "../config.js";
import { parseUpstream, renderNginxConfig } from "../cluster/nginx-config.js";
import { addOptions, fail } from "./options.js";

const nginxOptions = {
  listen: { flag: "--listen <[address:]port>", env: "NGINX_LISTEN", default: "8080", description: "where nginx listens" },
  balance: {
    flag: "--balance <hash|ip_hash>",
    env: "NGINX_BALANCE",
    default: "hash",
    description:
      "stickiness: `hash` is `hash $remote_addr consistent` (the whole client address); `ip_hash` is the " +
      "article's, which hashes only the first three octets of an IPv4 address, so a whole /24 (an office, " +
      "a carrier NAT) lands on one worker",
  },
  runtimeDir: {
    flag: "--runtime-dir <dir>",
    env: "NGINX_RUNTIME_DIR",
    description:
      "nginx's pid file and temporary files (created if missing); default: a new private directory under " +
      "the OS temp dir for each run, named in a comment at the top of the printed configuration",
  },
  errorLog: { flag: "--error-log <path>", env: "NGINX_ERROR_LOG", default: "stderr", description: "error_log target" },
  accessLog: { flag: "--access-log <path|off>", env: "NGINX_ACCESS_LOG", default: "off", description: "access_log target" },
  workerConnections: { flag: "--worker-connections <n>", env: "NGINX_WORKER_CONNECTIONS", default: "4096", description: "connections per nginx worker (a chat client holds two)" },
} satisfies Record<string, OptionSpec>;

const nginxSchema = z.object({
  listen: z.string().regex(/^(?:[^\s;]+:)?\d{1,5}$/, { error: "--listen must be PORT or ADDRESS:PORT" }),
  balance: z.enum(["hash", "ip_hash"], { error: "--balance must be hash or ip_hash" }),
  runtimeDir: z.string().regex(/^\/[^\s;]*$/, { error: "--runtime-dir must be an absolute path without spaces" }).optional(),
  errorLog: z.string().regex(/^[^\s;]+$/, { error: "--error-log must be a path or stderr" }),
  accessLog: z.string().regex(/^[^\s;]+$/, { error: "--access-log must be a path or off" }),
  workerConnections: z.coerce.number().int().min(16, { error: "--worker-connections must be at least 16" }).max(1_000_000),
});

/**
 * The folder of nginx's pid file and temporary files. nginx creates its temp folders but not the
 * folder of its pid file, so it is made here and `nginx -c` works as printed.
 *
 * Without --runtime-dir: a new folder for this configuration alone (mkdtemp under the OS temp dir),
 * so two users or two runs never share a pid file or temp files, and nobody else can plant
 * anything in it beforehand. Its mode is 0711, not 0700: only its owner may list or change it,
 * but nginx's worker processes, which run as another user (nobody) when nginx is started as root,
 * must reach their temp folders inside it; with 0700 they cannot, and every request body over
 * client_body_buffer_size (16 KB: a long-polling POST with a few long messages) fails with 500.
 * The folder is left for nginx to use; removing it after nginx stops is up to the user.
 */
function runtimeDir(chosen: string | undefined): string {
  try {
    if (chosen !== undefined) {
      mkdirSync(chosen, { recursive: true });
      return chosen;
    }
    if (!/^\/[^\s;]*$/.test(tmpdir())) throw new Error(`the OS temp dir ${tmpdir()} is no absolute path without spaces; choose one with --runtime-dir`);
    const made = mkdtempSync(join(tmpdir(), "roomcast-nginx-"));
    chmodSync(made, 0o711);
    return made;
  } catch (err) {
    throw new ConfigError(`cannot create ${chosen === undefined ? "a runtime directory" : `--runtime-dir ${chosen}`}: ${(err as Error).message}`);
  }
}

export function nginxCommand(): Command {
  const command = new Command("nginx")
    .description(
      "Print a complete nginx configuration for roomcast workers: a sticky upstream, WebSocket upgrade " +
        "headers, timeouts above Socket.IO's heartbeat, and failover to a live worker. " +
        "Example: roomcast nginx --upstream 10.0.0.1:6001-6008 --upstream 10.0.0.2:6001-6008 > roomcast-nginx.conf",
    )
    .addOption(
      new Option("--upstream <hostport...>", "roomcast workers as HOST:PORT or HOST:PORT-PORT, repeatable (env UPSTREAMS, comma-separated)"),
    )
    .action((flags: Record<string, unknown>) => {
      try {
        const specs = (flags["upstream"] as string[] | undefined) ?? (process.env["UPSTREAMS"] ?? "").split(/[,\s]+/).filter(Boolean);
        if (specs.length === 0) throw new ConfigError("--upstream is required, e.g. --upstream 127.0.0.1:6001-6002");
        const servers = specs.flatMap((s) => {
          try {
            return parseUpstream(s);
          } catch (err) {
            throw new ConfigError((err as Error).message);
          }
        });
        const { runtimeDir: chosen, ...options } = resolveOptions(nginxOptions, nginxSchema, flags);
        process.stdout.write(renderNginxConfig({ servers, runtimeDir: runtimeDir(chosen), ...options }));
      } catch (err) {
        if (err instanceof ConfigError) fail(err.message);
        throw err;
      }
    });
  return addOptions(command, nginxOptions);
}
