/**
 * Which web pages may open a connection. A browser sends `Origin` with every WebSocket upgrade
 * and every long-polling request, and any site a user visits could otherwise connect to roomcast
 * as that user (Socket.IO's `cors` option alone does not stop a WebSocket from another site:
 * verified with socket.io 4.8.4). Checked in Engine.IO's `allowRequest`, before any handshake:
 * the page's own origin, the listed ones, and requests without `Origin` (programs, not pages) pass.
 */
import type { IncomingMessage } from "node:http";
import type { TLSSocket } from "node:tls";

export interface OriginPolicy {
  /** `*`, or the origins allowed besides the page's own. */
  allowedOrigins?: "*" | string[] | undefined;
  /** Believe X-Forwarded-Host and X-Forwarded-Proto (set by nginx) for the page's own origin. */
  trustProxy: boolean;
}

/** The origin this request was addressed to, as the browser saw it: scheme://host[:port]. */
export function ownOrigin(req: IncomingMessage, trustProxy: boolean): string | undefined {
  const first = (value: string | string[] | undefined) => (Array.isArray(value) ? value[0] : value)?.split(",")[0]?.trim();
  const host = (trustProxy ? first(req.headers["x-forwarded-host"]) : undefined) ?? req.headers.host;
  if (!host) return undefined;
  const proto = (trustProxy ? first(req.headers["x-forwarded-proto"]) : undefined) ?? ((req.socket as TLSSocket).encrypted ? "https" : "http");
  return `${proto}://${host}`.toLowerCase();
}

export function originAllowed(req: IncomingMessage, policy: OriginPolicy): boolean {
  const origin = req.headers.origin;
  if (origin === undefined) return true;
  if (policy.allowedOrigins === "*") return true;
  if (origin.toLowerCase() === ownOrigin(req, policy.trustProxy)) return true;
  return policy.allowedOrigins?.includes(origin) ?? false;
}
