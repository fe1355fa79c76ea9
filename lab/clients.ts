/**
 * The test's side of a client runner (lab/client-runner.ts): a process inside one client host
 * whose chat members connect from that host's address. Each method is one request, answered when
 * the runner has done it.
 */
import { spawn, type ChildProcess } from "node:child_process";
import { createInterface } from "node:readline";
import { fileURLToPath } from "node:url";
import type {
  CloseRequest,
  MessagesRequest,
  OpenRequest,
  PresenceRequest,
  RecoveryRequest,
  ReportRequest,
  RunnerAnswer,
  RunnerRequest,
  RunnerResults,
  SayManyRequest,
  SayRequest,
  SettleRequest,
} from "./client-protocol.js";

export const CLIENT_RUNNER = fileURLToPath(new URL("./client-runner.js", import.meta.url));

type Without<T> = T extends unknown ? Omit<T, "op" | "seq"> : never;

export class ClientHost {
  private readonly child: ChildProcess;
  private seq = 0;
  private readonly pending = new Map<number, { resolve: (value: unknown) => void; reject: (err: Error) => void }>();
  private stderr = "";
  private readonly ready: Promise<void>;
  readonly exited: Promise<number | string>;

  /** Starts a runner in the namespace `netns`; `host` and `address` name it in errors and reports. */
  constructor(
    readonly host: string,
    readonly address: string,
    netns: string,
  ) {
    this.child = spawn("ip", ["netns", "exec", netns, process.execPath, CLIENT_RUNNER], { stdio: ["pipe", "pipe", "pipe"] });
    this.child.stderr?.on("data", (chunk: Buffer) => {
      this.stderr = (this.stderr + chunk.toString()).slice(-10_000);
    });
    this.exited = new Promise((resolve) => {
      this.child.once("exit", (code, signal) => {
        const why = new Error(`client runner of ${host} exited (${code ?? signal}): ${this.stderr.trim().slice(-2000)}`);
        for (const waiter of this.pending.values()) waiter.reject(why);
        this.pending.clear();
        resolve(code ?? signal ?? "unknown");
      });
    });
    this.ready = new Promise<void>((resolve, reject) => {
      void this.exited.then((code) => reject(new Error(`client runner of ${host} exited (${code}) before it was ready: ${this.stderr.trim()}`)));
      const lines = createInterface({ input: this.child.stdout! });
      lines.on("line", (line) => {
        const message = JSON.parse(line) as RunnerAnswer | { ready: true };
        if ("ready" in message) return resolve();
        const waiter = this.pending.get(message.seq);
        if (!waiter) return;
        this.pending.delete(message.seq);
        if (message.ok) waiter.resolve(message.result);
        else waiter.reject(new Error(`${host}: ${message.error}`));
      });
    });
    // An unhandled rejection here would end the test process; callers see errors through requests.
    this.ready.catch(() => {});
  }

  private async request<K extends keyof RunnerResults>(op: K, body: Without<Extract<RunnerRequest, { op: K }>>): Promise<RunnerResults[K]> {
    await this.ready;
    const seq = ++this.seq;
    const answer = new Promise<unknown>((resolve, reject) => this.pending.set(seq, { resolve, reject }));
    this.child.stdin!.write(`${JSON.stringify({ ...body, op, seq })}\n`);
    return (await answer) as RunnerResults[K];
  }

  /** Opens members that join `room`; throws when one of them could not (unless `allowFailures`). */
  async open(request: Without<OpenRequest> & { allowFailures?: boolean }): Promise<RunnerResults["open"]> {
    const { allowFailures, ...body } = request;
    const result = await this.request("open", body);
    if (!allowFailures && result.failed.length > 0) {
      throw new Error(`${this.host}: ${result.failed.length}+ members could not join: ${JSON.stringify(result.failed.slice(0, 5))}`);
    }
    return result;
  }

  say(name: string, text: string, options: Omit<Without<SayRequest>, "name" | "text"> = {}): Promise<RunnerResults["say"]> {
    return this.request("say", { name, text, ...options });
  }

  /** Says `text` until accepted; resolves with the message's id (throws when refused for good). */
  async sayReliably(name: string, text: string, timeoutMs = 20_000): Promise<string> {
    const { ack } = await this.say(name, text, { reliable: true, timeoutMs });
    if (!ack.ok || ack.id === undefined) throw new Error(`${this.host}/${name} could not say ${text}: ${JSON.stringify(ack)}`);
    return ack.id;
  }

  sayMany(request: Without<SayManyRequest>): Promise<RunnerResults["sayMany"]> {
    return this.request("sayMany", request);
  }

  report(request: Without<ReportRequest> = {}): Promise<RunnerResults["report"]> {
    return this.request("report", request);
  }

  settle(request: Without<SettleRequest> = {}): Promise<RunnerResults["settle"]> {
    return this.request("settle", request);
  }

  /** Who lost the connection at or after `since` and when they came back; with `expected` (by room), what they received. */
  recovery(request: Without<RecoveryRequest>): Promise<RunnerResults["recovery"]> {
    return this.request("recovery", request);
  }

  messages(name: string): Promise<RunnerResults["messages"]> {
    return this.request("messages", { name } satisfies Without<MessagesRequest>);
  }

  presence(name: string): Promise<RunnerResults["presence"]> {
    return this.request("presence", { name } satisfies Without<PresenceRequest>);
  }

  close(names?: string[]): Promise<RunnerResults["close"]> {
    return this.request("close", (names === undefined ? {} : { names }) satisfies Without<CloseRequest>);
  }

  /** GET from this host: status 0 (and why, in `body`) when it fails or takes over `timeoutMs`. */
  fetch(url: string, timeoutMs = 5000): Promise<RunnerResults["fetch"]> {
    return this.request("fetch", { url, timeoutMs });
  }

  /** Opens a TCP connection from this host to `host`:`port` and closes it. */
  connect(host: string, port: number, timeoutMs = 2000): Promise<RunnerResults["connect"]> {
    return this.request("connect", { host, port, timeoutMs });
  }

  /** Ends the runner: its members' connections close with it. */
  async stop(): Promise<void> {
    if (this.child.exitCode !== null || this.child.signalCode !== null) return;
    this.child.stdin?.end();
    const timer = setTimeout(() => this.child.kill("SIGKILL"), 3000);
    await this.exited;
    clearTimeout(timer);
  }
}
