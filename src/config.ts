/**
 * The one validated configuration. Every option is a flag and an environment variable (a flag wins
 * over the variable); this file is the only one that reads `process.env`, and the option table
 * below is also what `--help` prints.
 */
import { z } from "zod";
import type { RedisTarget } from "./engine/redis/topology.js";

export interface OptionSpec {
  /** commander flag syntax, e.g. "--port <number>" */
  flag: string;
  env: string;
  description: string;
  /** Shown in --help and used when neither flag nor variable is given. */
  default?: string;
}

const int = (name: string, min: number, max: number) =>
  z.coerce
    .number({ error: `${name} must be a number` })
    .int({ error: `${name} must be a whole number` })
    .min(min, { error: `${name} must be at least ${min}` })
    .max(max, { error: `${name} must be at most ${max}` });

const yesNo = (name: string) =>
  z
    .enum(["yes", "no", "true", "false", "1", "0"], { error: `${name} must be yes or no` })
    .transform((v) => v === "yes" || v === "true" || v === "1");

/** A duration such as `30d`, `12h`, `90m`, `45s` or `500ms` (a bare number is seconds), in ms. */
const duration = (name: string) =>
  z.string().transform((s, ctx) => {
    const match = /^(\d+(?:\.\d+)?)(ms|s|m|h|d)?$/.exec(s.trim());
    if (!match) {
      ctx.addIssue({ code: "custom", message: `${name} must be a duration such as 30d, 12h, 90m or 45s` });
      return z.NEVER;
    }
    const unit = { ms: 1, s: 1000, m: 60_000, h: 3_600_000, d: 86_400_000 }[match[2] ?? "s"]!;
    return Math.round(Number(match[1]) * unit);
  });

/** host:port,host:port… (Sentinels, Cluster nodes). */
const hostPorts = (name: string) =>
  z.string().refine((s) => s.split(",").every((hp) => /^(\[[0-9a-fA-F:.]+\]|[A-Za-z0-9.-]+):\d{1,5}$/.test(hp.trim())), {
    error: `${name} must be host:port,host:port… e.g. 10.0.0.1:26379,10.0.0.2:26379`,
  });

const redisUrl = z
  .string()
  .refine((s) => /^rediss?:\/\/[^\s]+$/.test(s) && URL.canParse(s), {
    error: "--redis must be a URL like redis://127.0.0.1:6379",
  });

export const serveOptions = {
  port: { flag: "--port <number>", env: "PORT", default: "3000", description: "TCP port to listen on (0: any free port)" },
  host: { flag: "--host <address>", env: "HOST", default: "0.0.0.0", description: "address to listen on" },
  redis: {
    flag: "--redis <url>",
    env: "REDIS_URL",
    description: "Redis URL (redis://host:port); without it the chat lives in this process's memory",
  },
  redisSentinel: {
    flag: "--redis-sentinel <host:port,...>",
    env: "REDIS_SENTINELS",
    description: "Redis Sentinel instead of --redis: the sentinels, comma-separated (with --redis-sentinel-name); processes follow the master through failovers",
  },
  redisSentinelName: { flag: "--redis-sentinel-name <name>", env: "REDIS_SENTINEL_NAME", description: "the master's name in Sentinel (sentinel monitor NAME …)" },
  redisCluster: {
    flag: "--redis-cluster <host:port,...>",
    env: "REDIS_CLUSTER",
    description: "a Redis Cluster (7.0+) instead of --redis: some of its nodes, comma-separated; rooms are spread over its shards (sharded pub/sub)",
  },
  redisPassword: {
    flag: "--redis-password <password>",
    env: "REDIS_PASSWORD",
    description: "password of the Redis servers with --redis-sentinel or --redis-cluster (--redis carries it in its URL; prefer the variable)",
  },
  redisWait: {
    flag: "--redis-wait <replicas[:ms]>",
    env: "REDIS_WAIT",
    description:
      "acknowledge a message only once this many replicas hold it (WAIT, up to ms, default 500); fewer in time: still delivered and acknowledged, counted in roomcast_redis_wait_short_total",
  },
  redisPrefix: { flag: "--redis-prefix <prefix>", env: "REDIS_PREFIX", default: "roomcast:", description: "prefix of every Redis key and channel" },
  maxTextLength: { flag: "--max-text-length <chars>", env: "MAX_TEXT_LENGTH", default: "2000", description: "longest message, in characters" },
  rateLimit: { flag: "--rate-limit <per-second>", env: "RATE_LIMIT", default: "10", description: "messages a connection may send per second" },
  rateBurst: { flag: "--rate-burst <messages>", env: "RATE_BURST", default: "20", description: "messages a connection may send in a burst" },
  historySize: { flag: "--history-size <messages>", env: "HISTORY_SIZE", default: "1000", description: "messages kept per room (what a reconnecting client can recover)" },
  historyTtl: {
    flag: "--history-ttl <duration>",
    env: "HISTORY_TTL",
    description: "a room unused this long loses its history, e.g. 30d, 12h (Redis: the stream expires; default: kept for ever)",
  },
  historyOnJoin: { flag: "--history-on-join <messages>", env: "HISTORY_ON_JOIN", default: "50", description: "messages sent to a client that joins without `since`" },
  bigRoom: {
    flag: "--big-room <members>",
    env: "BIG_ROOM",
    default: "100",
    description:
      "in rooms of at least this many connections, joins and quits are sent as one `presence_diff` every --presence-batch ms instead of a `join`/`broadcast_quit` each (0: never)",
  },
  presenceBatch: { flag: "--presence-batch <ms>", env: "PRESENCE_BATCH", default: "100", description: "how often a big room's joins and quits are sent, as one `presence_diff`" },
  maxPayload: { flag: "--max-payload <bytes>", env: "MAX_PAYLOAD", default: "65536", description: "largest packet a client may send; a larger one closes its connection" },
  maxQueueBytes: {
    flag: "--max-queue-bytes <bytes>",
    env: "MAX_QUEUE_BYTES",
    default: "1048576",
    description:
      "data waiting in this process for one member (not yet taken by the kernel) past which the member is told SLOW_CONSUMER and closed; it recovers with `since`",
  },
  redisLostGrace: {
    flag: "--redis-lost-grace <seconds>",
    env: "REDIS_LOST_GRACE",
    default: "5",
    description:
      "after this long without Redis, answer new handshakes 503 and close this process's connections so nginx sends them to a process that can serve them (0: never); serving again when Redis is back",
  },
  nodeTtl: { flag: "--node-ttl <seconds>", env: "NODE_TTL", default: "15", description: "a process silent this long is dead: its presence entries vanish" },
  trustProxy: {
    flag: "--trust-proxy <yes|no>",
    env: "TRUST_PROXY",
    default: "no",
    description: "take the client's address from the last X-Forwarded-For entry (only behind a proxy you run, such as nginx)",
  },
  maxConnectionsPerIp: {
    flag: "--max-connections-per-ip <count>",
    env: "MAX_CONNECTIONS_PER_IP",
    default: "0",
    description: "open connections one client address may have on this process (0: no limit; one office behind NAT is one address)",
  },
  authSecret: {
    flag: "--auth-secret <secret>",
    env: "ROOMCAST_AUTH_SECRET",
    description:
      "every connection must carry a JWT signed with this HS256 secret (at least 32 characters; prefer the variable: a flag shows in `ps`)",
  },
  authPublicKey: {
    flag: "--auth-public-key <file>",
    env: "ROOMCAST_AUTH_PUBLIC_KEY",
    description: "every connection must carry a JWT signed with the private key of this PEM public key (RSA: RS256, EC P-256: ES256)",
  },
  authTokenUrl: {
    flag: "--auth-token-url <url>",
    env: "ROOMCAST_AUTH_TOKEN_URL",
    description: "with tokens: where the web page gets one (your application's endpoint, fetched with the user's cookies, answering {\"token\": …})",
  },
  allowedOrigins: {
    flag: "--allowed-origins <list>",
    env: "ROOMCAST_ALLOWED_ORIGINS",
    description: "comma-separated origins (https://app.example) whose pages may connect besides the page's own; * allows every site (default: only the page's own origin)",
  },
  apiKey: {
    flag: "--api-key <key>",
    env: "ROOMCAST_API_KEY",
    description: "enables the server API (publish, delete, kick/ban) for requests with Authorization: Bearer KEY (at least 16 characters; prefer the variable)",
  },
  logLevel: { flag: "--log-level <level>", env: "LOG_LEVEL", default: "info", description: "fatal, error, warn, info, debug or silent" },
} satisfies Record<string, OptionSpec>;

/** `*`, or origins as browsers send them: scheme://host[:port], no path. */
const originList = z.string().transform((s, ctx) => {
  if (s.trim() === "*") return "*" as const;
  const origins = s.split(",").map((o) => o.trim()).filter(Boolean);
  for (const origin of origins) {
    if (!URL.canParse(origin) || new URL(origin).origin !== origin) {
      ctx.addIssue({ code: "custom", message: `--allowed-origins: ${origin} is not an origin such as https://app.example or http://localhost:8080` });
      return z.NEVER;
    }
  }
  return origins;
});

const serveSchema = z.object({
  port: int("--port", 0, 65535),
  host: z.string().min(1, { error: "--host must not be empty" }),
  redis: redisUrl.optional(),
  redisSentinel: hostPorts("--redis-sentinel").optional(),
  redisSentinelName: z.string().min(1).optional(),
  redisCluster: hostPorts("--redis-cluster").optional(),
  redisPassword: z.string().optional(),
  redisWait: z.string().regex(/^\d{1,2}(:\d{1,6})?$/, { error: "--redis-wait must be REPLICAS or REPLICAS:MS, e.g. 1 or 1:500" }).optional(),
  redisPrefix: z
    .string()
    .max(64, { error: "--redis-prefix is at most 64 characters" })
    .regex(/^[^{}\s]*$/, { error: "--redis-prefix may not hold { } (a Redis Cluster's hash tags) or white space" }),
  maxTextLength: int("--max-text-length", 1, 100_000),
  rateLimit: z.coerce.number({ error: "--rate-limit must be a number" }).positive({ error: "--rate-limit must be above 0" }),
  rateBurst: int("--rate-burst", 1, 100_000),
  historySize: int("--history-size", 1, 1_000_000),
  historyTtl: duration("--history-ttl")
    .refine((ms) => ms >= 1000, { error: "--history-ttl must be at least 1s" })
    .optional(),
  historyOnJoin: int("--history-on-join", 0, 1_000_000),
  bigRoom: int("--big-room", 0, 10_000_000),
  presenceBatch: int("--presence-batch", 1, 10_000),
  maxPayload: int("--max-payload", 1024, 100 * 1024 * 1024),
  maxQueueBytes: int("--max-queue-bytes", 16 * 1024, 1024 * 1024 * 1024),
  redisLostGrace: z.coerce.number({ error: "--redis-lost-grace must be a number" }).min(0, { error: "--redis-lost-grace must be 0 or more" }),
  nodeTtl: z.coerce.number({ error: "--node-ttl must be a number" }).min(1, { error: "--node-ttl must be at least 1 second" }),
  trustProxy: yesNo("--trust-proxy"),
  maxConnectionsPerIp: int("--max-connections-per-ip", 0, 1_000_000),
  authSecret: z.string().min(32, { error: "--auth-secret must be at least 32 characters (256 bits)" }).optional(),
  authPublicKey: z.string().min(1).optional(),
  authTokenUrl: z
    .string()
    .refine((s) => s.startsWith("/") || /^https?:\/\//.test(s), { error: "--auth-token-url must be a URL (https://…) or a path on this site (/…)" })
    .optional(),
  allowedOrigins: originList.optional(),
  apiKey: z.string().min(16, { error: "--api-key must be at least 16 characters" }).optional(),
  logLevel: z.enum(["fatal", "error", "warn", "info", "debug", "trace", "silent"], {
    error: "--log-level must be one of fatal, error, warn, info, debug, trace, silent",
  }),
});

/** Exactly one Redis: one URL, Sentinel, or a Cluster (or none: memory). */
function oneRedis(config: { redis?: string | undefined; redisSentinel?: string | undefined; redisSentinelName?: string | undefined; redisCluster?: string | undefined; redisWait?: string | undefined }, ctx: z.RefinementCtx): void {
  const given = [config.redis && "--redis", config.redisSentinel && "--redis-sentinel", config.redisCluster && "--redis-cluster"].filter(Boolean);
  if (given.length > 1) ctx.addIssue({ code: "custom", message: `${given.join(" and ")}: give one Redis, not several` });
  if (config.redisSentinel && !config.redisSentinelName) ctx.addIssue({ code: "custom", message: "--redis-sentinel needs --redis-sentinel-name (the master's name in Sentinel)" });
  if (config.redisWait && given.length === 0) ctx.addIssue({ code: "custom", message: "--redis-wait needs Redis (--redis, --redis-sentinel or --redis-cluster)" });
}

const serveSchemaChecked = serveSchema.superRefine(oneRedis);

export type ServeConfig = z.infer<typeof serveSchema>;

/** The Redis a configuration names, or undefined for memory. */
export function redisTarget(config: Omit<ServeConfig, "port">): RedisTarget | undefined {
  const nodes = (list: string) =>
    list.split(",").map((hp) => {
      const at = hp.trim().lastIndexOf(":");
      return { host: hp.trim().slice(0, at).replace(/^\[|\]$/g, ""), port: Number(hp.trim().slice(at + 1)) };
    });
  if (config.redis) return { kind: "single", url: config.redis };
  if (config.redisSentinel) return { kind: "sentinel", sentinels: nodes(config.redisSentinel), name: config.redisSentinelName!, password: config.redisPassword };
  if (config.redisCluster) return { kind: "cluster", nodes: nodes(config.redisCluster), password: config.redisPassword };
  return undefined;
}

/** --redis-wait as replicas and a timeout (ms). */
export function redisWait(config: Omit<ServeConfig, "port">): { replicas: number; timeoutMs: number } | undefined {
  if (!config.redisWait) return undefined;
  const [replicas, ms] = config.redisWait.split(":");
  return { replicas: Number(replicas), timeoutMs: ms === undefined ? 500 : Number(ms) };
}

/** A configuration mistake, told to the user in one line (exit code 1). */
export class ConfigError extends Error {
  override name = "ConfigError";
}

type Specs = Record<string, OptionSpec>;

/**
 * Merges flags (from commander, undefined when not given), environment and defaults, then
 * validates. Throws ConfigError with one readable line.
 */
export function resolveOptions<S extends Specs, T extends z.ZodType>(
  specs: S,
  schema: T,
  flags: Partial<Record<keyof S, unknown>>,
  env: NodeJS.ProcessEnv = process.env,
): z.infer<T> {
  const raw: Record<string, unknown> = {};
  for (const [key, spec] of Object.entries(specs)) {
    const fromEnv = env[spec.env];
    raw[key] = flags[key] ?? (fromEnv === undefined || fromEnv === "" ? undefined : fromEnv) ?? spec.default;
  }
  const parsed = schema.safeParse(raw);
  if (!parsed.success) {
    const issue = parsed.error.issues[0];
    throw new ConfigError(issue?.message ?? "invalid options");
  }
  return parsed.data;
}

export function resolveServeConfig(flags: Partial<Record<keyof typeof serveOptions, unknown>>, env = process.env): ServeConfig {
  return resolveOptions(serveOptions, serveSchemaChecked, flags, env);
}

// ---- cluster ---------------------------------------------------------------------------------

const { port: _port, ...workerServeOptions } = serveOptions;

export const clusterOptions = {
  workers: { flag: "--workers <count>", env: "WORKERS", description: "worker processes (default: the number of CPU cores)" },
  portBase: { flag: "--port-base <port>", env: "PORT_BASE", default: "6001", description: "worker i listens on port-base + i" },
  ...workerServeOptions,
  redis: {
    flag: "--redis <url>",
    env: "REDIS_URL",
    description: "Redis URL (redis://host:port); the workers share rooms through Redis: this, --redis-sentinel or --redis-cluster is required",
  },
} satisfies Record<string, OptionSpec>;

const clusterSchema = serveSchema
  .omit({ port: true })
  .extend({
    workers: int("--workers", 1, 1024).optional(),
    portBase: int("--port-base", 1, 65535),
  })
  .superRefine(oneRedis);

export type ClusterConfig = z.infer<typeof clusterSchema> & { workers: number };

export function resolveClusterConfig(
  flags: Partial<Record<keyof typeof clusterOptions, unknown>>,
  defaultWorkers: number,
  env = process.env,
): ClusterConfig {
  const has = (flag: keyof typeof clusterOptions, variable: string) => flags[flag] !== undefined || !!env[variable];
  if (!has("redis", "REDIS_URL") && !has("redisSentinel", "REDIS_SENTINELS") && !has("redisCluster", "REDIS_CLUSTER")) {
    throw new ConfigError("cluster needs Redis to share rooms between workers: pass --redis URL (or --redis-sentinel, --redis-cluster) or set REDIS_URL");
  }
  const config = resolveOptions(clusterOptions, clusterSchema, flags, env);
  const workers = config.workers ?? defaultWorkers;
  if (config.portBase + workers - 1 > 65535) throw new ConfigError(`--port-base ${config.portBase} leaves no port for worker ${workers - 1}`);
  return { ...config, workers };
}

/** How the primary hands a worker its configuration (an environment variable of the fork). */
export const WORKER_CONFIG_VARIABLE = "ROOMCAST_WORKER_CONFIG";

export function workerConfigFromEnv(env = process.env): { index: number; config: ServeConfig } {
  const raw = env[WORKER_CONFIG_VARIABLE];
  if (!raw) throw new ConfigError(`a worker is started by \`roomcast cluster\` (${WORKER_CONFIG_VARIABLE} is not set)`);
  const { index, config } = JSON.parse(raw) as { index: number; config: unknown };
  return { index, config: serveSchemaChecked.parse(serialisable(config)) };
}

/** Options whose value is a duration (parsed to milliseconds). */
const DURATIONS = new Set<string>(["historyTtl"]);

/** The config as strings, as flags would give it (transforms such as yes/no run again on parse). */
function serialisable(config: unknown): unknown {
  const out: Record<string, unknown> = {};
  for (const [key, value] of Object.entries(config as Record<string, unknown>)) {
    // durations were parsed to milliseconds
    out[key] =
      typeof value === "boolean" ? (value ? "yes" : "no")
      : DURATIONS.has(key) && typeof value === "number" ? `${value}ms`
      : Array.isArray(value) ? value.join(",")
      : value;
  }
  return out;
}
