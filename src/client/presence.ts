/**
 * Who is in the room, as a client sees it: the `presence` snapshot it gets on joining, then every
 * change pushed after it — `join` and `broadcast_quit` notices and `presence_diff`s all carry the
 * room's presence version, and a change is applied only when its version is newer than what the
 * client has. Tells who really arrived (a first connection, not a reconnect) and who really left
 * (a last connection), so a page shows one line per person, not one per tab or reconnect.
 */
import { byUsername, userKey, type PresenceRef, type PresenceUser } from "../protocol.js";

export interface PresenceChange {
  /** People who arrived: their first connection, not a reconnect (`rejoin`). */
  arrived: PresenceRef[];
  /** People who left: their last connection went. */
  left: PresenceRef[];
}

export class PresenceState {
  private users = new Map<string, PresenceUser>();
  private version = 0;

  /** The list, sorted by name. */
  get list(): PresenceUser[] {
    return [...this.users.values()].sort(byUsername);
  }

  /** The join's snapshot: always taken (a new connection's view starts here). */
  reset(users: PresenceUser[], version: number | undefined): void {
    this.users = new Map(users.map((u) => [userKey(u), { ...u }]));
    this.version = version ?? 0;
  }

  /** A versioned change; returns what it meant, or undefined when it was already in what we have. */
  apply(version: number | undefined, joined: PresenceRef[], left: PresenceRef[]): PresenceChange | undefined {
    if (version !== undefined) {
      if (version <= this.version) return undefined;
      this.version = version;
    }
    const change: PresenceChange = { arrived: [], left: [] };
    for (const ref of joined) {
      const key = userKey(ref);
      const known = this.users.get(key);
      if (known) {
        known.connections++;
        known.username = ref.username;
      } else {
        this.users.set(key, ref.user === undefined ? { username: ref.username, connections: 1 } : { username: ref.username, user: ref.user, connections: 1 });
        if (!ref.rejoin) change.arrived.push(strip(ref));
      }
    }
    for (const ref of left) {
      const key = userKey(ref);
      const known = this.users.get(key);
      if (!known) continue;
      if (--known.connections <= 0) {
        this.users.delete(key);
        change.left.push(strip(ref));
      }
    }
    return change;
  }
}

function strip(ref: PresenceRef): PresenceRef {
  return ref.user === undefined ? { username: ref.username } : { username: ref.username, user: ref.user };
}
