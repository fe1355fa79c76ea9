/**
 * Socket.IO wiring: speaks the wire protocol of SPEC.md with each connection. It validates every
 * payload at the boundary, calls the chat, and turns every refusal into its wire answer here, in
 * one place (an ack when the client asked for one, else an `error` message).
 */
import type { Logger } from "pino";
import type { Server, Socket } from "socket.io";
import { Chat, type Member, type MemberSink } from "../chat/chat.js";
import { ChatError } from "../chat/errors.js";
import { TokenBucket } from "../chat/rate-limit.js";
import type { Engine } from "../engine/engine.js";
import {
  historyLimitSchema,
  joinSinceSchema,
  messageIdSchema,
  payloadSchema,
  roomIdSchema,
  textSchema,
  typingFlagSchema,
  usernameSchema,
} from "../protocol-schemas.js";
import {
  SERVER_EVENT,
  type Ack,
  type ErrorCode,
  type RoomEvent,
  type ServerMessage,
  type WireError,
} from "../protocol.js";
import type { ServeConfig } from "../config.js";
import { Fanout, ioRoom } from "./fanout.js";
import { mayEnter, type Identity, type TokenVerifier } from "./identity.js";
import type { Metrics } from "./metrics.js";
import type { QueueGuard } from "./queue.js";
import type { z } from "zod";

/**
 * The chat's way to the connections: room events through the Fanout, the rest through Socket.IO;
 * every write first asks the guard (a member past --max-queue-bytes is closed instead).
 */
export function socketSink(io: Server, metrics: Metrics, guard: QueueGuard): MemberSink {
  const sockets = io.of("/").sockets;
  const fanout = new Fanout(io, metrics, guard);
  return {
    broadcast(room: string, event: RoomEvent, exceptMember: string | undefined): void {
      fanout.broadcast(room, event, exceptMember);
    },
    send(member: string, message: ServerMessage): void {
      const socket = sockets.get(member);
      if (!socket || !guard.admit(socket)) return;
      socket.emit(SERVER_EVENT, message);
      if (message.event === "broadcast_say") metrics.delivered.inc();
      else if (message.event === "history") metrics.delivered.inc(message.data.messages.length);
    },
    enter(member: string, room: string): void {
      // what is still waiting for the room was sent to the member while it joined
      fanout.flush(room);
      void sockets.get(member)?.join(ioRoom(room));
    },
    close(member: string, error: WireError, reconnect: boolean): void {
      const socket = sockets.get(member);
      if (!socket) return;
      if (guard.admit(socket)) socket.emit(SERVER_EVENT, { event: "error", data: error } satisfies ServerMessage);
      // A transport close makes the client reconnect by itself; a Socket.IO disconnect does not.
      if (reconnect) socket.conn.close();
      else socket.disconnect(true);
    },
  };
}

export interface SocketDeps {
  io: Server;
  guard: QueueGuard;
  chat: Chat;
  engine: Engine;
  config: ServeConfig;
  /** With tokens configured: verifies each handshake's token. */
  verifier: TokenVerifier | undefined;
  metrics: Metrics;
  logger: Logger;
  /** Told the number of open connections whenever it changes (a cluster worker reports it). */
  onConnectionCount?: ((count: number) => void) | undefined;
}

/**
 * The client's address. Behind a proxy (nginx) the TCP peer is the proxy; with `trustProxy`, the
 * address the proxy appended last to X-Forwarded-For is the client's (entries before it were sent
 * by the client and prove nothing). Without `trustProxy` the header is ignored, so it cannot be
 * used to dodge per-address limits.
 */
export function clientAddress(socket: Socket, trustProxy: boolean): string {
  if (trustProxy) {
    const header = socket.handshake.headers["x-forwarded-for"];
    const list = (Array.isArray(header) ? header.join(",") : (header ?? "")).split(",");
    const last = list[list.length - 1]?.trim();
    if (last) return last;
  }
  return socket.handshake.address;
}

/**
 * Wires the protocol; returns a function that resolves once every leave started by a disconnect
 * has finished (for a graceful stop: quits published, presence removed).
 */
/**
 * Refusals a connection may run up before it is closed as a flood: a burst of five times the
 * message burst, refilled at the message rate. A person hitting the rate limit or a client with a
 * bug gets refusals; a connection that keeps sending far past every refusal is not a person, and
 * answering it costs memory and CPU everybody shares.
 */
const FLOOD_BURST_FACTOR = 5;

export function wireSockets({ io, guard, chat, engine, config, verifier, metrics, logger, onConnectionCount }: SocketDeps): () => Promise<void> {
  const text = textSchema(config.maxTextLength);
  const leaving = new Set<Promise<void>>();
  const namespace = io.of("/");
  /** Open connections per client address, for --max-connections-per-ip. */
  const perAddress = new Map<string, number>();

  /** Refuses a handshake: the client gets connect_error with `data: { code, message }`. */
  const refuseHandshake = (next: (err?: Error) => void, code: ErrorCode, message: string) => {
    metrics.refusals.inc({ code });
    const err = new Error(message) as Error & { data: WireError };
    err.data = { code, message };
    next(err);
  };

  io.use((socket, next) => {
    void (async () => {
      // With tokens, nothing happens before the token is verified: no room, no presence, no notice.
      if (verifier) {
        const token = (socket.handshake.auth as { token?: unknown } | undefined)?.token;
        try {
          socket.data.identity = await verifier.verify(token);
        } catch (err) {
          return refuseHandshake(next, "UNAUTHORIZED", err instanceof ChatError ? err.message : "the token is not valid");
        }
      }
      // The room comes from the handshake, as in the article's client: ?roomid=ROOM
      const parsed = roomIdSchema.safeParse(socket.handshake.query["roomid"]);
      if (!parsed.success) return refuseHandshake(next, "BAD_ROOM", "a room id is 1 to 64 letters or digits of any script, or _ - . :");
      const identity = socket.data.identity as Identity | undefined;
      if (identity && !mayEnter(identity, parsed.data)) return refuseHandshake(next, "FORBIDDEN", "your token does not let you into this room");
      socket.data.room = parsed.data;
      const address = clientAddress(socket, config.trustProxy);
      const open = perAddress.get(address) ?? 0;
      if (config.maxConnectionsPerIp > 0 && open >= config.maxConnectionsPerIp) return refuseHandshake(next, "RATE_LIMITED", "too many connections from your address");
      socket.data.address = address;
      next();
    })();
  });

  io.on("connection", (socket) => {
    const room = socket.data.room as string;
    const address = socket.data.address as string;
    perAddress.set(address, (perAddress.get(address) ?? 0) + 1);
    const countConnections = () => {
      metrics.connections.set(namespace.sockets.size);
      engine.setConnectionCount(namespace.sockets.size);
      onConnectionCount?.(namespace.sockets.size);
    };
    countConnections();
    const sayBucket = new TokenBucket(config.rateLimit, config.rateBurst);
    const typingBucket = new TokenBucket(config.rateLimit, config.rateBurst);
    // a join succeeds once per connection, but a refused one may be tried again: not unboundedly
    const joinBucket = new TokenBucket(config.rateLimit, config.rateBurst);
    const historyBucket = new TokenBucket(config.rateLimit, config.rateBurst);
    const refusalBucket = new TokenBucket(config.rateLimit, config.rateBurst * FLOOD_BURST_FACTOR);
    let member: Member | undefined;
    let joining: Promise<void> | undefined;
    const identity = socket.data.identity as Identity | undefined;
    // A token's `exp` passing on an open connection: told, and a transport close, so that a
    // client whose `auth` is a function reconnects with a fresh token (and recovers with `since`).
    let expiry: NodeJS.Timeout | undefined;
    const expireAt = (at: number) => {
      // a timer can wait at most 2^31 − 1 ms (24.8 days): a longer-lived token re-arms it
      expiry = setTimeout(() => {
        if (Date.now() < at) return expireAt(at);
        if (!guard.admit(socket)) return;
        metrics.refusals.inc({ code: "TOKEN_EXPIRED" });
        socket.emit(SERVER_EVENT, { event: "error", data: { code: "TOKEN_EXPIRED", message: "your token has expired: reconnect with a fresh one" } } satisfies ServerMessage);
        socket.conn.close();
      }, Math.min(Math.max(0, at - Date.now()), 2 ** 31 - 1));
    };
    if (identity) expireAt(identity.expiresAt);

    /** The joined member; waits for a join still under way (the article's client says right after join). */
    const joined = async (): Promise<Member> => {
      if (joining) await joining.catch(() => {});
      if (!member) throw new ChatError("NOT_JOINED", "join the room first");
      return member;
    };

    handle(socket, refusalBucket, "join", async (payload) => {
      if (joining) throw new ChatError("ALREADY_JOINED", "this connection has joined already");
      if (!joinBucket.take()) throw new ChatError("RATE_LIMITED", "too many join attempts, slow down");
      const p = parse(payloadSchema, payload, "BAD_PAYLOAD");
      // with a token, the name is the token's: `username` is optional and ignored
      const username = identity ? identity.name : parse(usernameSchema, p["username"], "BAD_USERNAME");
      const since = parse(joinSinceSchema, p["since"], "BAD_PAYLOAD");
      const candidate: Member = identity ? { id: socket.id, room, username, user: identity.user } : { id: socket.id, room, username };
      joining = chat.join(candidate, since);
      try {
        await joining;
      } catch (err) {
        joining = undefined; // a failed join may be tried again
        throw err;
      }
      member = candidate;
      return {};
    });

    handle(socket, refusalBucket, "say", async (payload) => {
      if (!sayBucket.take()) throw new ChatError("RATE_LIMITED", "too many messages, slow down");
      const p = parse(payloadSchema, payload, "BAD_PAYLOAD");
      const sender = await joined();
      const message = await chat.say(sender, parse(text, p["text"], "BAD_TEXT"));
      metrics.received.inc();
      return { id: message.id };
    });

    handle(socket, refusalBucket, "typing", async (payload) => {
      if (!typingBucket.take()) throw new ChatError("RATE_LIMITED", "too many typing notices, slow down");
      const p = parse(payloadSchema, payload, "BAD_PAYLOAD");
      const typing = parse(typingFlagSchema, p["typing"], "BAD_PAYLOAD");
      await chat.typing(await joined(), typing);
      return {};
    });

    // Scrollback: the messages before one the member has, for a page scrolled to its top.
    handle(socket, refusalBucket, "history", async (payload) => {
      if (!historyBucket.take()) throw new ChatError("RATE_LIMITED", "too many history requests, slow down");
      const p = parse(payloadSchema, payload, "BAD_PAYLOAD");
      const before = parse(messageIdSchema, p["before"], "BAD_PAYLOAD");
      const limit = parse(historyLimitSchema(config.historySize), p["limit"] ?? defaultPage(config), "BAD_PAYLOAD");
      const member = await joined();
      const page = await chat.older(member.room, before, limit);
      return { messages: page.messages, more: page.more };
    });

    socket.on("disconnect", () => {
      clearTimeout(expiry);
      countConnections();
      const open = (perAddress.get(address) ?? 1) - 1;
      if (open > 0) perAddress.set(address, open);
      else perAddress.delete(address);
      if (!joining) return;
      const done = joined()
        .then((m) => chat.leave(m))
        .catch(() => {}) // never joined: nothing to announce
        .finally(() => leaving.delete(done));
      leaving.add(done);
    });
  });

  /**
   * Runs one client event: validates, calls, answers. Nothing a client sends escapes as an
   * exception; answers count against the member's queue like everything else sent to it, and a
   * connection whose refusals run far past the rate limit is closed.
   */
  function handle(socket: Socket, refusals: TokenBucket, event: string, run: (payload: unknown) => Promise<Omit<Extract<Ack, { ok: true }>, "ok">>): void {
    socket.on(event, (...args: unknown[]) => {
      const ack = typeof args.at(-1) === "function" ? (args.pop() as (answer: Ack) => void) : undefined;
      run(args[0]).then(
        (result) => {
          if (ack && guard.admit(socket)) ack({ ok: true, ...result });
        },
        (err: unknown) => {
          const error = toWireError(err, logger);
          metrics.refusals.inc({ code: error.code });
          if (!socket.connected || !guard.admit(socket)) return;
          if (!refusals.take()) return closeFlood(socket);
          if (ack) ack({ ok: false, error });
          else socket.emit(SERVER_EVENT, { event: "error", data: error } satisfies ServerMessage);
        },
      );
    });
  }

  /** A Socket.IO disconnect, not a transport close: a flooding client is not invited back. */
  function closeFlood(socket: Socket): void {
    metrics.floodsClosed.inc();
    logger.info({ member: socket.id, room: socket.data.room as string | undefined }, "connection closed: flood of refused events");
    const error: WireError = { code: "RATE_LIMITED", message: "too many refused events: this connection is closed" };
    socket.emit(SERVER_EVENT, { event: "error", data: error } satisfies ServerMessage);
    socket.disconnect(true);
  }

  return async () => {
    await Promise.allSettled([...leaving]);
  };
}

/** A history page without a limit: as many as a join gets, 1 at the least, the history size at the most. */
export function defaultPage(config: Pick<ServeConfig, "historyOnJoin" | "historySize">): number {
  return Math.max(1, Math.min(config.historyOnJoin || 50, config.historySize));
}

function parse<T extends z.ZodType>(schema: T, value: unknown, code: ErrorCode): z.infer<T> {
  const result = schema.safeParse(value);
  if (result.success) return result.data;
  const detail = result.error.issues[0];
  const message = detail && detail.code === "custom" ? detail.message : describeField(code);
  throw new ChatError(code, message);
}

function describeField(code: ErrorCode): string {
  switch (code) {
    case "BAD_USERNAME":
      return "username must be a string of 1 to 32 characters";
    case "BAD_TEXT":
      return "text must be a string";
    default:
      return "the payload must be an object of the documented fields";
  }
}

function toWireError(err: unknown, logger: Logger): WireError {
  if (err instanceof ChatError) return err.toWire();
  logger.error({ err }, "unexpected error in a client event");
  return { code: "UNAVAILABLE", message: "internal error, try again" };
}
