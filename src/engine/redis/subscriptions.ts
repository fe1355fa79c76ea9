/**
 * The rooms this process receives, each with the newest message id it has delivered, so that
 * nothing published while a subscription was lost (a dropped connection, a failover, a slot that
 * moved) is missed: when the subscriber is back, every room is subscribed again and the messages
 * after that id are replayed from the room's history before any newer event. A client library's
 * resubscribe bugs then cost latency, never messages. Each message is delivered at most once and
 * in id order (replay and live may overlap: the older copy is dropped).
 */
import type { Logger } from "pino";
import { compareIds } from "../../chat/ids.js";
import type { ChatMessage } from "../../protocol.js";
import { EngineUnavailableError, type RoomListener, type RoomTraffic } from "../engine.js";
import type { RedisKeys } from "./keys.js";
import type { Subscriber } from "./topology.js";

/** What a room's channel carries: the traffic, and whom to skip (typing is not shown to its author). */
export interface ChannelFrame {
  event: RoomTraffic["event"];
  data: RoomTraffic["data"];
  except?: string;
}

interface Subscription {
  listener: RoomListener;
  /** The newest message id delivered (or known to be in history when subscribing). */
  lastId: string | undefined;
  /** While the messages missed during a lost connection are replayed, live frames wait here. */
  backlog: ChannelFrame[] | undefined;
}

export interface HistoryReader {
  /** The newest message id of the room's history ("0-0" when it has none). */
  newest(room: string): Promise<string>;
  /** Every kept message after `id`, oldest first. */
  after(room: string, id: string): Promise<ChatMessage[]>;
  /** The ids of the room's deleted messages still within the kept span. */
  deleted(room: string): Promise<string[]>;
}

export class RoomSubscriptions {
  private readonly subs = new Map<string, Subscription>();
  private closing = false;

  constructor(
    private readonly sub: Subscriber,
    private readonly keys: RedisKeys,
    private readonly history: HistoryReader,
    private readonly logger: Logger,
  ) {
    sub.on("message", (channel: string, raw: string) => this.onMessage(channel, raw));
    sub.on("lost", () => {
      // from now on, what arrives waits until the gap is replayed
      for (const s of this.subs.values()) s.backlog ??= [];
    });
    sub.on("restored", () => void this.restore());
  }

  get rooms(): string[] {
    return [...this.subs.keys()];
  }

  async subscribe(room: string, listener: RoomListener): Promise<void> {
    if (!this.sub.ready) throw new EngineUnavailableError("Redis is unreachable");
    const subscription: Subscription = { listener, lastId: undefined, backlog: undefined };
    this.subs.set(room, subscription);
    try {
      await this.sub.subscribe([this.keys.channel(room)]);
      // Where the room's history stands, so that a lost connection can be caught up from here even
      // if no message arrives before it is lost.
      const id = await this.history.newest(room);
      if (subscription.lastId === undefined || compareIds(id, subscription.lastId) > 0) subscription.lastId = id;
    } catch (err) {
      if (this.subs.get(room) === subscription) this.subs.delete(room);
      throw new EngineUnavailableError("Redis is unreachable", { cause: err });
    }
  }

  delivered(room: string): string | undefined {
    return this.subs.get(room)?.lastId;
  }

  async unsubscribe(room: string): Promise<void> {
    this.subs.delete(room);
    if (this.sub.ready) await this.sub.unsubscribe([this.keys.channel(room)]).catch(() => {});
  }

  close(): void {
    this.closing = true;
    this.subs.clear();
  }

  private onMessage(channel: string, raw: string): void {
    const room = this.keys.roomOfChannel(channel);
    const subscription = room === undefined ? undefined : this.subs.get(room);
    if (!subscription) return;
    let frame: ChannelFrame;
    try {
      frame = JSON.parse(raw) as ChannelFrame;
    } catch {
      this.logger.warn({ room }, "unreadable frame on a room channel, ignored");
      return;
    }
    if (subscription.backlog) subscription.backlog.push(frame);
    else this.deliver(subscription, frame);
  }

  /** Delivers one frame, dropping a message already delivered (replay and live may overlap). */
  private deliver(subscription: Subscription, frame: ChannelFrame): void {
    if (frame.event === "broadcast_say") {
      const id = (frame.data as ChatMessage).id;
      if (subscription.lastId !== undefined && compareIds(id, subscription.lastId) <= 0) return;
      subscription.lastId = id;
    }
    subscription.listener({ event: frame.event, data: frame.data } as RoomTraffic, frame.except);
  }

  /** After the subscriber came back: subscribe again, then replay what was missed. */
  private async restore(): Promise<void> {
    const rooms = this.rooms;
    if (rooms.length === 0) return;
    for (const room of rooms) {
      const s = this.subs.get(room);
      if (s) s.backlog ??= [];
    }
    // Until every room is subscribed again nothing reaches them: retry (a failover may refuse the
    // first attempts), while the connection stays up; if it drops, the next "restored" takes over.
    for (let attempt = 0; ; attempt++) {
      if (this.closing || !this.sub.ready) return;
      try {
        await this.sub.subscribe(this.rooms.map((r) => this.keys.channel(r)));
        break;
      } catch {
        await new Promise((r) => setTimeout(r, Math.min(200 * (attempt + 1), 2000)));
      }
    }
    await Promise.all(rooms.map((room) => this.replay(room)));
  }

  /**
   * The messages published while the room's subscription was lost, then the deletions (a `delete`
   * of the gap would be lost otherwise: every kept one is told again, harmless for the others),
   * then `resync` (kicks and presence changes of the gap are not kept: the listener refreshes
   * them), then the live frames that waited.
   */
  private async replay(room: string): Promise<void> {
    for (let attempt = 0; ; attempt++) {
      const subscription = this.subs.get(room);
      if (!subscription?.backlog) return;
      try {
        if (subscription.lastId !== undefined) {
          for (const message of await this.history.after(room, subscription.lastId)) {
            this.deliver(subscription, { event: "broadcast_say", data: message });
          }
        }
        for (const id of await this.history.deleted(room)) this.deliver(subscription, { event: "delete", data: { id } });
        this.deliver(subscription, { event: "resync", data: {} });
        const backlog = subscription.backlog;
        subscription.backlog = undefined;
        for (const frame of backlog) this.deliver(subscription, frame);
        if (attempt > 0) this.logger.info({ room }, "room caught up after reconnect");
        return;
      } catch {
        // The command connection is not back yet: try again shortly, events keep waiting.
        await new Promise((r) => setTimeout(r, Math.min(200 * (attempt + 1), 1000)));
        if (this.closing) return;
      }
    }
  }
}
