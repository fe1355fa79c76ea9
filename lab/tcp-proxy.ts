/**
 * A slow link, as a TCP proxy (this kernel has no `tc netem`): every byte is passed on `delayMs`
 * after it arrived, in order, and at most `bytesPerSecond` a direction. Started by the lab in the
 * namespace of the link's near end (Lab.slowLink), which redirects connections to the far end
 * here; the delay and the rate change while it runs, with a JSON line on stdin
 * (`{"delayMs":200,"bytesPerSecond":0}`). Prints `{"listening":PORT}` once it listens. Exits
 * when stdin closes.
 *
 * Limits: it delays and throttles, never drops or reorders; a connection's two directions are
 * delayed independently (a round trip costs twice the delay).
 *
 *   node tcp-proxy.js LISTEN_PORT TARGET_HOST TARGET_PORT [DELAY_MS [BYTES_PER_SECOND]]
 */
import { createServer, connect, type Socket } from "node:net";
import { createInterface } from "node:readline";

const [listenPort, targetHost, targetPort, delayArg, rateArg] = process.argv.slice(2);
const link = { delayMs: Number(delayArg ?? 0), bytesPerSecond: Number(rateArg ?? 0) };
/** Bytes queued in one direction before its source is paused. */
const HIGH_WATER = 1 << 20;

/** Passes `from`'s bytes to `to`, late and throttled. */
function slowPipe(from: Socket, to: Socket): void {
  const queue: { due: number; chunk: Buffer }[] = [];
  let queued = 0;
  let lastDue = 0;
  let timer: NodeJS.Timeout | undefined;
  let ended = false;
  const flush = () => {
    timer = undefined;
    const now = Date.now();
    while (queue.length > 0 && queue[0]!.due <= now) {
      const { chunk } = queue.shift()!;
      queued -= chunk.length;
      to.write(chunk);
    }
    if (queued < HIGH_WATER && from.isPaused()) from.resume();
    if (queue.length > 0) timer = setTimeout(flush, queue[0]!.due - now);
    else if (ended) to.end();
  };
  from.on("data", (chunk: Buffer) => {
    const now = Date.now();
    // in order: never before the chunk ahead of it; throttled: after the time its bytes take
    const transmit = link.bytesPerSecond > 0 ? (chunk.length * 1000) / link.bytesPerSecond : 0;
    const due = Math.max(now + link.delayMs, lastDue) + transmit;
    lastDue = due;
    queue.push({ due, chunk });
    queued += chunk.length;
    if (queued >= HIGH_WATER) from.pause();
    if (timer === undefined) timer = setTimeout(flush, Math.max(0, queue[0]!.due - now));
  });
  from.on("end", () => {
    ended = true;
    if (queue.length === 0 && timer === undefined) to.end();
  });
  from.on("close", () => clearTimeout(timer));
}

const server = createServer((client) => {
  const target = connect({ host: targetHost, port: Number(targetPort) });
  const destroyBoth = () => {
    client.destroy();
    target.destroy();
  };
  client.on("error", destroyBoth);
  target.on("error", destroyBoth);
  client.on("close", () => target.destroy());
  target.on("close", () => client.destroy());
  slowPipe(client, target);
  slowPipe(target, client);
});
server.listen(Number(listenPort), "127.0.0.1", () => {
  const address = server.address();
  process.stdout.write(`${JSON.stringify({ listening: typeof address === "object" && address ? address.port : 0 })}\n`);
});

const input = createInterface({ input: process.stdin });
input.on("line", (line) => {
  try {
    const change = JSON.parse(line) as Partial<typeof link>;
    if (typeof change.delayMs === "number") link.delayMs = change.delayMs;
    if (typeof change.bytesPerSecond === "number") link.bytesPerSecond = change.bytesPerSecond;
    process.stdout.write(`${JSON.stringify({ link })}\n`);
  } catch {
    process.stderr.write(`tcp-proxy: not JSON: ${line.slice(0, 200)}\n`);
  }
});
input.on("close", () => process.exit(0));
