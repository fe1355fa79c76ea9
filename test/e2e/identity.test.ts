/**
 * Identity and the application's backend, on two `roomcast serve` processes sharing a Redis:
 * signed tokens (refusals with their codes and no side effect, names that cannot be spoofed,
 * expiry with a fresh token and nothing lost), and the server API (publish, delete, kick and ban,
 * cluster-wide; every bad request its 4xx).
 */
import assert from "node:assert/strict";
import { mkdtempSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { after, before, describe, it } from "node:test";
import type { ServerMessage } from "../../src/protocol.js";
import { is, TestClient } from "../helpers/client.js";
import { Cleanup, eventually, withTimeout } from "../helpers/processes.js";
import { startRedis } from "../helpers/redis.js";
import { getJson, runCli, startServe, type Roomcast } from "../helpers/roomcast.js";
import { keyPair, mint, SECRET, unsigned } from "../helpers/tokens.js";

const API_KEY = "test-api-key-0123456789";

describe("tokens and the server API on two processes", () => {
  const cleanup = new Cleanup();
  let a: Roomcast;
  let b: Roomcast;
  let roomSeq = 0;
  const freshRoom = () => `id-room-${++roomSeq}`;

  before(async () => {
    const redis = await startRedis();
    cleanup.add(() => redis.stop());
    const flags = ["--redis", redis.url];
    const env = { ROOMCAST_AUTH_SECRET: SECRET, ROOMCAST_API_KEY: API_KEY };
    [a, b] = await Promise.all([startServe(flags, env), startServe(flags, env)]);
    cleanup.add(() => a.stop());
    cleanup.add(() => b.stop());
  });
  after(async () => {
    // secrets and tokens never reach a log line
    for (const server of [a, b]) {
      assert.ok(!server.output().includes(SECRET), "the secret is not logged");
      assert.ok(!server.output().includes(API_KEY), "the API key is not logged");
      assert.ok(!/eyJ[\w-]{10,}\.eyJ/.test(server.output()), "no token is logged");
    }
    await cleanup.run();
  });

  const connect = (server: Roomcast, room: string, token: string | undefined, options = {}) => {
    const c = new TestClient(server.url, room, { auth: token === undefined ? {} : { token }, ...options });
    cleanup.add(() => c.close());
    return c;
  };
  const member = async (server: Roomcast, room: string, claims: { sub: string; name?: string }) => {
    const c = connect(server, room, await mint(claims));
    assert.deepEqual(await c.join(""), { ok: true });
    return c;
  };
  const refusedWith = async (c: TestClient) => {
    const err = await withTimeout(new Promise<Error & { data?: { code: string } }>((resolve) => c.socket.once("connect_error", resolve)), 5000, "connect_error");
    return err.data?.code;
  };
  const api = (server: Roomcast, method: string, path: string, body?: unknown, key: string | null = API_KEY, raw?: string) =>
    fetch(`${server.url}${path}`, {
      method,
      headers: { ...(key === null ? {} : { authorization: `Bearer ${key}` }), "content-type": "application/json" },
      ...(body !== undefined || raw !== undefined ? { body: raw ?? JSON.stringify(body) } : {}),
    }).then(async (res) => ({ status: res.status, body: (await res.json()) as Record<string, unknown> & { error?: { code: string } } }));

  it("refuses every bad token with UNAUTHORIZED, a room outside `rooms` with FORBIDDEN, and leaves no trace", async () => {
    const room = freshRoom();
    const watcher = await member(a, room, { sub: "w", name: "watcher" });
    const other = new TextEncoder().encode("another-secret-of-at-least-32-characters");
    const now = Math.floor(Date.now() / 1000);
    const dir = mkdtempSync(join(tmpdir(), "roomcast-keys-"));
    cleanup.add(() => rmSync(dir, { recursive: true, force: true }));
    const rsa = keyPair("rsa", join(dir, "rsa.pem"));
    const cases: [string, string | undefined][] = [
      ["no token", undefined],
      ["not a JWT", "hello"],
      ["signed with another secret", await mint({ sub: "m", name: "mallory" }, 600, other)],
      ["expired", await mint({ sub: "m", name: "mallory" }, -10)],
      ["no sub", await mint({ name: "mallory" })],
      ["no exp", await new (await import("jose")).SignJWT({ sub: "m" }).setProtectedHeader({ alg: "HS256" }).sign(new TextEncoder().encode(SECRET))],
      ["alg none", unsigned({ sub: "m", name: "mallory" })],
      ["RS256 against an HS256-only server", await mint({ sub: "m", name: "mallory" }, 600, rsa.privateKey, "RS256")],
      ["a name too long", await mint({ sub: "m", name: "x".repeat(40) })],
      ["exp in the past by a minute", await mint({ sub: "m", exp: now - 60 })],
    ];
    for (const [what, token] of cases) {
      assert.equal(await refusedWith(connect(a, room, token)), "UNAUTHORIZED", what);
    }
    const forbidden = connect(b, room, await mint({ sub: "m", name: "mallory", rooms: ["support-*", "lobby"] }));
    assert.equal(await refusedWith(forbidden), "FORBIDDEN");
    const prefixed = connect(b, "support-42", await mint({ sub: "m", name: "mallory", rooms: ["support-*", "lobby"] }));
    await prefixed.connected();
    // nothing happened in the room: the next join the watcher sees is the control one
    await member(b, room, { sub: "c", name: "control" });
    await watcher.waitFor((m) => m.event === "join" && m.data.username === "control");
    assert.deepEqual(watcher.inbox.filter(is("join")).map((m) => m.data.username), ["watcher", "control"]);
    const presence = watcher.inbox.find(is("presence"))!;
    assert.deepEqual(presence.data.users.map((u) => u.username), ["watcher"]);
  });

  it("shows the token's name whatever the client asks, and keeps two users of one name apart", async () => {
    const room = freshRoom();
    const watcher = await member(a, room, { sub: "w", name: "watcher" });
    const sam1 = connect(a, room, await mint({ sub: "u1", name: "sam" }));
    assert.deepEqual(await sam1.join("alice"), { ok: true }, "a username in join is ignored");
    const sam2 = await member(b, room, { sub: "u2", name: "sam" });
    const said = await sam1.request("say", { text: "I am sam one" });
    assert.ok(said.ok);
    const message = await watcher.waitFor((m) => m.event === "broadcast_say" && m.data.text === "I am sam one");
    assert.deepEqual(message.event === "broadcast_say" && [message.data.username, message.data.user], ["sam", "u1"]);
    const presence = await getJson<{ users: unknown[] }>(`${a.url}/api/rooms/${room}/presence`, API_KEY);
    assert.deepEqual(presence.body.users, [
      { username: "sam", user: "u1", connections: 1 },
      { username: "sam", user: "u2", connections: 1 },
      { username: "watcher", user: "w", connections: 1 },
    ]);
    sam2.close();
    const quit = await watcher.waitFor(is("broadcast_quit"));
    assert.deepEqual([quit.data.username, quit.data.user], ["sam", "u2"]);
  });

  it("closes a connection whose token expires with TOKEN_EXPIRED; with a fresh token it recovers everything", async () => {
    const room = freshRoom();
    const talker = await member(b, room, { sub: "t", name: "talker" });
    let issued = 0;
    // socket.io-client calls `auth` before every connection: a fresh token each time
    const auth = (cb: (data: object) => void) => {
      issued++;
      void mint({ sub: "e", name: "erin" }, issued === 1 ? 2 : 600).then((token) => cb({ token }));
    };
    const erin = new TestClient(a.url, room, { auth, reconnection: true, reconnectionDelay: 100, reconnectionDelayMax: 200 });
    cleanup.add(() => erin.close());
    await erin.connected();
    erin.autoRejoin("");
    assert.deepEqual(await erin.join(""), { ok: true });
    const sent: string[] = [];
    const expired = erin.waitFor((m) => m.event === "error" && m.data.code === "TOKEN_EXPIRED", 6000, "TOKEN_EXPIRED");
    for (let i = 0; i < 40 && !erin.inbox.some((m) => m.event === "error"); i++) {
      const ack = await talker.request("say", { text: `t${i}` });
      sent.push(`t${i}`);
      assert.ok(ack.ok);
      await new Promise((r) => setTimeout(r, 100)); // a steady stream across the expiry
    }
    await expired;
    for (let i = 40; i < 45; i++) {
      assert.ok((await talker.request("say", { text: `t${i}` })).ok);
      sent.push(`t${i}`);
    }
    await eventually(() => (erin.rejoins >= 1 && erin.rejoinedAt > 0 ? true : undefined), 10_000, "erin to reconnect and rejoin");
    const got = await erin.waitForSaid(sent.length, 10_000);
    assert.deepEqual(got.map((m) => m.text), sent, "every message once, in order");
    assert.equal(issued, 2, "one fresh token");
  });

  it("publishes from the API to members on both processes, in order", async () => {
    const room = freshRoom();
    const onA = await member(a, room, { sub: "x", name: "x" });
    const onB = await member(b, room, { sub: "y", name: "y" });
    const ids: string[] = [];
    for (let i = 0; i < 5; i++) {
      const res = await api(i % 2 ? a : b, "POST", `/api/rooms/${room}/messages`, { username: "bot", text: `notice ${i}` });
      assert.equal(res.status, 200, JSON.stringify(res.body));
      ids.push(res.body["id"] as string);
    }
    for (const c of [onA, onB]) {
      const said = await c.waitForSaid(5);
      assert.deepEqual(said.map((m) => [m.id, m.username, m.text]), ids.map((id, i) => [id, "bot", `notice ${i}`]));
    }
    // posting to a room nobody used creates it
    assert.equal((await api(a, "POST", `/api/rooms/${freshRoom()}/messages`, { username: "bot", text: "first" })).status, 200);
  });

  it("deletes a message from every member's view and from history; recovery through it is exact", async () => {
    const room = freshRoom();
    const onA = await member(a, room, { sub: "x", name: "x" });
    const onB = await member(b, room, { sub: "y", name: "y" });
    const ids: string[] = [];
    for (const text of ["one", "two", "three"]) {
      const ack = await onA.request("say", { text });
      ids.push((ack as { id: string }).id);
    }
    await onB.waitForSaid(3);
    const res = await api(b, "DELETE", `/api/rooms/${room}/messages/${ids[1]}`);
    assert.equal(res.status, 200);
    for (const c of [onA, onB]) {
      const deleted = await c.waitFor((m) => m.event === "delete");
      assert.deepEqual(deleted.data, { id: ids[1] });
    }
    const history = await getJson<{ messages: { text: string }[] }>(`${a.url}/api/rooms/${room}/history`, API_KEY);
    assert.deepEqual(history.body.messages.map((m) => m.text), ["one", "three"]);
    const late = connect(a, room, await mint({ sub: "z", name: "z" }));
    assert.deepEqual(await late.join("", ids[1]), { ok: true });
    const recovered = await late.waitFor(is("history"));
    assert.deepEqual([recovered.data.messages.map((m) => m.text), recovered.data.truncated], [["three"], false]);
    assert.equal((await api(a, "DELETE", `/api/rooms/${room}/messages/${ids[1]}`)).status, 404, "only once");
  });

  it("kicks a user's connections on both processes; a ban refuses its joins until it ends", async () => {
    const room = freshRoom();
    const watcher = await member(a, room, { sub: "w", name: "watcher" });
    const troll1 = await member(a, room, { sub: "troll", name: "troll" });
    const troll2 = await member(b, room, { sub: "troll", name: "troll" });
    const bystander = await member(b, room, { sub: "ok", name: "troll" }); // same name, another user
    const closed = (c: TestClient) => withTimeout(new Promise<string>((resolve) => c.socket.once("disconnect", resolve)), 5000, "the kick");
    const [c1, c2] = [closed(troll1), closed(troll2)];
    const res = await api(b, "POST", `/api/rooms/${room}/kick`, { user: "troll", ban_seconds: 2 });
    assert.equal(res.status, 200, JSON.stringify(res.body));
    assert.deepEqual(await Promise.all([c1, c2]), ["io server disconnect", "io server disconnect"]);
    for (const c of [troll1, troll2]) assert.ok(c.inbox.some((m: ServerMessage) => m.event === "error" && m.data.code === "KICKED"));
    assert.equal(bystander.socket.connected, true, "the other user of that name stays");
    const again = connect(a, room, await mint({ sub: "troll", name: "troll" }));
    const refused = await again.join("");
    assert.equal(!refused.ok && refused.error.code, "BANNED");
    await eventually(async () => {
      const retry = connect(b, room, await mint({ sub: "troll", name: "troll" }));
      return (await retry.join("")).ok ? true : undefined;
    }, 6000, "the ban to end");
    // a kick without a ban does not stop a rejoin
    const back = await member(a, room, { sub: "troll", name: "troll" });
    const closedAgain = closed(back);
    assert.equal((await api(a, "POST", `/api/rooms/${room}/kick`, { user: "troll" })).status, 200);
    await closedAgain;
    await member(b, room, { sub: "troll", name: "troll" });
    assert.equal(watcher.socket.connected, true);
  });

  it("answers every bad API request with its 4xx and a coded error", async () => {
    const room = freshRoom();
    const path = `/api/rooms/${room}/messages`;
    const cases: [string, Promise<{ status: number; body: { error?: { code: string } } }>, number, string][] = [
      ["no key", api(a, "POST", path, { username: "bot", text: "x" }, null), 401, "UNAUTHORIZED"],
      ["wrong key", api(a, "POST", path, { username: "bot", text: "x" }, "wrong-key-0123456789"), 401, "UNAUTHORIZED"],
      ["bad JSON", api(a, "POST", path, undefined, API_KEY, "{not json"), 400, "BAD_PAYLOAD"],
      ["not an object", api(a, "POST", path, [1, 2]), 400, "BAD_PAYLOAD"],
      ["no text", api(a, "POST", path, { username: "bot" }), 400, "BAD_TEXT"],
      ["empty text", api(a, "POST", path, { username: "bot", text: "   " }), 400, "BAD_TEXT"],
      ["text too long", api(a, "POST", path, { username: "bot", text: "x".repeat(2001) }), 400, "BAD_TEXT"],
      ["bad username", api(a, "POST", path, { username: "", text: "x" }), 400, "BAD_USERNAME"],
      ["body over 64 KB", api(a, "POST", path, { username: "bot", text: "x".repeat(70_000) }), 400, "BAD_PAYLOAD"],
      ["bad room", api(a, "POST", "/api/rooms/a%20b/messages", { username: "bot", text: "x" }), 400, "BAD_ROOM"],
      ["unknown message", api(a, "DELETE", `${path}/1-0`), 404, "NOT_FOUND"],
      ["bad message id", api(a, "DELETE", `${path}/nope`), 400, "BAD_PAYLOAD"],
      ["kick without user", api(a, "POST", `/api/rooms/${room}/kick`, {}), 400, "BAD_PAYLOAD"],
      ["kick with a bad ban", api(a, "POST", `/api/rooms/${room}/kick`, { user: "x", ban_seconds: -1 }), 400, "BAD_PAYLOAD"],
      ["unknown endpoint", api(a, "POST", "/api/nothing", {}), 404, "NOT_FOUND"],
      ["wrong method", api(a, "PUT", path, {}), 405, "METHOD_NOT_ALLOWED"],
      ["reads need the key", api(a, "GET", "/api/rooms", undefined, null), 401, "UNAUTHORIZED"],
      ["history needs the key", api(a, "GET", `/api/rooms/${room}/history`, undefined, null), 401, "UNAUTHORIZED"],
      ["stats need the key", api(a, "GET", "/api/stats", undefined, null), 401, "UNAUTHORIZED"],
    ];
    for (const [what, answer, status, code] of cases) {
      const res = await answer;
      assert.deepEqual([res.status, res.body.error?.code], [status, code], what);
    }
    // the Bearer scheme in any case; health and metrics stay open
    const lower = await fetch(`${a.url}/api/stats`, { headers: { authorization: `bearer ${API_KEY}` } });
    assert.equal(lower.status, 200);
    assert.equal((await fetch(`${a.url}/healthz`)).status, 200);
    assert.equal((await fetch(`${a.url}/metrics`)).status, 200);
    assert.equal(a.process.exitCode, null);
  });
});

describe("public keys: RS256 and ES256", () => {
  const cleanup = new Cleanup();
  after(() => cleanup.run());

  for (const type of ["rsa", "ec"] as const) {
    it(`accepts ${type === "rsa" ? "RS256" : "ES256"} tokens of its key and nothing else`, async () => {
      const dir = mkdtempSync(join(tmpdir(), "roomcast-keys-"));
      cleanup.add(() => rmSync(dir, { recursive: true, force: true }));
      const file = join(dir, "public.pem");
      const { privateKey, publicPem } = keyPair(type, file);
      const alg = type === "rsa" ? "RS256" : "ES256";
      const server = await startServe(["--auth-public-key", file]);
      cleanup.add(() => server.stop());
      const attempt = async (token: string) => {
        const c = new TestClient(server.url, "keys", { auth: { token } });
        cleanup.add(() => c.close());
        return new Promise<string>((resolve) => {
          c.socket.once("connect", () => resolve("connected"));
          c.socket.once("connect_error", (err: Error & { data?: { code: string } }) => resolve(err.data?.code ?? err.message));
        });
      };
      assert.equal(await attempt(await mint({ sub: "u", name: "ok" }, 600, privateKey, alg)), "connected");
      // an HS256 token signed with the public key's bytes: the classic algorithm confusion
      assert.equal(await attempt(await mint({ sub: "u" }, 600, new TextEncoder().encode(publicPem), "HS256")), "UNAUTHORIZED");
      const other = keyPair(type, join(dir, "other.pem"));
      assert.equal(await attempt(await mint({ sub: "u" }, 600, other.privateKey, alg)), "UNAUTHORIZED");
      assert.equal(await attempt(unsigned({ sub: "u" })), "UNAUTHORIZED");
    });
  }

  it("refuses to start, in one line, with a key file that is missing or not a public key", async () => {
    const missing = await runCli(["serve", "--port", "0", "--auth-public-key", "/nonexistent/key.pem"]);
    assert.equal(missing.code, 1);
    assert.match(missing.output, /^roomcast: --auth-public-key \/nonexistent\/key.pem: .+\n$/);
    const short = await runCli(["serve", "--port", "0", "--auth-secret", "short"]);
    assert.equal(short.code, 1);
    assert.match(short.output, /^roomcast: --auth-secret must be at least 32 characters/);
  });
});
