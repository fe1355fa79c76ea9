/**
 * A process that cannot reach Redis serves nobody well: its members' messages are refused
 * (UNAVAILABLE) while processes that still reach Redis could serve them. After
 * `--redis-lost-grace` seconds without Redis, this process steps aside: new handshakes (long-polling
 * and WebSocket alike) get HTTP 503 — the generated nginx configuration retries those on another
 * worker — and its connections' transports are closed (not a Socket.IO disconnect, after which
 * clients would not reconnect), so their clients come back through nginx to a process that can
 * serve them and recover with `since`. When Redis is back, it serves again.
 */
import type { IncomingMessage, Server as HttpServer, ServerResponse } from "node:http";
import type { Duplex } from "node:stream";
import type { Logger } from "pino";
import type { Server } from "socket.io";
import type { Engine } from "../engine/engine.js";

type RequestListener = (req: IncomingMessage, res: ServerResponse) => void;
type UpgradeListener = (req: IncomingMessage, socket: Duplex, head: Buffer) => void;

/** A Socket.IO request that would open a new session (no `sid` yet). */
function isHandshake(req: IncomingMessage, path: string): boolean {
  const url = req.url ?? "/";
  if (!url.startsWith(path)) return false;
  return !new URL(url, "http://localhost").searchParams.has("sid");
}

export class LostRedisGuard {
  private stepped = false;
  private timer: NodeJS.Timeout | undefined;

  constructor(
    private readonly io: Server,
    private readonly httpServer: HttpServer,
    private readonly engine: Engine,
    private readonly graceMs: number,
    private readonly logger: Logger,
  ) {}

  /** Whether the process has stepped aside (a metric, and for tests). */
  get steppedAside(): boolean {
    return this.stepped;
  }

  /**
   * Puts a gate in front of Engine.IO's own request and upgrade listeners (Engine.IO installs them
   * when Socket.IO attaches; they stay the only way in, behind the gate).
   */
  install(): void {
    const path = "/socket.io/";
    const requests = this.httpServer.listeners("request") as RequestListener[];
    const upgrades = this.httpServer.listeners("upgrade") as UpgradeListener[];
    this.httpServer.removeAllListeners("request");
    this.httpServer.removeAllListeners("upgrade");
    this.httpServer.on("request", (req: IncomingMessage, res: ServerResponse) => {
      if (this.stepped && isHandshake(req, path)) {
        res.writeHead(503, { "content-type": "application/json", "retry-after": "1" }).end('{"error":{"code":"UNAVAILABLE","message":"this process cannot reach Redis: try another"}}');
        return;
      }
      for (const listener of requests) listener(req, res);
    });
    this.httpServer.on("upgrade", (req: IncomingMessage, socket: Duplex, head: Buffer) => {
      if (this.stepped && isHandshake(req, path)) {
        socket.end("HTTP/1.1 503 Service Unavailable\r\nConnection: close\r\nContent-Length: 0\r\nRetry-After: 1\r\n\r\n");
        return;
      }
      for (const listener of upgrades) listener(req, socket, head);
    });
    this.engine.onHealthChange((health) => (health.ok ? this.back() : this.lost()));
  }

  private lost(): void {
    if (this.timer || this.stepped) return;
    this.timer = setTimeout(() => {
      this.timer = undefined;
      this.stepped = true;
      const sockets = [...this.io.of("/").sockets.values()];
      this.logger.warn({ graceS: this.graceMs / 1000, connections: sockets.length }, "redis lost for the grace period: refusing new handshakes (503), sending connections elsewhere");
      for (const socket of sockets) socket.conn.close();
    }, this.graceMs);
  }

  private back(): void {
    clearTimeout(this.timer);
    this.timer = undefined;
    if (!this.stepped) return;
    this.stepped = false;
    this.logger.info("redis back: serving again");
  }

  stop(): void {
    clearTimeout(this.timer);
  }
}
