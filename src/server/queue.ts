/**
 * What waits in this process for one member, and what happens past `--max-queue-bytes`.
 *
 * A member that does not read (a hung tab, a hostile client that answers pings but reads nothing)
 * makes everything sent to it pile up: first in the kernel's socket buffers (a few MB, not ours to
 * count), then in this process — the TCP socket's write queue (roomcast's own fan-out writes and
 * ws's), Engine.IO's write buffer (while the transport waits for a write to finish, and for a
 * long-polling member between two polls). Without a cap one such member grows the process by
 * ~1 GB an hour in a busy room, and a flood of refused events answered to a member that never
 * reads the answers grows it faster still. Past the cap the member is told SLOW_CONSUMER where
 * that can still reach it and its connection is closed; it reconnects and recovers with `since`.
 *
 * Every write to a member — room events (fanout.ts), history, presence, refusals — asks `admit`
 * first, so what waits for a member stays within the cap plus one write.
 */
import type { Logger } from "pino";
import type { Socket } from "socket.io";
import { SERVER_EVENT, type ServerMessage } from "../protocol.js";
import { textFrame } from "./frame.js";
import type { Metrics } from "./metrics.js";

/** An Engine.IO packet as it waits in a connection's write buffer. */
interface EnginePacket {
  data?: unknown;
  options?: { wsPreEncodedFrame?: Buffer[] };
}

/** The Engine.IO connection fields read here (checked, as in fanout.ts: not public API). */
interface EngineConnection {
  readyState: string;
  writeBuffer?: EnginePacket[];
  transport: { name: string; socket?: { bufferedAmount?: number; _socket?: { writable: boolean; write(b: Buffer): boolean; destroy(): void } } };
  close(discard?: boolean): void;
}

/**
 * Byte counts of Engine.IO write buffers, kept per buffer array: Engine.IO only ever pushes to its
 * buffer and replaces it with a new array when it flushes, so each packet is counted once.
 */
const counted = new WeakMap<EnginePacket[], { packets: number; bytes: number }>();

function bufferedBytes(buffer: EnginePacket[]): number {
  let c = counted.get(buffer);
  if (!c || c.packets > buffer.length) {
    c = { packets: 0, bytes: 0 };
    counted.set(buffer, c);
  }
  for (; c.packets < buffer.length; c.packets++) {
    const packet = buffer[c.packets]!;
    const frame = packet.options?.wsPreEncodedFrame?.[0];
    // strings count their UTF-16 length: bytes for the ASCII of JSON, within 3× otherwise
    c.bytes += frame ? frame.length : typeof packet.data === "string" ? packet.data.length : Buffer.isBuffer(packet.data) ? packet.data.length : 16;
  }
  return c.bytes;
}

/** Bytes waiting in this process for the member: its WebSocket's unsent bytes and Engine.IO's buffer. */
export function queuedBytes(conn: EngineConnection): number {
  let bytes = 0;
  if (conn.transport.name === "websocket") {
    // ws's public `bufferedAmount`: the TCP socket's write queue plus ws's own
    const amount = conn.transport.socket?.bufferedAmount;
    if (typeof amount === "number") bytes += amount;
  }
  const buffer = conn.writeBuffer;
  if (buffer && buffer.length > 0) bytes += bufferedBytes(buffer);
  return bytes;
}

/** How long a closed slow member's socket may still drain before it is destroyed. */
const DRAIN_GRACE_MS = 2000;

export class QueueGuard {
  /** Members closed as slow consumers: nothing more is written to them. */
  private readonly closed = new WeakSet<Socket>();

  constructor(
    private readonly maxBytes: number,
    private readonly metrics: Metrics,
    private readonly logger: Logger,
  ) {}

  /**
   * True when something may be written to the member now. False when the member is past the cap
   * (it is then closed, once) or already closed as a slow consumer.
   */
  admit(socket: Socket): boolean {
    if (this.closed.has(socket)) return false;
    const conn = socket.conn as unknown as EngineConnection;
    const queued = queuedBytes(conn);
    if (queued <= this.maxBytes) return true;
    this.close(socket, conn, queued);
    return false;
  }

  private close(socket: Socket, conn: EngineConnection, queued: number): void {
    this.closed.add(socket);
    this.metrics.slowConsumers.inc();
    this.logger.info({ member: socket.id, room: socket.data.room as string | undefined, queued }, "slow consumer closed");
    const tcp = conn.transport.name === "websocket" ? conn.transport.socket?._socket : undefined;
    if (tcp && tcp.writable) {
      // Behind what is queued: a member that reads again gets everything up to here, then this.
      // (A long-polling member that stopped polling cannot be told: it learns at its next poll.)
      const error: ServerMessage = { event: "error", data: { code: "SLOW_CONSUMER", message: "you were not reading: reconnect and join with `since`" } };
      tcp.write(textFrame(`42${JSON.stringify([SERVER_EVENT, error])}`));
      // ws closes after its close handshake, or 30 s; the queue is freed sooner.
      setTimeout(() => tcp.destroy(), DRAIN_GRACE_MS).unref();
    }
    // A transport close, not a Socket.IO disconnect: the client reconnects by itself. Engine.IO
    // drops its write buffer and accepts no more packets for the member.
    conn.close(true);
  }
}
