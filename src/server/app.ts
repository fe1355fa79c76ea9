/**
 * One serving roomcast process: HTTP + Socket.IO on one port, the chat, and its engine (memory, or
 * Redis to be one node of a larger chat). Used by `roomcast serve` and by each cluster worker.
 */
import { createServer, type IncomingMessage, type RequestListener, type ServerResponse } from "node:http";
import type { AddressInfo } from "node:net";
import type { Logger } from "pino";
import { Server } from "socket.io";
import { Chat } from "../chat/chat.js";
import { redisTarget, redisWait, type ServeConfig } from "../config.js";
import type { Engine } from "../engine/engine.js";
import { MemoryEngine } from "../engine/memory/memory-engine.js";
import { RedisEngine } from "../engine/redis/redis-engine.js";
import { createHttpHandler } from "./http.js";
import { createMetrics, type Metrics } from "./metrics.js";
import { LostRedisGuard } from "./lost-redis.js";
import { QueueGuard } from "./queue.js";
import { TokenVerifier } from "./identity.js";
import { originAllowed } from "./origins.js";
import { socketSink, wireSockets } from "./socket.js";

/** A start-up failure told to the user in one line (port in use, Redis unreachable). */
export class StartError extends Error {
  override name = "StartError";
}

export interface RunningServer {
  readonly port: number;
  readonly engine: Engine;
  /** Graceful stop: no new connections, quits announced, presence removed, engine closed. */
  close(): Promise<void>;
}

export function createEngine(config: ServeConfig, logger: Logger, metrics: Metrics): Engine {
  const target = redisTarget(config);
  return target
    ? new RedisEngine({
        target,
        prefix: config.redisPrefix,
        historySize: config.historySize,
        historyTtlMs: config.historyTtl,
        nodeTtlMs: config.nodeTtl * 1000,
        wait: redisWait(config),
        onWaitShort: () => metrics.redisWaitShort.inc(),
        logger,
      })
    : new MemoryEngine({ historySize: config.historySize, historyTtlMs: config.historyTtl });
}

/**
 * Engine.IO answers a long-polling POST larger than maxHttpBufferSize with HTTP 413 but keeps the
 * session open, while over WebSocket an oversized packet closes the connection. SPEC.md says an
 * oversized packet closes that one connection on every transport: close the session here.
 */
function closeOnOversizedPost(io: Server): void {
  const clients = (io.engine as unknown as { clients: Record<string, { close(discard?: boolean): void } | undefined> }).clients;
  io.engine.use((req: IncomingMessage, res: ServerResponse, next: () => void) => {
    if (req.method === "POST") {
      res.once("finish", () => {
        if (res.statusCode !== 413) return;
        const sid = new URL(req.url ?? "/", "http://localhost").searchParams.get("sid");
        if (sid) clients[sid]?.close(true);
      });
    }
    next();
  });
}

export interface ServerHooks {
  /** Told the number of open connections whenever it changes. */
  onConnectionCount?: (count: number) => void;
}

export async function startServer(config: ServeConfig, logger: Logger, hooks: ServerHooks = {}): Promise<RunningServer> {
  const metrics = createMetrics();
  const engine = createEngine(config, logger, metrics);
  try {
    await engine.start();
  } catch (err) {
    throw new StartError(err instanceof Error ? err.message : String(err));
  }
  let verifier: TokenVerifier | undefined;
  try {
    verifier = TokenVerifier.from(config);
  } catch (err) {
    await engine.close();
    throw new StartError(err instanceof Error ? err.message : String(err));
  }
  if (config.allowedOrigins === "*") logger.warn("--allowed-origins *: pages on every site may connect to this chat");
  // The page and API handler must be the server's request listener before Socket.IO attaches:
  // Socket.IO then answers /socket.io itself and passes every other request on to it. (A listener
  // added after would answer Socket.IO's long-polling requests a second time.)
  let handleHttp: RequestListener = (_req, res) => res.writeHead(503).end();
  const httpServer = createServer((req, res) => handleHttp(req, res));
  const io = new Server(httpServer, {
    // A packet larger than this closes that one connection (Socket.IO's default is 1 MB).
    maxHttpBufferSize: config.maxPayload,
    serveClient: true,
    // Before any handshake, polling and WebSocket alike: 403 for a page of a site not allowed.
    allowRequest: (req, callback) => {
      const ok = originAllowed(req, { allowedOrigins: config.allowedOrigins, trustProxy: config.trustProxy });
      if (!ok) metrics.refusals.inc({ code: "FORBIDDEN" });
      callback(ok ? null : "this site may not connect to the chat", ok);
    },
  });
  closeOnOversizedPost(io);
  const guard = new QueueGuard(config.maxQueueBytes, metrics, logger);
  const chat = new Chat(engine, socketSink(io, metrics, guard), {
    historyOnJoin: config.historyOnJoin,
    bigRoom: config.bigRoom,
    presenceBatchMs: config.presenceBatch,
  });
  const leavesDone = wireSockets({ io, guard, verifier, chat, engine, config, metrics, logger, onConnectionCount: hooks.onConnectionCount });
  handleHttp = createHttpHandler({ engine, chat, config, metrics, logger });

  metrics.redisUp.set(engine.health().ok ? 1 : 0);
  engine.onHealthChange((health) => metrics.redisUp.set(health.ok ? 1 : 0));
  const lostRedis = engine.kind === "redis" && config.redisLostGrace > 0 ? new LostRedisGuard(io, httpServer, engine, config.redisLostGrace * 1000, logger) : undefined;
  lostRedis?.install();

  try {
    await new Promise<void>((resolve, reject) => {
      httpServer.once("error", reject);
      httpServer.listen(config.port, config.host, () => {
        httpServer.off("error", reject);
        resolve();
      });
    });
  } catch (err) {
    await engine.close();
    const code = (err as NodeJS.ErrnoException).code;
    const where = `${config.host}:${config.port}`;
    throw new StartError(
      code === "EADDRINUSE"
        ? `port ${config.port} is already in use on ${config.host}`
        : code === "EADDRNOTAVAIL"
          ? `cannot listen on ${where}: no such local address`
          : code === "EACCES"
            ? `not allowed to listen on ${where}`
            : `cannot listen on ${where}: ${(err as Error).message}`,
    );
  }
  const port = (httpServer.address() as AddressInfo).port;
  logger.info({ port, host: config.host, engine: engine.kind, node: engine.nodeId }, "listening");

  let closing: Promise<void> | undefined;
  return {
    port,
    engine,
    close() {
      closing ??= (async () => {
        lostRedis?.stop();
        // io.close() disconnects every socket (each disconnect starts its quit) and closes HTTP.
        await new Promise<void>((resolve) => io.close(() => resolve()));
        await leavesDone();
        await engine.close();
      })();
      return closing;
    },
  };
}
