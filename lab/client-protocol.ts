/**
 * What the test says to a client runner (lab/client-runner.ts) and what it answers: one JSON object
 * a line on the runner's stdin, one answer a line on its stdout, matched by `seq`. Members are
 * named by the test; one runner holds any number of them (thousands), all from its host's address.
 */
import type { Ack, PresenceUser } from "../src/protocol.js";
import type { DeliveryCheck } from "./delivery.js";

export interface ReconnectOptions {
  /** socket.io-client's reconnectionDelay. @default 100 */
  delayMs?: number;
  /** socket.io-client's reconnectionDelayMax. @default 1000 */
  delayMaxMs?: number;
  /** socket.io-client's randomizationFactor. @default 0.5 */
  randomization?: number;
}

export interface OpenRequest {
  op: "open";
  /** The edge's URL (or a worker's). */
  url: string;
  room: string;
  /** One member per name; the name is its username too. */
  names: string[];
  /** @default ["websocket"] */
  transports?: ("websocket" | "polling")[];
  /** Reconnect (and re-join with `since`) after a lost connection; false: stay away. @default {} */
  reconnect?: ReconnectOptions | false;
  /**
   * Keep each member's view of who is online, as the web client does (a map per member, and an
   * HTTP request after join and quit notices: not for thousands). @default false
   */
  trackPresence?: boolean;
  /** Open the connections evenly over this many ms instead of all at once. @default 0 */
  spreadMs?: number;
  /** Answer once every member's first join is answered, or after this many ms. @default 20000 */
  timeoutMs?: number;
}

export interface OpenResult {
  joined: number;
  /** Members whose first join failed or was not answered in time: name and why (first 20). */
  failed: { name: string; error: string }[];
}

export interface SayRequest {
  op: "say";
  name: string;
  text: string;
  /**
   * Keep trying across reconnects (and refusals RATE_LIMITED, UNAVAILABLE) until accepted or
   * `timeoutMs` has passed; else one try. @default false
   */
  reliable?: boolean;
  /** @default 10000 */
  timeoutMs?: number;
}

export interface SayResult {
  ack: Ack;
  /** ms from the first try to the accepting answer (or to giving up). */
  ms: number;
}

/** Sends `count` messages `<prefix><i>`, one after another (reliably), `intervalMs` apart. */
export interface SayManyRequest {
  op: "sayMany";
  name: string;
  prefix: string;
  count: number;
  /** @default 0 */
  intervalMs?: number;
  /** Per message, as SayRequest's. @default 10000 */
  timeoutMs?: number;
}

export interface SayManyResult {
  /** The accepted messages' ids, in the order sent. */
  ids: string[];
  /** Messages not accepted: index and the last answer. */
  refused: { index: number; error: string }[];
}

export interface MemberReport extends DeliveryCheck {
  name: string;
  connected: boolean;
  /** Its last join was answered ok (false while it re-joins). */
  joined: boolean;
  disconnects: number;
  /** Re-joins answered ok after a reconnect. */
  rejoins: number;
  /** Histories that said `truncated: true`. */
  truncated: number;
  /** `error` events received. */
  errors: number;
  lastId: string | undefined;
}

export interface ReportRequest {
  op: "report";
  /** @default every member */
  names?: string[];
  /** The room's messages the members should have (see checkDelivery). */
  expected?: string[];
  /** @default true: every member's report; false: the sums and the worst 10 */
  members?: boolean;
}

export interface ReportResult {
  members: number;
  connected: number;
  joined: number;
  /** Members with a duplicate, an out-of-order, a missing or an unexpected message. */
  wrong: number;
  /** Sums over the members. */
  totals: DeliveryCheck & { disconnects: number; rejoins: number; truncated: number; errors: number };
  /** Every member, or (members: false) the first 10 that are wrong. */
  reports: MemberReport[];
}

/**
 * Waits until every member (or `names`) is connected and joined and, with `expected`, has every
 * expected message; answers with the report then, or when `timeoutMs` passes (`done: false`).
 */
export interface SettleRequest {
  op: "settle";
  names?: string[];
  expected?: string[];
  /** @default 20000 */
  timeoutMs?: number;
}

/**
 * After a fault at `since` (epoch ms, this machine's clock): which members lost their connection
 * then and when each came back, and, with `expected`, whether every member has its room's
 * messages once, in order. Waits up to `timeoutMs` for every member to be connected, joined and
 * (with `expected`) complete; answers at once with 0.
 */
export interface RecoveryRequest {
  op: "recovery";
  since: number;
  /** Each room's messages (its history, say), by room. */
  expected?: Record<string, string[]>;
  /** @default 0 */
  timeoutMs?: number;
}

export interface RecoveryResult {
  members: number;
  /** Connected and joined now. */
  ready: number;
  /** Members whose connection was lost at or after `since`. */
  lost: number;
  /** Of those, connected and re-joined since their last loss. */
  recovered: number;
  /**
   * One entry per lost member, ms after `since` (-1: not yet): its first reconnect attempt, the
   * connection and the re-join (history in hand) that ended its last loss; its reconnect attempts.
   */
  firstAttemptMs: number[];
  connectedMs: number[];
  rejoinedMs: number[];
  attempts: number[];
  /** With `expected`: members without every message once, in order (0 without). */
  wrong: number;
  totals: DeliveryCheck;
  /** The first few wrong members' reports. */
  worst: MemberReport[];
  /** Every member connected, joined and complete. */
  done: boolean;
}

export interface MessagesRequest {
  op: "messages";
  name: string;
}
export interface MessagesResult {
  /** In arrival order, repeats included. */
  messages: { id: string; username: string; text: string }[];
}

export interface PresenceRequest {
  op: "presence";
  name: string;
}
export interface PresenceResult {
  /**
   * The member's view (OpenRequest.trackPresence), kept as the web client keeps it: the join's
   * `presence`, then each `presence_diff` (big rooms), and the room's presence asked over HTTP
   * after `join` and `broadcast_quit` notices (small rooms).
   */
  users: PresenceUser[];
  /** Usernames of the `join` notices received (small rooms), in order. */
  joins: string[];
  /** Usernames of the `broadcast_quit` notices and of `presence_diff.left`, in order. */
  quits: string[];
}

export interface CloseRequest {
  op: "close";
  /** @default every member */
  names?: string[];
}

/** An HTTP GET from the runner's host (what that machine sees). */
export interface FetchRequest {
  op: "fetch";
  url: string;
  /** @default 5000 */
  timeoutMs?: number;
}
/** Status 0 when the request failed or timed out; `body` says why then. */
export interface FetchResult {
  status: number;
  body: string;
}

/** Opens a TCP connection from the runner's host and closes it: does this host reach that port now? */
export interface ConnectRequest {
  op: "connect";
  host: string;
  port: number;
  /** @default 2000 */
  timeoutMs?: number;
}
/** `reached: false` with why in `error` (refused, timed out: a cut drops packets silently). */
export interface ConnectResult {
  reached: boolean;
  ms: number;
  error?: string;
}

export type RunnerRequest = (
  | OpenRequest
  | SayRequest
  | SayManyRequest
  | ReportRequest
  | SettleRequest
  | RecoveryRequest
  | MessagesRequest
  | PresenceRequest
  | CloseRequest
  | FetchRequest
  | ConnectRequest
) & { seq: number };

export interface RunnerResults {
  open: OpenResult;
  say: SayResult;
  sayMany: SayManyResult;
  report: ReportResult;
  settle: ReportResult & { done: boolean };
  recovery: RecoveryResult;
  messages: MessagesResult;
  presence: PresenceResult;
  close: { closed: number };
  fetch: FetchResult;
  connect: ConnectResult;
}

export type RunnerAnswer = { seq: number; ok: true; result: unknown } | { seq: number; ok: false; error: string };
