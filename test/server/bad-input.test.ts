/**
 * Garbage from one client hurts nobody else: refused payloads, prototype keys, oversized and
 * malformed packets, floods. Afterwards the process still serves a fresh client.
 */
import assert from "node:assert/strict";
import { after, before, describe, it } from "node:test";
import { connect } from "node:net";
import WebSocket from "ws";
import type { ServerMessage } from "../../src/protocol.js";
import { TestClient } from "../helpers/client.js";
import { Cleanup, withTimeout } from "../helpers/processes.js";
import { startServe, type Roomcast } from "../helpers/roomcast.js";

describe("bad input", () => {
  const cleanup = new Cleanup();
  let server: Roomcast;
  const clients: TestClient[] = [];
  const joined = async (room: string, username: string) => {
    const c = new TestClient(server.url, room);
    clients.push(c);
    assert.deepEqual(await c.join(username), { ok: true });
    return c;
  };
  const disconnected = (c: TestClient) =>
    withTimeout(new Promise<string>((resolve) => c.socket.once("disconnect", resolve)), 5000, "the server to close the connection");

  before(async () => {
    server = await startServe(["--max-payload", "16384"]);
    cleanup.add(() => server.stop());
    cleanup.add(() => clients.forEach((c) => c.close()));
  });
  after(async () => {
    // whatever happened above, a fresh client is served
    try {
      const fresh = await joined("after-all", "fresh");
      await fresh.request("say", { text: "still serving" });
      await fresh.waitFor((m) => m.event === "broadcast_say");
      assert.equal(server.process.exitCode, null, "the server is still running");
    } finally {
      await cleanup.run();
    }
  });

  it("ignores __proto__ and constructor keys: they neither fill a field nor pollute anything", async () => {
    const c = new TestClient(server.url, "proto");
    clients.push(c);
    // JSON.parse makes "__proto__" an own key, so it really is sent on the wire
    const viaProto = await c.request("join", JSON.parse('{"__proto__":{"username":"admin"}}'));
    assert.equal(!viaProto.ok && viaProto.error.code, "BAD_USERNAME");
    const ok = await c.request("join", JSON.parse('{"username":"ann","__proto__":{"isAdmin":true},"constructor":{"prototype":{"x":1}}}'));
    assert.deepEqual(ok, { ok: true });
    const said = await c.request("say", JSON.parse('{"__proto__":{"text":"from the prototype"}}'));
    assert.equal(!said.ok && said.error.code, "BAD_TEXT");
    const real = await c.request("say", JSON.parse('{"text":"hi","__proto__":{"username":"mallory"}}'));
    assert.ok(real.ok);
    const message = await c.waitFor((m) => m.event === "broadcast_say");
    assert.deepEqual(message.event === "broadcast_say" && [message.data.username, message.data.text], ["ann", "hi"]);
    // event names that are Object.prototype's own names
    for (const event of ["__proto__", "constructor", "toString", "hasOwnProperty", "valueOf"]) c.socket.emit(event, { a: 1 });
    assert.equal((await c.request("say", { text: "after odd events" })).ok, true);
  });

  it("closes the one connection that sends an oversized packet", async () => {
    const peer = await joined("big", "peer");
    const big = await joined("big", "big");
    const closed = disconnected(big);
    big.socket.emit("say", { text: "x".repeat(20_000) });
    assert.equal(await closed, "transport close");
    assert.equal((await peer.request("say", { text: "unaffected" })).ok, true);
    const quit = await peer.waitFor((m) => m.event === "broadcast_quit");
    assert.equal(quit.event === "broadcast_quit" && quit.data.username, "big");
  });

  it("closes a raw connection that sends malformed packets", async () => {
    const frames: (string | Buffer)[] = [
      "42[",
      '42["say",{"text":',
      "4299999999999999999999[]",
      '42{"not":"an array"}',
      "9garbage",
      Buffer.from([0xff, 0x00, 0x13, 0x37]),
      '42["disconnect"]',
    ];
    for (const frame of frames) {
      const ws = new WebSocket(`ws://127.0.0.1:${server.port}/socket.io/?EIO=4&transport=websocket&roomid=raw`);
      cleanup.add(() => ws.terminate());
      const closed = new Promise<void>((resolve) => ws.once("close", () => resolve()));
      let step = 0;
      ws.on("message", (data) => {
        const text = data.toString();
        if (step === 0 && text.startsWith("0")) {
          ws.send("40"); // connect to the main namespace
          step = 1;
        } else if (step === 1 && text.startsWith("40")) {
          ws.send(frame);
          step = 2;
        } else if (text === "2") {
          ws.send("3"); // answer pings, so only the bad frame can end this connection
        }
      });
      await withTimeout(closed, 5000, () => `the server to close a connection that sent ${JSON.stringify(frame.toString())}`);
    }
  });

  it("keeps a flood to its sender: RATE_LIMITED, the room sees at most the burst, and a flood far past the limit is closed", async () => {
    const watcher = await joined("flood", "watcher");
    const flooder = await joined("flood", "flooder");
    const errors: ServerMessage[] = [];
    flooder.socket.on("message", (m: ServerMessage) => m.event === "error" && errors.push(m));
    const closed = disconnected(flooder);
    for (let i = 0; i < 2000; i++) flooder.socket.emit("say", { text: `flood ${i}` });
    // refused far past the rate limit (5 × the burst of 20): a flood, not a burst
    assert.equal(await closed, "io server disconnect");
    assert.ok(errors.length >= 100 && errors.length <= 110, `${errors.length} refusals before the close`);
    assert.ok(errors.every((e) => e.event === "error" && e.data.code === "RATE_LIMITED"));
    assert.match(errors.at(-1)!.event === "error" ? (errors.at(-1)!.data as { message: string }).message : "", /closed/);
    const marker = await joined("flood", "marker");
    await marker.request("say", { text: "marker" });
    await watcher.waitFor((m) => m.event === "broadcast_say" && m.data.text === "marker", 10_000, "the marker");
    const fromFlooder = watcher.said().filter((m) => m.username === "flooder").length;
    assert.ok(fromFlooder >= 20 && fromFlooder <= 22, `the room saw ${fromFlooder} flood messages`);
  });

  it("answers request targets that are not paths with 400 and keeps serving", async () => {
    for (const target of ["//", "//evil:99999", "//[::1", "///api/rooms"]) {
      const status = await new Promise<string>((resolve, reject) => {
        const socket = connect({ host: "127.0.0.1", port: server.port }, () => socket.write(`GET ${target} HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n`));
        socket.once("data", (d) => resolve(d.toString().split("\r\n")[0]!));
        socket.once("error", reject);
      });
      assert.match(status, /^HTTP\/1\.1 (400|404) /, target);
    }
    assert.equal((await fetch(`${server.url}/healthz`)).status, 200);
  });

  it("survives deeply nested and odd JSON in payloads", async () => {
    const c = await joined("nested", "ann");
    const deep = "[".repeat(1000) + "]".repeat(1000); // deeper overflows the client's own encoder
    const answers = await Promise.all([
      c.request("say", JSON.parse(`{"text":${deep}}`)),
      c.request("say", { text: "\ud800" }), // a lone surrogate: not a character
      c.request("typing", { typing: JSON.parse(deep) }),
    ]);
    assert.deepEqual(answers.map((a) => !a.ok && a.error.code), ["BAD_TEXT", "BAD_TEXT", "BAD_PAYLOAD"]);
  });
});
