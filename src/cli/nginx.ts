import { mkdirSync } from "node:fs";
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
  runtimeDir: { flag: "--runtime-dir <dir>", env: "NGINX_RUNTIME_DIR", default: "/tmp/roomcast-nginx", description: "nginx's pid file and temporary files (created if missing)" },
  errorLog: { flag: "--error-log <path>", env: "NGINX_ERROR_LOG", default: "stderr", description: "error_log target" },
  accessLog: { flag: "--access-log <path|off>", env: "NGINX_ACCESS_LOG", default: "off", description: "access_log target" },
  workerConnections: { flag: "--worker-connections <n>", env: "NGINX_WORKER_CONNECTIONS", default: "4096", description: "connections per nginx worker (a chat client holds two)" },
} satisfies Record<string, OptionSpec>;

const nginxSchema = z.object({
  listen: z.string().regex(/^(?:[^\s;]+:)?\d{1,5}$/, { error: "--listen must be PORT or ADDRESS:PORT" }),
  balance: z.enum(["hash", "ip_hash"], { error: "--balance must be hash or ip_hash" }),
  runtimeDir: z.string().regex(/^\/[^\s;]*$/, { error: "--runtime-dir must be an absolute path without spaces" }),
  errorLog: z.string().regex(/^[^\s;]+$/, { error: "--error-log must be a path or stderr" }),
  accessLog: z.string().regex(/^[^\s;]+$/, { error: "--access-log must be a path or off" }),
  workerConnections: z.coerce.number().int().min(16, { error: "--worker-connections must be at least 16" }).max(1_000_000),
});

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
        const options = resolveOptions(nginxOptions, nginxSchema, flags);
        // nginx creates its temp folders but not the folder of its pid file: make it, so that
        // `nginx -c` works as printed.
        try {
          mkdirSync(options.runtimeDir, { recursive: true });
        } catch (err) {
          throw new ConfigError(`cannot create --runtime-dir ${options.runtimeDir}: ${(err as Error).message}`);
        }
        process.stdout.write(renderNginxConfig({ servers, ...options }));
      } catch (err) {
        if (err instanceof ConfigError) fail(err.message);
        throw err;
      }
    });
  return addOptions(command, nginxOptions);
}
