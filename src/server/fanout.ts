/**
 * Fan-out of room events to this process's members: the per-member work of a chat service, and
 * (measured with `node --cpu-prof`) most of its CPU. Two things make it cheaper than Socket.IO's
 * own broadcast (`io.to(room).emit`), which passes every frame through the adapter, the Socket.IO
 * client and the Engine.IO socket and transport of each member (several event emits, a write
 * callback and a corked two-buffer `writev` per member per message):
 *
 * 1. An event is encoded once per process, into a complete WebSocket frame, and written straight
 *    to the TCP socket of each member whose connection is an open WebSocket with nothing queued in
 *    Engine.IO. Any other member (long-polling, upgrading, or with packets of its own still queued)
 *    gets the event through Engine.IO, behind what is queued, so its order is kept.
 * 2. Events of one room that reach this process in one turn of the event loop (several messages
 *    read from Redis at once: common under load) are written to each member in one write: their
 *    frames one after another. Clients still receive one `message` event per event, unchanged; no
 *    waiting is added (the write happens at the end of the same turn, `setImmediate`). Holding
 *    events longer, for a few milliseconds, to write more of them at once was measured and not
 *    kept (BENCHMARKS.md): at 8 messages/s per sender a 20 ms window merged 1.3 deliveries per
 *    write instead of 1.1, saved no CPU that the noise did not hide, and doubled the median latency.
 *
 * The Engine.IO and `ws` fields read here are not public API (their versions are pinned by the
 * lockfile). `directSocket` checks every one of them and, when one is missing or not as expected,
 * answers "no", so the fan-out falls back to Engine.IO's own path rather than break.
 */
import type { Socket as NetSocket } from "node:net";
import type { Server, Socket } from "socket.io";
import { SERVER_EVENT, type RoomEvent } from "../protocol.js";
import { textFrame } from "./frame.js";
import type { Metrics } from "./metrics.js";
import type { QueueGuard } from "./queue.js";

/** Socket.IO room of a chat room (prefixed: every socket is also in a room named after its id). */
export const ioRoom = (room: string) => `room:${room}`;

/** The Engine.IO connection under a Socket.IO socket, as far as the direct write reads it. */
interface EngineConnection {
  readyState: string;
  upgrading: boolean;
  writeBuffer?: unknown[];
  transport: { name: string; socket?: { readyState?: number; _sender?: { _queue?: unknown[] }; _socket?: NetSocket } };
  write(data: string, options?: { wsPreEncodedFrame?: Buffer[] }): unknown;
}

/**
 * The member's TCP socket, when a frame written to it now lands after everything sent to the
 * member before, and is a whole WebSocket frame to it: an open WebSocket transport, not upgrading,
 * nothing in Engine.IO's write buffer nor in ws's send queue (with compression off, which is
 * Socket.IO's default and ours, ws writes every frame at once and queues nothing).
 */
function directSocket(conn: EngineConnection): NetSocket | undefined {
  if (conn.readyState !== "open" || conn.upgrading || conn.writeBuffer?.length !== 0) return undefined;
  const transport = conn.transport;
  if (transport.name !== "websocket") return undefined;
  const ws = transport.socket;
  if (ws?.readyState !== 1 || ws._sender?._queue?.length !== 0) return undefined;
  const tcp = ws._socket;
  return tcp && tcp.writable ? tcp : undefined;
}

/** A Socket.IO EVENT packet `message` on the main namespace, as socket.io-parser encodes it (no binary here), up to its data. */
const PACKET_HEAD = `2[${JSON.stringify(SERVER_EVENT)},`;

/** An event waiting for the end of this turn. */
interface Pending {
  /** The Socket.IO packet, encoded (`2["message",{…}]`), for Engine.IO's path. */
  packet: string;
  /** The whole WebSocket frame of the Engine.IO message packet (`4` + packet). */
  frame: Buffer;
  exceptMember: string | undefined;
  isMessage: boolean;
}

export class Fanout {
  /** Rooms' events waiting for the end of this turn. */
  private readonly pending = new Map<string, Pending[]>();
  private scheduled = false;
  private readonly writeTurn = () => {
    this.scheduled = false;
    for (const room of [...this.pending.keys()]) this.flush(room);
  };
  private readonly sockets;
  private readonly rooms;

  constructor(
    io: Server,
    private readonly metrics: Metrics,
    private readonly guard: QueueGuard,
  ) {
    this.sockets = io.of("/").sockets;
    this.rooms = io.of("/").adapter.rooms;
  }

  /** Sends the event to every member of the room on this process (but `exceptMember`), at the end of this turn. */
  broadcast(room: string, event: RoomEvent, exceptMember: string | undefined): void {
    const packet = `${PACKET_HEAD}${JSON.stringify(event)}]`;
    const item: Pending = { packet, frame: textFrame(`4${packet}`), exceptMember, isMessage: event.event === "broadcast_say" };
    const queue = this.pending.get(room);
    if (queue) queue.push(item);
    else this.pending.set(room, [item]);
    if (!this.scheduled) {
      this.scheduled = true;
      setImmediate(this.writeTurn);
    }
  }

  /**
   * Writes the room's waiting events now. Called before a member enters the room: it got them
   * while joining, and must not get them a second time.
   */
  flush(room: string): void {
    const items = this.pending.get(room);
    if (!items) return;
    this.pending.delete(room);
    const ids = this.rooms.get(ioRoom(room));
    if (!ids || ids.size === 0) return;
    const excepted = new Set<string>();
    for (const item of items) if (item.exceptMember !== undefined) excepted.add(item.exceptMember);
    const messages = items.reduce((n, item) => n + (item.isMessage ? 1 : 0), 0);
    const all = items.length === 1 ? items[0]!.frame : Buffer.concat(items.map((item) => item.frame));
    let delivered = 0;
    let writes = 0;
    for (const id of ids) {
      const socket: Socket | undefined = this.sockets.get(id);
      if (!socket) continue;
      const mine = excepted.has(id) ? items.filter((item) => item.exceptMember !== id) : items;
      if (mine.length === 0) continue;
      // a member past --max-queue-bytes is closed instead (queue.ts)
      if (!this.guard.admit(socket)) continue;
      const conn = socket.conn as unknown as EngineConnection;
      const tcp = directSocket(conn);
      if (tcp) {
        tcp.write(mine === items ? all : Buffer.concat(mine.map((item) => item.frame)));
      } else {
        for (const item of mine) conn.write(item.packet, { wsPreEncodedFrame: [item.frame] });
      }
      writes++;
      delivered += mine === items ? messages : mine.reduce((n, item) => n + (item.isMessage ? 1 : 0), 0);
    }
    this.metrics.delivered.inc(delivered);
    this.metrics.fanoutWrites.inc(writes);
  }
}
