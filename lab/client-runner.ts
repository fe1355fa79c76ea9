/**
 * A client runner: started inside a client host (`ip netns exec NS node client-runner.js`), it
 * holds that host's chat members — real socket.io-client connections from the host's own address
 * — and does what the test asks on stdin (lab/client-protocol.ts), one answer a line on stdout.
 *
 * Kept lean for thousands of members per process: a member keeps the ids it received (interned:
 * one string per message for the whole runner, whatever the members), and no per-message work
 * beyond that; what it received is judged only when asked (report, settle). It exits when its
 * stdin closes, so it never outlives the test that started it.
 */
import { createConnection } from "node:net";
import { createInterface } from "node:readline";
import { io, type Socket } from "socket.io-client";
import { compareIds } from "../src/chat/ids.js";
import { PresenceState } from "../src/client/presence.js";
import type { Ack, PresenceUser, ServerMessage } from "../src/protocol.js";
import type {
  CloseRequest,
  ConnectRequest,
  ConnectResult,
  FetchRequest,
  FetchResult,
  MemberReport,
  MessagesRequest,
  OpenRequest,
  OpenResult,
  PresenceRequest,
  RecoveryRequest,
  RecoveryResult,
  ReportRequest,
  ReportResult,
  RunnerAnswer,
  RunnerRequest,
  SayManyRequest,
  SayManyResult,
  SayRequest,
  SayResult,
  SettleRequest,
} from "./client-protocol.js";
import { checkDelivery, deliveredOnceInOrder } from "./delivery.js";

/** Every message id and its text, once for the whole runner. */
class MessageBook {
  private readonly byId = new Map<string, { id: string; username: string; text: string }>();
  /** The one string object for this id (so a member's list holds references, not copies). */
  intern(id: string, username: string, text: string): string {
    const known = this.byId.get(id);
    if (known) return known.id;
    this.byId.set(id, { id, username, text });
    return id;
  }
  get(id: string): { id: string; username: string; text: string } | undefined {
    return this.byId.get(id);
  }
}

const book = new MessageBook();
const RETRYABLE = new Set(["RATE_LIMITED", "UNAVAILABLE"]);

class Member {
  readonly socket: Socket;
  /** Ids received, history and live, in arrival order, repeats included. */
  readonly received: string[] = [];
  /** The highest id received: the `since` of the next join. */
  lastId: string | undefined;
  joined = false;
  /** Resolves when the current connection's join is answered ok. */
  private joinWaiters: (() => void)[] = [];
  disconnects = 0;
  rejoins = 0;
  truncated = 0;
  errors = 0;
  private firstJoin = true;
  /** Who is in the room as this member sees it: the SDK's own presence state (one copy of that logic). */
  presence: PresenceState | undefined;
  readonly joins: string[] = [];
  readonly quits: string[] = [];
  /** Epoch ms of each lost connection and of each reconnect attempt (a few per member). */
  readonly lostTimes: number[] = [];
  readonly attemptTimes: number[] = [];
  /** Epoch ms of the connection and of the re-join that ended the last loss (0: not yet). */
  readonly times = { connectedAt: 0, rejoinedAt: 0 };
  private readonly url: string;

  constructor(
    readonly name: string,
    readonly room: string,
    request: OpenRequest,
    onFirstJoin: (error?: string) => void,
  ) {
    this.url = request.url;
    const reconnect = request.reconnect === false ? undefined : (request.reconnect ?? {});
    if (request.trackPresence) this.presence = new PresenceState();
    this.socket = io(request.url, {
      query: { roomid: room },
      transports: request.transports ?? ["websocket"],
      forceNew: true,
      reconnection: reconnect !== undefined,
      reconnectionDelay: reconnect?.delayMs ?? 100,
      reconnectionDelayMax: reconnect?.delayMaxMs ?? 1000,
      randomizationFactor: reconnect?.randomization ?? 0.5,
      autoConnect: false,
    });
    this.socket.on("connect", () => {
      if (this.lostTimes.length > 0 && this.times.connectedAt === 0) this.times.connectedAt = Date.now();
      this.join(onFirstJoin);
    });
    this.socket.io.on("reconnect_attempt", () => this.attemptTimes.push(Date.now()));
    this.socket.on("disconnect", (reason) => {
      this.joined = false;
      if (reason === "io client disconnect") return;
      this.disconnects++;
      this.lostTimes.push(Date.now());
      Object.assign(this.times, { connectedAt: 0, rejoinedAt: 0 });
      // As the web client: a connection the server closed on purpose comes back anyway.
      if (reason === "io server disconnect" && reconnect !== undefined) this.socket.connect();
    });
    this.socket.on("connect_error", (err) => {
      if (this.firstJoin && reconnect === undefined) {
        this.firstJoin = false;
        onFirstJoin(`connect_error: ${err.message}`);
      }
    });
    this.socket.on("message", (m: ServerMessage) => this.receive(m));
  }

  connect(): void {
    this.socket.connect();
  }

  private join(onFirstJoin: (error?: string) => void): void {
    const since = this.lastId;
    const payload = since === undefined ? { username: this.name } : { username: this.name, since };
    this.socket.emit("join", payload, (ack: Ack) => {
      if (ack.ok) {
        this.joined = true;
        for (const resolve of this.joinWaiters.splice(0)) resolve();
      }
      if (this.firstJoin) {
        this.firstJoin = false;
        onFirstJoin(ack.ok ? undefined : `${ack.error.code}: ${ack.error.message}`);
      } else if (ack.ok) {
        this.rejoins++;
        if (this.times.rejoinedAt === 0) this.times.rejoinedAt = Date.now();
      }
    });
  }

  /** Resolves once the member is joined (now, or after its next successful join). */
  whenJoined(): Promise<void> {
    if (this.joined && this.socket.connected) return Promise.resolve();
    return new Promise((resolve) => this.joinWaiters.push(resolve));
  }

  private record(id: string, username: string, text: string): void {
    this.received.push(book.intern(id, username, text));
    if (this.lastId === undefined || compareIds(id, this.lastId) > 0) this.lastId = id;
  }

  private receive(m: ServerMessage): void {
    switch (m.event) {
      case "history":
        if (m.data.truncated) this.truncated++;
        for (const message of m.data.messages) this.record(message.id, message.username, message.text);
        break;
      case "broadcast_say":
        this.record(m.data.id, m.data.username, m.data.text);
        break;
      case "error":
        this.errors++;
        break;
      case "join":
      case "broadcast_quit": {
        if (!this.presence) break;
        const ref = m.data.user === undefined ? { username: m.data.username } : { username: m.data.username, user: m.data.user };
        const joined = m.event === "join";
        const change = this.presence.apply(m.data.version, joined ? [{ ...ref, ...(m.event === "join" && m.data.rejoin ? { rejoin: true } : {}) }] : [], joined ? [] : [ref]);
        if (change) {
          for (const who of change.arrived) this.joins.push(who.username);
          for (const who of change.left) this.quits.push(who.username);
        }
        break;
      }
      case "presence":
        this.presence?.reset(m.data.users, m.data.version);
        break;
      case "presence_diff": {
        const change = this.presence?.apply(m.data.version, m.data.joined, m.data.left);
        if (change) {
          for (const who of change.arrived) this.joins.push(who.username);
          for (const who of change.left) this.quits.push(who.username);
        }
        break;
      }
      case "typing":
        break;
    }
  }

  report(expected?: readonly string[]): MemberReport {
    return {
      name: this.name,
      connected: this.socket.connected,
      joined: this.joined,
      disconnects: this.disconnects,
      rejoins: this.rejoins,
      truncated: this.truncated,
      errors: this.errors,
      lastId: this.lastId,
      ...checkDelivery(this.received, expected),
    };
  }

  /** One say, answered by the server, or a local UNAVAILABLE when there is no answer in time. */
  async sayOnce(text: string, timeoutMs: number): Promise<Ack> {
    try {
      return (await this.socket.timeout(timeoutMs).emitWithAck("say", { text })) as Ack;
    } catch {
      return { ok: false, error: { code: "UNAVAILABLE", message: "no answer" } };
    }
  }

  /**
   * Sends until accepted: waits for a connection and a join, tries (2 s for an answer), and tries
   * again after a refusal that may pass (RATE_LIMITED, UNAVAILABLE). A message whose answer was
   * lost may have been accepted: such a retry can put the text twice in the room, with two ids
   * (the acknowledged one is the one that counts).
   */
  async sayReliably(text: string, timeoutMs: number): Promise<Ack> {
    const deadline = Date.now() + timeoutMs;
    let last: Ack = { ok: false, error: { code: "UNAVAILABLE", message: "not joined in time" } };
    while (Date.now() < deadline) {
      const left = deadline - Date.now();
      const joined = await Promise.race([this.whenJoined().then(() => true), delay(left).then(() => false)]);
      if (!joined) break;
      last = await this.sayOnce(text, Math.min(2000, Math.max(1, deadline - Date.now())));
      if (last.ok || !RETRYABLE.has(last.error.code)) return last;
      await delay(50);
    }
    return last;
  }

  close(): void {
    this.socket.disconnect();
  }
}

const delay = (ms: number) => new Promise((resolve) => setTimeout(resolve, ms));

const members = new Map<string, Member>();

function member(name: string): Member {
  const found = members.get(name);
  if (!found) throw new Error(`no member ${name}`);
  return found;
}

function chosen(names: string[] | undefined): Member[] {
  return names === undefined ? [...members.values()] : names.map(member);
}

async function open(request: OpenRequest): Promise<OpenResult> {
  const failed: OpenResult["failed"] = [];
  let joined = 0;
  const timeoutMs = request.timeoutMs ?? 20_000;
  const taken = request.names.filter((name, i) => members.has(name) || request.names.indexOf(name) !== i);
  if (taken.length > 0) throw new Error(`members named twice: ${taken.slice(0, 5).join(", ")}`);
  const answers = request.names.map((name, i) => {
    return new Promise<void>((resolve) => {
      const created = new Member(name, request.room, request, (error) => {
        if (error === undefined) joined++;
        else if (failed.length < 20) failed.push({ name, error });
        resolve();
      });
      members.set(name, created);
      const spread = request.spreadMs ? (request.spreadMs * i) / request.names.length : 0;
      if (spread > 0) setTimeout(() => created.connect(), spread);
      else created.connect();
    });
  });
  const all = Promise.all(answers).then(() => true);
  const inTime = await Promise.race([all, delay(timeoutMs).then(() => false)]);
  if (!inTime) {
    for (const name of request.names) {
      const m = members.get(name);
      if (m && !m.joined && failed.length < 20 && !failed.some((f) => f.name === name)) failed.push({ name, error: `not joined within ${timeoutMs} ms` });
    }
  }
  return { joined, failed };
}

async function say(request: SayRequest): Promise<SayResult> {
  const started = Date.now();
  const m = member(request.name);
  const timeoutMs = request.timeoutMs ?? 10_000;
  const ack = request.reliable ? await m.sayReliably(request.text, timeoutMs) : await m.sayOnce(request.text, timeoutMs);
  return { ack, ms: Date.now() - started };
}

async function sayMany(request: SayManyRequest): Promise<SayManyResult> {
  const m = member(request.name);
  const result: SayManyResult = { ids: [], refused: [] };
  for (let i = 0; i < request.count; i++) {
    const ack = await m.sayReliably(`${request.prefix}${i}`, request.timeoutMs ?? 10_000);
    if (ack.ok && ack.id !== undefined) result.ids.push(ack.id);
    else result.refused.push({ index: i, error: ack.ok ? "accepted without an id" : `${ack.error.code}: ${ack.error.message}` });
    if (request.intervalMs) await delay(request.intervalMs);
  }
  return result;
}

function report(request: ReportRequest): ReportResult {
  const chosenMembers = chosen(request.names);
  const totals: ReportResult["totals"] = {
    received: 0, duplicates: 0, outOfOrder: 0, missing: 0, unexpected: 0, missingIds: [],
    disconnects: 0, rejoins: 0, truncated: 0, errors: 0,
  };
  const result: ReportResult = { members: chosenMembers.length, connected: 0, joined: 0, wrong: 0, totals, reports: [] };
  const keepAll = request.members ?? true;
  for (const m of chosenMembers) {
    const r = m.report(request.expected);
    if (r.connected) result.connected++;
    if (r.joined) result.joined++;
    const wrong = !deliveredOnceInOrder(r);
    if (wrong) result.wrong++;
    for (const key of ["received", "duplicates", "outOfOrder", "missing", "unexpected", "disconnects", "rejoins", "truncated", "errors"] as const) {
      totals[key] += r[key];
    }
    if (totals.missingIds.length < 5) totals.missingIds.push(...r.missingIds.slice(0, 5 - totals.missingIds.length));
    if (keepAll || (wrong && result.reports.length < 10)) result.reports.push(r);
  }
  return result;
}

function settled(check: ReportResult, expected: boolean): boolean {
  return check.connected === check.members && check.joined === check.members && (!expected || check.totals.missing === 0);
}

async function settle(request: SettleRequest): Promise<ReportResult & { done: boolean }> {
  const deadline = Date.now() + (request.timeoutMs ?? 20_000);
  for (;;) {
    // the cheap part first: judging deliveries walks every member's ids
    const quick = chosen(request.names).every((m) => m.joined && m.socket.connected);
    if (quick) {
      const now = report({ op: "report", names: request.names, expected: request.expected, members: false });
      if (settled(now, request.expected !== undefined)) return { ...now, done: true };
    }
    if (Date.now() > deadline) return { ...report({ op: "report", names: request.names, expected: request.expected, members: false }), done: false };
    await delay(100);
  }
}

function recoveryNow(request: RecoveryRequest): RecoveryResult {
  const result: RecoveryResult = {
    members: members.size, ready: 0, lost: 0, recovered: 0,
    firstAttemptMs: [], connectedMs: [], rejoinedMs: [], attempts: [],
    wrong: 0, totals: checkDelivery([]), worst: [], done: false,
  };
  const after = (t: number) => (t >= request.since ? t - request.since : -1);
  let complete = true;
  for (const m of members.values()) {
    const ready = m.joined && m.socket.connected;
    if (ready) result.ready++;
    if (m.lostTimes.some((t) => t >= request.since)) {
      result.lost++;
      const back = ready && m.times.rejoinedAt > 0;
      if (back) result.recovered++;
      result.firstAttemptMs.push(after(m.attemptTimes.find((t) => t >= request.since) ?? -1));
      result.connectedMs.push(m.times.connectedAt > 0 ? after(m.times.connectedAt) : -1);
      result.rejoinedMs.push(back ? after(m.times.rejoinedAt) : -1);
      result.attempts.push(m.attemptTimes.filter((t) => t >= request.since).length);
    }
    if (request.expected) {
      const r = m.report(request.expected[m.room] ?? []);
      for (const key of ["received", "duplicates", "outOfOrder", "missing", "unexpected"] as const) result.totals[key] += r[key];
      if (!deliveredOnceInOrder(r)) {
        result.wrong++;
        if (r.missing > 0) complete = false;
        if (result.worst.length < 5) result.worst.push(r);
      }
    }
  }
  result.done = result.ready === result.members && complete;
  return result;
}

async function recovery(request: RecoveryRequest): Promise<RecoveryResult> {
  const deadline = Date.now() + (request.timeoutMs ?? 0);
  for (;;) {
    // the cheap part first: judging deliveries walks every member's ids
    const ready = [...members.values()].every((m) => m.joined && m.socket.connected);
    if (Date.now() >= deadline || ready) {
      const now = recoveryNow(request);
      if (now.done || Date.now() >= deadline) return now;
    }
    await delay(250);
  }
}

function messages(request: MessagesRequest) {
  return {
    messages: member(request.name).received.map((id) => book.get(id) ?? { id, username: "", text: "" }),
  };
}

function presence(request: PresenceRequest) {
  const m = member(request.name);
  if (!m.presence) throw new Error(`${request.name} was opened without trackPresence`);
  const users: PresenceUser[] = m.presence.list.map(({ username, connections }) => ({ username, connections }));
  users.sort((a, b) => (a.username < b.username ? -1 : a.username > b.username ? 1 : 0));
  return { users, joins: m.joins, quits: m.quits };
}

function close(request: CloseRequest) {
  const list = chosen(request.names);
  for (const m of list) {
    m.close();
    members.delete(m.name);
  }
  return { closed: list.length };
}

async function get(request: FetchRequest): Promise<FetchResult> {
  try {
    // a fresh connection each time (no keep-alive): each answer says whether the host reaches it now
    const res = await fetch(request.url, { signal: AbortSignal.timeout(request.timeoutMs ?? 5000), headers: { connection: "close" } });
    return { status: res.status, body: await res.text() };
  } catch (err) {
    const cause = err instanceof Error && err.cause instanceof Error ? ` (${err.cause.message})` : "";
    return { status: 0, body: `${err instanceof Error ? err.message : String(err)}${cause}` };
  }
}

function tryConnect(request: ConnectRequest): Promise<ConnectResult> {
  const started = Date.now();
  return new Promise((resolve) => {
    const socket = createConnection({ host: request.host, port: request.port });
    const done = (error?: string) => {
      socket.destroy();
      resolve(error === undefined ? { reached: true, ms: Date.now() - started } : { reached: false, ms: Date.now() - started, error });
    };
    socket.setTimeout(request.timeoutMs ?? 2000, () => done("timed out"));
    socket.once("connect", () => done());
    socket.once("error", (err) => done(err.message));
  });
}

async function handle(request: RunnerRequest): Promise<unknown> {
  switch (request.op) {
    case "open":
      return open(request);
    case "say":
      return say(request);
    case "sayMany":
      return sayMany(request);
    case "report":
      return report(request);
    case "settle":
      return settle(request);
    case "recovery":
      return recovery(request);
    case "messages":
      return messages(request);
    case "presence":
      return presence(request);
    case "close":
      return close(request);
    case "fetch":
      return get(request);
    case "connect":
      return tryConnect(request);
    default:
      throw new Error(`unknown op ${(request as { op: string }).op}`);
  }
}

function answer(a: RunnerAnswer): void {
  process.stdout.write(`${JSON.stringify(a)}\n`);
}

const lines = createInterface({ input: process.stdin });
lines.on("line", (line) => {
  if (line.trim() === "") return;
  let request: RunnerRequest;
  try {
    request = JSON.parse(line) as RunnerRequest;
  } catch {
    process.stderr.write(`client runner: not JSON: ${line.slice(0, 200)}\n`);
    return;
  }
  handle(request).then(
    (result) => answer({ seq: request.seq, ok: true, result }),
    (err: unknown) => answer({ seq: request.seq, ok: false, error: err instanceof Error ? err.message : String(err) }),
  );
});
lines.on("close", () => {
  for (const m of members.values()) m.close();
  process.exit(0);
});
process.stdout.write(`${JSON.stringify({ ready: true })}\n`);
