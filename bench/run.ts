/**
 * One generator process's share of a bench run: its rooms' clients connect and join, its senders
 * send at the set rate, and every client counts what it receives: each measured message once, in
 * order per sender, with its latency from the send timestamp the message carries.
 *
 * A message's text is `<phase>.<sender>.<seq>.<sent at, µs since the epoch>`: phase `w` (warm-up,
 * not counted) or `m` (measured), seq counting each phase's messages from 0. Senders are numbered
 * across all processes, so a text is unique.
 */
import { build, encodeIntoCompressedBase64, type Histogram } from "hdr-histogram-js";
import { SignJWT } from "jose";
import { createClient, type BenchClient } from "./clients.js";

export interface SharePlan {
  urls: string[];
  /**
   * The rooms of this share: `clients` of the room's `members` connect from this process (a big
   * room is split over processes), `senders` of them send, numbered from `firstSender`.
   */
  rooms: { name: string; clients: number; members: number; senders: number; firstSender: number }[];
  /** Messages per second per sender. */
  rate: number;
  transport: "websocket" | "polling";
  /** Spread the joins over this many ms (join-storm); 0: as fast as they complete, 200 at a time. */
  joinWindowMs: number;
  /** With a secret: every client connects with an HS256 token signed with it (roomcast --auth-secret). */
  authSecret?: string | undefined;
}

export interface ShareTimes {
  /** Epoch ms: warm-up starts. */
  start: number;
  warmupMs: number;
  durationMs: number;
}

export interface ShareResult {
  clients: number;
  joinMs: number;
  /** Measured messages accepted by the server. */
  sent: number;
  /** sent × members of its room: what should arrive. */
  expected: number;
  received: number;
  duplicated: number;
  outOfOrder: number;
  refusals: Record<string, number>;
  /** hdr histogram of latencies in µs, compressed base64. */
  latency: string;
  /** This process's CPU over its whole life: connecting, warm-up, window, drain. */
  cpuMs: number;
  /** This process's CPU during the measured window only: what compares with the servers'. */
  windowCpuMs: number;
}

export interface Progress {
  connected: number;
  sent: number;
  received: number;
  p99us: number;
}

/**
 * The measured messages of one sender, as one member received them: the highest seq, and the
 * lower seqs not received yet. A seq at or below `last` is late (out of order) if it was missing,
 * else a duplicate. O(1) per message and memory for the gaps only, not for every message seen.
 */
interface SenderTrack {
  last: number;
  missing: Set<number>;
}

interface Member {
  client: BenchClient;
  /** What arrived from each sender (by sender id). */
  senders: Map<number, SenderTrack>;
  room: number;
}

const nowUs = () => Math.round((performance.timeOrigin + performance.now()) * 1000);

export class Share {
  private readonly members: Member[] = [];
  private readonly latency: Histogram = build({ lowestDiscernibleValue: 1, highestTrackableValue: 120_000_000, numberOfSignificantValueDigits: 3 });
  private received = 0;
  private duplicated = 0;
  private outOfOrder = 0;
  private sent = 0;
  private expected = 0;
  private readonly refusals: Record<string, number> = {};
  private joinMs = 0;
  private sending = false;
  private readonly cpuStart = process.cpuUsage();
  private windowCpuMs = 0;

  constructor(private readonly plan: SharePlan) {}

  progress(): Progress {
    return { connected: this.members.length, sent: this.sent, received: this.received, p99us: this.latency.getValueAtPercentile(99) };
  }

  /** Connects and joins every client; resolves with the time it took. */
  async join(): Promise<number> {
    const started = performance.now();
    const jobs: (() => Promise<void>)[] = [];
    let k = 0;
    this.plan.rooms.forEach((room, roomIndex) => {
      for (let i = 0; i < room.clients; i++) {
        const url = this.plan.urls[k++ % this.plan.urls.length]!;
        jobs.push(async () => {
          const member: Member = { client: undefined as unknown as BenchClient, senders: new Map(), room: roomIndex };
          member.client = createClient(this.plan.transport, url, room.name, { said: (text) => this.count(member, text) });
          const username = `u${roomIndex}-${i}`;
          await member.client.join(username, this.plan.authSecret === undefined ? undefined : await benchToken(this.plan.authSecret, `${room.name}-${username}`, username));
          this.members.push(member);
        });
      }
    });
    if (this.plan.joinWindowMs > 0) {
      // Each client starts at its own moment within the window (join-storm).
      const gap = this.plan.joinWindowMs / jobs.length;
      await Promise.all(jobs.map((job, i) => new Promise<void>((resolve, reject) => setTimeout(() => job().then(resolve, reject), i * gap))));
    } else {
      let next = 0;
      await Promise.all(
        Array.from({ length: Math.min(200, jobs.length) }, async () => {
          while (next < jobs.length) await jobs[next++]!();
        }),
      );
    }
    this.joinMs = performance.now() - started;
    return this.joinMs;
  }

  private count(member: Member, text: string): void {
    if (text.charCodeAt(0) !== 109 /* m */) return;
    // m.<sender>.<seq>.<sent µs>, parsed without splitting into an array
    const dot1 = text.indexOf(".", 2);
    const dot2 = text.indexOf(".", dot1 + 1);
    const sender = Number(text.slice(2, dot1));
    const seq = Number(text.slice(dot1 + 1, dot2));
    let track = member.senders.get(sender);
    if (!track) member.senders.set(sender, (track = { last: -1, missing: new Set() }));
    if (seq > track.last) {
      for (let q = track.last + 1; q < seq; q++) track.missing.add(q);
      track.last = seq;
    } else if (track.missing.delete(seq)) {
      this.outOfOrder++;
    } else {
      this.duplicated++;
      return;
    }
    this.received++;
    this.latency.recordValue(Math.max(1, nowUs() - Number(text.slice(dot2 + 1))));
  }

  /**
   * Warm-up, then the measured window, then a drain for late deliveries: until nothing has
   * arrived for `quietMs`, at most `drainMs`. (Not until this share has what it expects: a room
   * spans shares, and a share without senders expects nothing, yet receives the others' last
   * messages; stopping at once lost them.)
   */
  async run(times: ShareTimes, drainMs = 5000, quietMs = 1000): Promise<ShareResult> {
    await sleepUntil(times.start);
    const measureFrom = times.start + times.warmupMs;
    const end = measureFrom + times.durationMs;
    this.sending = true;
    /** `seq` numbers a sender's warm-up messages, `mseq` its measured ones, each from 0. */
    const senders: { member: Member; id: number; seq: number; mseq: number; due: number }[] = [];
    const byRoom = new Map<number, Member[]>();
    for (const m of this.members) byRoom.set(m.room, [...(byRoom.get(m.room) ?? []), m]);
    this.plan.rooms.forEach((room, roomIndex) => {
      const members = byRoom.get(roomIndex) ?? [];
      for (let s = 0; s < Math.min(room.senders, members.length); s++) {
        // Start each sender at its own offset within one period, so sends do not come in bursts.
        senders.push({ member: members[s]!, id: room.firstSender + s, seq: 0, mseq: 0, due: times.start + Math.random() * (1000 / this.plan.rate) });
      }
    });
    const roomSize = (m: Member) => this.plan.rooms[m.room]?.members ?? 0;
    const period = 1000 / this.plan.rate;
    const pending = new Set<Promise<void>>();
    let windowCpu: NodeJS.CpuUsage | undefined;
    while (this.sending) {
      const now = Date.now();
      if (now >= measureFrom && !windowCpu) windowCpu = process.cpuUsage();
      if (now >= end) break;
      for (const s of senders) {
        while (s.due <= now) {
          s.due += period;
          const measured = s.due - period >= measureFrom;
          const text = measured ? `m.${s.id}.${s.mseq++}.${nowUs()}` : `w.${s.id}.${s.seq++}.${nowUs()}`;
          const p = s.member.client.say(text).then((refusal) => {
            if (refusal !== undefined) {
              this.refusals[refusal] = (this.refusals[refusal] ?? 0) + 1;
            } else if (measured) {
              this.sent++;
              this.expected += roomSize(s.member);
            }
          });
          pending.add(p);
          void p.finally(() => pending.delete(p));
        }
      }
      await new Promise((r) => setTimeout(r, 5));
    }
    if (windowCpu) {
      const used = process.cpuUsage(windowCpu);
      this.windowCpuMs = (used.user + used.system) / 1000;
    }
    await Promise.all(pending);
    // Quiet: the counts have not moved for quietMs (read from them, not stamped on every delivery).
    const drainEnd = Date.now() + drainMs;
    let counted = this.received + this.duplicated;
    let quietSince = Date.now();
    while (Date.now() < drainEnd && Date.now() - quietSince < quietMs) {
      await new Promise((r) => setTimeout(r, 20));
      if (this.received + this.duplicated !== counted) {
        counted = this.received + this.duplicated;
        quietSince = Date.now();
      }
    }
    return this.result();
  }

  result(): ShareResult {
    const cpu = process.cpuUsage(this.cpuStart);
    return {
      clients: this.members.length,
      joinMs: this.joinMs,
      sent: this.sent,
      expected: this.expected,
      received: this.received,
      duplicated: this.duplicated,
      outOfOrder: this.outOfOrder,
      refusals: this.refusals,
      latency: encode(this.latency),
      cpuMs: (cpu.user + cpu.system) / 1000,
      windowCpuMs: this.windowCpuMs,
    };
  }

  close(): void {
    this.sending = false;
    for (const m of this.members) m.client.close();
  }
}

/** A token as an application's backend would sign it: HS256, `sub`, `name`, valid for an hour. */
export function benchToken(secret: string, user: string, name: string): Promise<string> {
  return new SignJWT({ name })
    .setProtectedHeader({ alg: "HS256" })
    .setSubject(user)
    .setIssuedAt()
    .setExpirationTime("1h")
    .sign(new TextEncoder().encode(secret));
}

function encode(h: Histogram): string {
  return encodeIntoCompressedBase64(h);
}

function sleepUntil(t: number): Promise<void> {
  return new Promise((r) => setTimeout(r, Math.max(0, t - Date.now())));
}
