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
import { createApi } from "./api.js";
import type { Metrics } from "./metrics.js";

/** The built web client (`npm run build` bundles web/ into dist/web/). */
const WEB_DIR = fileURLToPath(new URL("../../web/", import.meta.url));

interface Asset {
  body: Buffer;
  type: string;
  cache: string;
  headers?: Record<string, string>;
}

/**
 * The page and its assets, read once at start. Assets are also served under a name with their
 * content hash, cached for a year (`immutable`); the page names those, and is itself revalidated
 * on every load, so a new version reaches browsers at once and an unchanged one costs nothing.
 */
function loadAssets(config: ServeConfig): Map<string, Asset> {
  const assets = new Map<string, Asset>();
  // What the page needs to know of the server's settings, as attributes of <html>.
  const tokens = config.authSecret !== undefined || config.authPublicKey !== undefined;
  const settings = [
    `data-max-text-length="${config.maxTextLength}"`,
    ...(tokens ? [`data-auth="token"`] : []),
    // the read API needs the key: the page does not list active rooms (and asks for nothing it would be refused)
    ...(tokens || config.apiKey !== undefined ? [`data-rooms="private"`] : []),
    ...(tokens && config.authTokenUrl !== undefined ? [`data-auth-token-url="${escapeAttribute(config.authTokenUrl)}"`] : []),
  ].join(" ");
  let page = readFileSync(WEB_DIR + "index.html", "utf8").replace(/data-max-text-length="\d+"/, settings);
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
  // The SDK as one ES module, for pages of other sites: a module script from another origin
  // needs CORS, and the file holds nothing private.
  assets.set("/roomcast-client.js", {
    body: readFileSync(WEB_DIR + "roomcast-client.js"),
    type: "text/javascript; charset=utf-8",
    cache: "no-cache",
    headers: { "access-control-allow-origin": "*" },
  });
  return assets;
}

/**
 * No inline script, no foreign origin: user text that slipped into markup still could not run. The
 * page may fetch its token from the application's --auth-token-url.
 */
function contentSecurityPolicy(config: ServeConfig): string {
  const tokenOrigin = config.authTokenUrl !== undefined && /^https?:\/\//.test(config.authTokenUrl) ? ` ${new URL(config.authTokenUrl).origin}` : "";
  return (
    `default-src 'self'; script-src 'self'; style-src 'self'; img-src 'self' data:; connect-src 'self' ws: wss:${tokenOrigin}; ` +
    "object-src 'none'; base-uri 'none'; frame-ancestors 'none'; form-action 'self'"
  );
}

function escapeAttribute(value: string): string {
  return value.replace(/&/g, "&amp;").replace(/"/g, "&quot;").replace(/</g, "&lt;");
}

export interface HttpDeps {
  engine: Engine;
  chat: Chat;
  config: ServeConfig;
  metrics: Metrics;
  logger: Logger;
}

export function createHttpHandler({ engine, chat, config, metrics, logger }: HttpDeps) {
  const files = loadAssets(config);
  const csp = contentSecurityPolicy(config);
  const api = createApi({ engine, chat, config });

  const send = (req: IncomingMessage, res: ServerResponse, status: number, body: unknown, headers: Record<string, string> = {}) => {
    // A body refused before it was read whole: the rest must not be taken for the next request.
    if (!req.complete) headers["connection"] = "close";
    res.writeHead(status, { "content-type": "application/json; charset=utf-8", "cache-control": "no-store", ...headers });
    res.end(JSON.stringify(body));
  };
  const refuse = (req: IncomingMessage, res: ServerResponse, status: number, code: string, message: string, headers?: Record<string, string>) =>
    send(req, res, status, { error: { code, message } }, headers);

  async function route(req: IncomingMessage, res: ServerResponse): Promise<void> {
    // A request target such as `//` or `//host:99999` is not a path: new URL() throws on it.
    let url: URL;
    try {
      url = new URL(req.url ?? "/", "http://localhost");
    } catch {
      return refuse(req, res, 400, "BAD_REQUEST", "the request target is not a path");
    }
    const path = url.pathname;

    if (path.startsWith("/api/")) {
      const answer = await api(req, url);
      if (answer) return send(req, res, answer.status, answer.body, answer.headers);
      return refuse(req, res, 404, "NOT_FOUND", "no such endpoint");
    }

    if (req.method !== "GET" && req.method !== "HEAD") return refuse(req, res, 405, "METHOD_NOT_ALLOWED", "only GET is served here", { allow: "GET, HEAD" });

    const file = files.get(path);
    if (file) {
      res.writeHead(200, {
        "content-type": file.type,
        "cache-control": file.cache,
        "content-security-policy": csp,
        "x-content-type-options": "nosniff",
        "referrer-policy": "no-referrer",
        ...file.headers,
      });
      res.end(file.body);
      return;
    }

    if (path === "/healthz") {
      const health = engine.health();
      return health.ok ? send(req, res, 200, { status: "ok" }) : send(req, res, 503, { status: "unavailable", reason: health.reason });
    }

    if (path === "/metrics") {
      metrics.rooms.set(chat.localRoomCount);
      metrics.redisUp.set(engine.health().ok ? 1 : 0);
      res.writeHead(200, { "content-type": metrics.registry.contentType });
      res.end(await metrics.registry.metrics());
      return;
    }

    return refuse(req, res, 404, "NOT_FOUND", "no such page");
  }

  return (req: IncomingMessage, res: ServerResponse) => {
    route(req, res).catch((err: unknown) => {
      if (res.headersSent) return void res.destroy();
      if (err instanceof EngineUnavailableError) return refuse(req, res, 503, "UNAVAILABLE", "Redis is unreachable");
      logger.error({ err: err instanceof Error ? err.message : String(err), path: (req.url ?? "/").split("?")[0]!.slice(0, 200) }, "HTTP request failed");
      refuse(req, res, 500, "INTERNAL", "internal error");
    });
  };
}
