/**
 * The bench's hand-written WebSocket client against a real WebSocket server (`ws`): every frame
 * size encoding, frames split across TCP chunks and many frames in one chunk, masked sends.
 */
import assert from "node:assert/strict";
import { createServer } from "node:http";
import type { AddressInfo } from "node:net";
import { after, describe, it } from "node:test";
import { WebSocketServer } from "ws";
import { LeanWebSocket } from "../../bench/lean-websocket.js";
import { Cleanup, withTimeout } from "../helpers/processes.js";

const cleanup = new Cleanup();
after(() => cleanup.run());

async function echoServer() {
  const http = createServer();
  const wss = new WebSocketServer({ server: http, perMessageDeflate: false });
  const received: string[] = [];
  wss.on("connection", (ws, req) => {
    ws.on("message", (data: Buffer) => {
      const text = data.toString();
      received.push(text);
      // "burst N SIZE": N frames of SIZE bytes each, numbered, written at once
      const [cmd, n, size] = text.split(" ");
      if (cmd === "burst") {
        for (let i = 0; i < Number(n); i++) ws.send(`${i}:`.padEnd(Number(size), "x"));
      }
    });
    ws.send(`hello ${req.url}`);
  });
  await new Promise<void>((resolve) => http.listen(0, "127.0.0.1", resolve));
  cleanup.add(() => new Promise<void>((resolve) => { wss.close(); http.close(() => resolve()); }));
  return { url: `ws://127.0.0.1:${(http.address() as AddressInfo).port}`, received };
}

describe("LeanWebSocket", () => {
  it("reads frames of every length encoding, whole, in order, however TCP cuts them", async () => {
    const server = await echoServer();
    const got: string[] = [];
    let wake: (() => void) | undefined;
    const socket = new LeanWebSocket(`${server.url}/path?x=1`, {
      message: (data) => {
        got.push(data.toString());
        wake?.();
      },
      close: () => {},
    });
    cleanup.add(() => socket.close());
    await socket.opened;
    const until = (n: number) =>
      withTimeout((async () => { while (got.length < n) await new Promise<void>((r) => (wake = r)); })(), 10_000, () => `${got.length} of ${n} frames`);
    await until(1);
    assert.equal(got[0], "hello /path?x=1");

    // 7-bit, 16-bit and 64-bit lengths; the large ones span many TCP chunks, the small ones share them
    let expected = 1;
    for (const [n, size] of [[500, 20], [200, 300], [3, 70_000], [1000, 125], [50, 126], [2, 65_536]] as const) {
      socket.send(`burst ${n} ${size}`);
      expected += n;
      await until(expected);
      const burst = got.slice(expected - n, expected);
      burst.forEach((frame, i) => {
        assert.equal(frame.length, size, `frame ${i} of ${n}×${size}`);
        assert.ok(frame.startsWith(`${i}:`), `frame ${i} of ${n}×${size} in order`);
      });
    }
  });

  it("sends masked text frames a server reads back exactly, of every length encoding", async () => {
    const server = await echoServer();
    const socket = new LeanWebSocket(server.url, { message: () => {}, close: () => {} });
    cleanup.add(() => socket.close());
    await socket.opened;
    const texts = ["short", "é中文🙂", "y".repeat(126), "z".repeat(70_000)];
    for (const text of texts) socket.send(text);
    await withTimeout(
      (async () => { while (server.received.length < texts.length) await new Promise((r) => setTimeout(r, 10)); })(),
      10_000,
      "the server to receive every text",
    );
    assert.deepEqual(server.received, texts);
  });

  it("rejects when the server refuses the upgrade", async () => {
    const http = createServer((_req, res) => res.writeHead(404).end());
    await new Promise<void>((resolve) => http.listen(0, "127.0.0.1", resolve));
    cleanup.add(() => new Promise<void>((resolve) => http.close(() => resolve())));
    const socket = new LeanWebSocket(`ws://127.0.0.1:${(http.address() as AddressInfo).port}/`, { message: () => {}, close: () => {} });
    await assert.rejects(socket.opened, /upgrade refused: HTTP\/1\.1 404/);
  });
});
