/**
 * The HTTP side of a roomcast process: the web client, health, metrics and the JSON API of
 * SPEC.md. Socket.IO answers its own path (/socket.io) before this handler sees a request.
 */
import { createHash } from "node:crypto";
import { readFileSync } from "node:fs";
import type { IncomingMessage, ServerResponse } from "node:http";
import { fileURLToPath } from "node:url";
import type { Logger } from "pino";
import type { Chat } from "../chat/chat.js";
import type { ServeConfig } from "../config.js";
import { EngineUnavailableError, type Engine } from "../engine/engine.js";
import { canonicalId, roomId } from "../protocol.js";
import type { Metrics } from "./metrics.js";

/** The built web client (`npm run build` bundles web/ into dist/web/). */
const WEB_DIR = fileURLToPath(new URL("../../web/", import.meta.url));

interface Asset {
  body: Buffer;
  type: string;
  cache: string;
}

/**
 * The page and its assets, read once at start. Assets are also served under a name with their
 * content hash, cached for a year (`immutable`); the page names those, and is itself revalidated
 * on every load, so a new version reaches browsers at once and an unchanged one costs nothing.
 */
function loadAssets(maxTextLength: number): Map<string, Asset> {
  const assets = new Map<string, Asset>();
  let page = readFileSync(WEB_DIR + "index.html", "utf8").replace(
    /data-max-text-length="\d+"/,
    `data-max-text-length="${maxTextLength}"`,
  );
  for (const [file, type] of [
    ["app.js", "text/javascript; charset=utf-8"],
    ["style.css", "text/css; charset=utf-8"],
  ] as const) {
    const body = readFileSync(WEB_DIR + file);
    const hash = createHash("sha256").update(body).digest("hex").slice(0, 12);
    const [name, ext] = file.split(".") as [string, string];
    const hashed = `/assets/${name}.${hash}.${ext}`;
    assets.set(`/${file}`, { body, type, cache: "no-cache" });
    assets.set(hashed, { body, type, cache: "public, max-age=31536000, immutable" });
    page = page.replace(`"/${file}"`, `"${hashed}"`);
  }
  assets.set("/", { body: Buffer.from(page), type: "text/html; charset=utf-8", cache: "no-cache" });
  return assets;
}

/** No inline script, no foreign origin: user text that slipped into markup still could not run. */
const CSP =
  "default-src 'self'; script-src 'self'; style-src 'self'; img-src 'self' data:; connect-src 'self' ws: wss:; " +
  "object-src 'none'; base-uri 'none'; frame-ancestors 'none'; form-action 'self'";

export interface HttpDeps {
  engine: Engine;
  chat: Chat;
  config: ServeConfig;
  metrics: Metrics;
  logger: Logger;
}

export function createHttpHandler({ engine, chat, config, metrics, logger }: HttpDeps) {
  const files = loadAssets(config.maxTextLength);

  const json = (res: ServerResponse, status: number, body: unknown) => {
    res.writeHead(status, { "content-type": "application/json; charset=utf-8", "cache-control": "no-store" });
    res.end(JSON.stringify(body));
  };
  const refuse = (res: ServerResponse, status: number, code: string, message: string) =>
    json(res, status, { error: { code, message } });

  async function route(req: IncomingMessage, res: ServerResponse): Promise<void> {
    const url = new URL(req.url ?? "/", "http://localhost");
    const path = url.pathname;
    if (req.method !== "GET" && req.method !== "HEAD") {
      res.setHeader("allow", "GET, HEAD");
      return refuse(res, 405, "METHOD_NOT_ALLOWED", "only GET is served here");
    }

    const file = files.get(path);
    if (file) {
      res.writeHead(200, {
        "content-type": file.type,
        "cache-control": file.cache,
        "content-security-policy": CSP,
        "x-content-type-options": "nosniff",
        "referrer-policy": "no-referrer",
      });
      res.end(file.body);
      return;
    }

    if (path === "/healthz") {
      const health = engine.health();
      return health.ok ? json(res, 200, { status: "ok" }) : json(res, 503, { status: "unavailable", reason: health.reason });
    }

    if (path === "/metrics") {
      metrics.rooms.set(chat.localRoomCount);
      metrics.redisUp.set(engine.health().ok ? 1 : 0);
      res.writeHead(200, { "content-type": metrics.registry.contentType });
      res.end(await metrics.registry.metrics());
      return;
    }

    if (path === "/api/rooms") return json(res, 200, { rooms: await engine.rooms() });

    if (path === "/api/stats") return json(res, 200, await engine.stats());

    const roomPath = /^\/api\/rooms\/([^/]+)\/(history|presence)$/.exec(path);
    if (roomPath) {
      const room = roomId(decodeURIComponent(roomPath[1] ?? ""));
      if (room === undefined) return refuse(res, 400, "BAD_ROOM", "a room id is 1 to 64 letters or digits of any script, or _ - . :");
      if (roomPath[2] === "presence") return json(res, 200, await engine.presenceSnapshot(room));
      const rawLimit = url.searchParams.get("limit");
      const limit = rawLimit === null ? config.historyOnJoin : Number(rawLimit);
      if (!Number.isInteger(limit) || limit < 1 || limit > config.historySize) {
        return refuse(res, 400, "BAD_LIMIT", `limit must be a whole number from 1 to ${config.historySize}`);
      }
      const rawBefore = url.searchParams.get("before");
      const before = rawBefore === null ? undefined : canonicalId(rawBefore);
      if (rawBefore !== null && before === undefined) return refuse(res, 400, "BAD_PAYLOAD", "before must be a message id such as 1700000000000-0");
      const { messages, truncated } = await engine.history(room, { limit, before });
      return json(res, 200, { messages, more: truncated });
    }

    return refuse(res, 404, "NOT_FOUND", "no such page");
  }

  return (req: IncomingMessage, res: ServerResponse) => {
    route(req, res).catch((err: unknown) => {
      if (err instanceof URIError) return refuse(res, 400, "BAD_ROOM", "the room id is not valid percent-encoding");
      if (err instanceof EngineUnavailableError) return refuse(res, 503, "UNAVAILABLE", "Redis is unreachable");
      logger.error({ err, url: req.url }, "HTTP request failed");
      if (!res.headersSent) refuse(res, 500, "INTERNAL", "internal error");
      else res.destroy();
    });
  };
}
