/**
 * What a fault scenario on the lab does first and last: members in one room from every client
 * host (knowing which app host each host's members were sent to), and the room's history through
 * the edge, the truth every member's deliveries are judged against.
 */
import type { OpenRequest } from "./client-protocol.js";
import type { ClientHost } from "./clients.js";
import type { Lab } from "./lab.js";

/** One client host's members: all on one app host, since nginx is sticky by client address. */
export interface Side {
  readonly host: string;
  readonly runner: ClientHost;
  readonly members: string[];
  /** The app host nginx sent them to. */
  readonly app: string;
}

export interface SidesOptions {
  room: string;
  /** Members per client host, named `<host>-<i>`. */
  perHost: number;
  /** @default every client host of the lab */
  hosts?: string[];
  /** More of OpenRequest (reconnect, trackPresence, spreadMs, timeoutMs). */
  open?: Omit<OpenRequest, "op" | "url" | "room" | "names">;
}

/**
 * Opens the members of each client host through the edge, one host after another, and learns
 * their app host from the app hosts' connection counts; so nothing else may connect meanwhile.
 */
export async function openSides(lab: Lab, options: SidesOptions): Promise<Side[]> {
  const sides: Side[] = [];
  for (const host of options.hosts ?? lab.clientHosts) {
    const before = await Promise.all(lab.appHosts.map((a) => lab.connectionsOn(a)));
    const runner = lab.clients(host);
    const members = Array.from({ length: options.perHost }, (_, i) => `${host}-${i}`);
    await runner.open({ ...options.open, url: lab.edgeUrl, room: options.room, names: members });
    const now = await Promise.all(lab.appHosts.map((a) => lab.connectionsOn(a)));
    const app = lab.appHosts.find((_, i) => now[i]! - before[i]! === options.perHost);
    if (!app) throw new Error(`${host}'s members are not all on one app host: ${lab.appHosts.map((a, i) => `${a} +${now[i]! - before[i]!}`)}`);
    sides.push({ host, runner, members, app });
  }
  return sides;
}

/** The ids of a room's last `limit` messages (at most --history-size), oldest first, read through the edge. */
export async function roomHistory(lab: Lab, room: string, limit = 1000): Promise<string[]> {
  const res = await lab.get(`${lab.edgeUrl}/api/rooms/${encodeURIComponent(room)}/history?limit=${limit}`);
  if (res.status !== 200) throw new Error(`history of ${room}: ${res.status} ${res.body.slice(0, 200)}`);
  return (JSON.parse(res.body) as { messages: { id: string }[] }).messages.map((m) => m.id);
}
