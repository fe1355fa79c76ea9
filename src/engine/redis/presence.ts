/**
 * Presence in Redis: one hash per room, a field "<node>/<member>" per connection whose value is
 * the entry as members see it (`{"username":…}` or `{"username":…,"user":…}`), and a version that
 * grows with every change. Joins and quits are announced in the same script that changes the hash,
 * with the new version, so a client orders them against the snapshot it got on joining.
 *
 * This process keeps its own entries too: to put them back when Redis comes back empty, and to
 * retry removals that failed while Redis was unreachable. Each node lists the rooms it has members
 * in (node-rooms), so that when it dies, whoever notices (nodes.ts) can take exactly its entries
 * out of each room and announce it, once.
 */
import type { Logger } from "pino";
import type { PresenceRef, PresenceUser } from "../../protocol.js";
import { countUsers, presenceRef, type PresenceChanges, type PresenceEntry, type PresenceSnapshot, type RoomSummary } from "../engine.js";
import type { RedisKeys } from "./keys.js";
import type { Topology } from "./topology.js";

type Call = <T>(fn: () => Promise<T>) => Promise<T>;

export class RedisPresence {
  /** This process's entries: room → member → entry JSON. */
  private readonly local = new Map<string, Map<string, string>>();
  /**
   * Fields whose removal failed (Redis unreachable), per room: removed when the connection is
   * back, in case Redis kept its data (a network cut, a restart from disk). This process's
   * heartbeat keeps its entries alive, so they would never be reaped by themselves.
   */
  private readonly pendingRemovals = new Map<string, Set<string>>();

  constructor(
    private readonly topology: Topology,
    private readonly keys: RedisKeys,
    private readonly nodeId: string,
    private readonly call: Call,
    private readonly logger: Logger,
  ) {}

  private get cmd() {
    return this.topology.cmd;
  }

  /** Removals that failed while the connection stayed up are tried again at each heartbeat. */
  async retryRemovals(): Promise<void> {
    if (this.pendingRemovals.size === 0) return;
    const removals = [...this.pendingRemovals];
    this.pendingRemovals.clear();
    await Promise.all(
      removals.flatMap(([room, fields]) =>
        [...fields].map((field) => this.cmd.rcPresenceRemove(...this.roomKeys(room), field, "", "", this.topology.publish).then(() => undefined, () => this.removeLater(room, [field]))),
      ),
    );
  }

  async add(room: string, entry: PresenceEntry, announce: { ts: number; rejoin: boolean } | undefined): Promise<number> {
    const value = JSON.stringify(presenceRef(entry));
    const [head, tail] = announce
      ? [`{"event":"join","data":${value.slice(0, -1)},"ts":${announce.ts}${announce.rejoin ? ',"rejoin":true' : ""},"version":`, "}}"]
      : ["", ""];
    this.registerRoom(room);
    this.remember(room, entry.member, value);
    try {
      return await this.call(() => this.cmd.rcPresenceAdd(...this.roomKeys(room), this.field(entry.member), value, head, tail, this.topology.publish));
    } catch (err) {
      this.forget(room, entry.member);
      // a timeout may have been applied after all: make sure the entry does not stay behind
      this.removeLater(room, [this.field(entry.member)]);
      throw err;
    }
  }

  async remove(room: string, member: string, announce: { ts: number } | undefined): Promise<void> {
    const value = this.local.get(room)?.get(member);
    this.forget(room, member);
    if (value === undefined) return;
    const field = this.field(member);
    const [head, tail] = announce ? [`{"event":"broadcast_quit","data":${value.slice(0, -1)},"ts":${announce.ts},"version":`, "}}"] : ["", ""];
    await this.call(() => this.cmd.rcPresenceRemove(...this.roomKeys(room), field, head, tail, this.topology.publish)).catch(() =>
      this.removeLater(room, [field]),
    );
  }

  async change(room: string, changes: PresenceChanges): Promise<void> {
    const entries = this.local.get(room);
    const left: string[] = [];
    const leftFields: string[] = [];
    for (const member of changes.left) {
      const value = entries?.get(member);
      if (value === undefined) continue;
      left.push(value);
      leftFields.push(this.field(member));
      this.forget(room, member);
    }
    const joined: string[] = [];
    const joinedArgs: string[] = [];
    for (const entry of changes.joined) {
      const value = JSON.stringify(presenceRef(entry));
      joinedArgs.push(this.field(entry.member), value);
      joined.push(entry.rejoin ? `${value.slice(0, -1)},"rejoin":true}` : value);
    }
    if (changes.joined.length > 0) this.registerRoom(room);
    const head = `{"event":"presence_diff","data":{"joined":[${joined.join(",")}],"left":[${left.join(",")}],"ts":${changes.ts},"version":`;
    await this.call(() =>
      this.cmd.rcPresenceChange(...this.roomKeys(room), head, "}}", this.topology.publish, changes.joined.length, ...joinedArgs, ...leftFields),
    ).catch((err: unknown) => {
      this.removeLater(room, leftFields);
      throw err;
    });
    // Only now: restore() must not re-add entries Redis never accepted.
    for (let i = 0; i < changes.joined.length; i++) this.remember(room, changes.joined[i]!.member, joinedArgs[2 * i + 1]!);
  }

  async snapshot(room: string): Promise<PresenceSnapshot> {
    const [version, values] = await this.call(() => this.cmd.rcPresenceList(this.keys.presence(room), this.keys.version(room)));
    return { users: countUsers(values.map(parseEntry)), version };
  }

  async list(room: string): Promise<PresenceUser[]> {
    return (await this.snapshot(room)).users;
  }

  /** Rooms with members, cluster-wide: presence hashes found by SCAN (on every master). */
  async rooms(): Promise<RoomSummary[]> {
    const rooms: string[] = [];
    await this.call(async () => {
      for await (const key of this.topology.scan(this.keys.presencePattern)) {
        const room = this.keys.roomOfPresence(key);
        if (room !== undefined) rooms.push(room);
      }
    });
    const out: RoomSummary[] = [];
    const snapshots = await Promise.all(rooms.map((room) => this.list(room)));
    rooms.forEach((room, i) => {
      const users = snapshots[i]!.length;
      if (users > 0) out.push({ room, users });
    });
    return out.sort((a, b) => b.users - a.users || (a.room < b.room ? -1 : 1));
  }

  /**
   * Before removing this process on purpose: every entry out. (Commands sent together, not one
   * pipeline: on a Cluster a pipeline must stay within one slot, and rooms are spread over slots.)
   */
  async removeAll(): Promise<void> {
    const calls: Promise<unknown>[] = [];
    for (const [room, members] of this.local) {
      for (const member of members.keys()) calls.push(this.cmd.rcPresenceRemove(...this.roomKeys(room), this.field(member), "", "", this.topology.publish));
    }
    await Promise.allSettled(calls);
    this.local.clear();
  }

  /**
   * After the command connection came back (Redis may have restarted empty): register again,
   * silently (members never saw these entries go). With `announce` — this process had been taken
   * for dead and its members announced gone — each room is told they are back, as a rejoin.
   */
  async restore(announce = false): Promise<void> {
    const removals = [...this.pendingRemovals];
    this.pendingRemovals.clear();
    const calls: Promise<unknown>[] = [];
    for (const [room, fields] of removals) {
      for (const field of fields) calls.push(this.cmd.rcPresenceRemove(...this.roomKeys(room), field, "", "", this.topology.publish));
    }
    for (const [room, members] of this.local) {
      calls.push(this.cmd.sadd(this.keys.nodeRooms(this.nodeId), room));
      if (announce) {
        const pairs = [...members].flatMap(([member, value]) => [this.field(member), value]);
        const joined = [...members.values()].map((value) => `${value.slice(0, -1)},"rejoin":true}`);
        const head = `{"event":"presence_diff","data":{"joined":[${joined.join(",")}],"left":[],"ts":${Date.now()},"version":`;
        calls.push(this.cmd.rcPresenceChange(...this.roomKeys(room), head, "}}", this.topology.publish, members.size, ...pairs));
      } else {
        for (const [member, value] of members) calls.push(this.cmd.rcPresenceAdd(...this.roomKeys(room), this.field(member), value, "", "", this.topology.publish));
      }
    }
    const failed = (await Promise.allSettled(calls)).find((r) => r.status === "rejected");
    if (failed) {
      for (const [room, fields] of removals) this.removeLater(room, [...fields]);
      this.logger.warn({ err: String((failed as PromiseRejectedResult).reason) }, "could not restore presence; tried again when the connection is back");
    }
  }

  /**
   * Lists the room among this node's rooms before its first entry there, so that if the node
   * dies its entries are found (a room listed without entries costs one empty look).
   */
  private registerRoom(room: string): void {
    // Every time, not only for a room's first entry: a concurrent removal of the room's last entry
    // may be taking it out of the set right now. Not awaited: on one connection it runs before the
    // presence script sent after it (and if Redis is unreachable that script fails too).
    void this.cmd.sadd(this.keys.nodeRooms(this.nodeId), room).catch(() => {});
  }

  private remember(room: string, member: string, value: string): void {
    let entries = this.local.get(room);
    if (!entries) this.local.set(room, (entries = new Map()));
    entries.set(member, value);
  }

  private forget(room: string, member: string): void {
    const entries = this.local.get(room);
    entries?.delete(member);
    if (entries?.size === 0) {
      this.local.delete(room);
      void this.cmd.srem(this.keys.nodeRooms(this.nodeId), room).catch(() => {});
    }
  }

  private removeLater(room: string, fields: string[]): void {
    let pending = this.pendingRemovals.get(room);
    if (!pending) this.pendingRemovals.set(room, (pending = new Set()));
    for (const field of fields) pending.add(field);
  }

  /** KEYS of the presence scripts. */
  private roomKeys(room: string): [hash: string, version: string, channel: string] {
    return [this.keys.presence(room), this.keys.version(room), this.keys.channel(room)];
  }

  private field(member: string): string {
    return `${this.nodeId}/${member}`;
  }
}

function parseEntry(value: string): PresenceRef {
  try {
    return JSON.parse(value) as PresenceRef;
  } catch {
    return { username: value }; // written by an older roomcast: the value was the username
  }
}
