/**
 * The client SDK (`roomcast/client`) against real roomcast processes: events, recovery after its
 * server is killed and comes back, the outbox while offline, tokens renewed by a function,
 * kicked for good, scrollback.
 */
import assert from "node:assert/strict";
import { after, before, describe, it } from "node:test";
import { connect, RoomcastError, type Arrival, type ChatMessage, type ClientState, type RoomcastClient } from "../../src/client/index.js";
import { Cleanup, eventually, freePort, withTimeout } from "../helpers/processes.js";
import { startRedis, type TestRedis } from "../helpers/redis.js";
import { startServe, type Roomcast } from "../helpers/roomcast.js";
import { mint, SECRET } from "../helpers/tokens.js";

const API_KEY = "sdk-test-api-key-0123456789";

/** Everything a client's events told, in order. */
function record(client: RoomcastClient) {
  const messages: ChatMessage[] = [];
  /** How each message came, by text. */
  const arrivals = new Map<string, Arrival>();
  const states: ClientState[] = [];
  const log: string[] = [];
  client.on("message", (m, arrival) => {
    messages.push(m);
    arrivals.set(m.text, arrival);
  });
  client.on("state", (s) => states.push(s));
  client.on("arrive", (who) => log.push(`arrive ${who.username}`));
  client.on("leave", (who) => log.push(`leave ${who.username}`));
  client.on("error", (e) => log.push(`error ${e.code}`));
  client.on("closed", (e) => log.push(`closed ${e.code}`));
  return { messages, arrivals, states, log };
}

async function post(room: string, text: string): Promise<void> {
  const res = await fetch(`${apiUrl}/api/rooms/${room}/messages`, {
    method: "POST",
    headers: { authorization: `Bearer ${API_KEY}`, "content-type": "application/json" },
    body: JSON.stringify({ username: "bot", text }),
  });
  assert.equal(res.status, 200);
}
let apiUrl = "";

const until = <T>(check: () => T | undefined, what: string, ms = 10_000) => eventually(async () => check(), ms, what);

describe("the client SDK", () => {
  const cleanup = new Cleanup();
  let redis: TestRedis;
  let steady: Roomcast;
  let port: number;
  let flaky: Roomcast;
  let roomSeq = 0;
  const freshRoom = () => `sdk-${++roomSeq}`;
  const client = (url: string, options: Parameters<typeof connect>[1]) => {
    const c = connect(url, { reconnectDelayMs: 100, reconnectDelayMaxMs: 300, ...options });
    cleanup.add(() => c.close());
    return c;
  };

  before(async () => {
    redis = await startRedis();
    cleanup.add(() => redis.stop());
    port = await freePort();
    [steady, flaky] = await Promise.all([startServe(["--redis", redis.url], { ROOMCAST_API_KEY: API_KEY }), startServe(["--redis", redis.url, "--port", String(port)])]);
    cleanup.add(() => steady.stop());
    cleanup.add(() => flaky.stop());
    apiUrl = steady.url;
  });
  after(() => cleanup.run());

  it("joins, says, and tells who arrives and leaves, once per person", async () => {
    const room = freshRoom();
    const ann = client(steady.url, { room, username: "ann" });
    const seen = record(ann);
    await ann.join();
    assert.equal(ann.state, "connected");
    const bob1 = client(flaky.url, { room, username: "bob" });
    await bob1.join();
    const bob2 = client(steady.url, { room, username: "bob" }); // a second tab
    await bob2.join();
    assert.deepEqual(bob2.me, { username: "bob" });
    // typing notices are rate limited too: refusals are answered, not told as errors
    const bob2Seen = record(bob2);
    for (let i = 0; i < 40; i++) bob2.typing(i % 2 === 0);
    assert.ok(await bob2.say("typed a lot"));
    assert.deepEqual(bob2Seen.log, [], "no error for a refused typing notice");
    const id = await bob1.say("hello");
    await until(() => (seen.messages.length === 2 ? true : undefined), "the messages");
    assert.deepEqual([seen.messages[1]!.id, seen.messages[1]!.text, seen.messages[1]!.username], [id, "hello", "bob"]);
    await until(() => (ann.presence.find((u) => u.username === "bob")?.connections === 2 ? true : undefined), "bob's two tabs");
    bob1.close();
    await until(() => (ann.presence.find((u) => u.username === "bob")?.connections === 1 ? true : undefined), "one tab left");
    bob2.close();
    await until(() => (seen.log.includes("leave bob") ? true : undefined), "bob to leave");
    assert.deepEqual(seen.log, ["arrive bob", "leave bob"], "one arrival and one departure for two tabs, and no error");
    await assert.rejects(ann.say(""), (err: RoomcastError) => err.code === "BAD_TEXT");
  });

  it("recovers every message once, in order, when its server is killed and comes back; what was said offline goes out once", async () => {
    const room = freshRoom();
    const talker = client(steady.url, { room, username: "talker" });
    await talker.join();
    const erin = client(flaky.url, { room, username: "erin" });
    const seen = record(erin);
    const outboxes: string[][] = [];
    erin.on("outbox", (pending) => outboxes.push(pending.map((p) => `${p.state}:${p.text}`)));
    await erin.join();
    const sent: string[] = [];
    for (let i = 0; i < 5; i++) sent.push((await talker.say(`before ${i}`)) && `before ${i}`);
    // an acknowledgement says the message is stored, not that erin's process has written it to her yet
    await until(() => (seen.messages.length === 5 ? true : undefined), "erin to have the first 5 live");
    await flaky.stop("SIGKILL");
    await until(() => (erin.state === "reconnecting" ? true : undefined), "erin to notice");
    // said while offline: waits in the outbox
    const offline = [erin.say("offline one"), erin.say("offline two")];
    assert.deepEqual(outboxes.at(-1), ["queued:offline one", "queued:offline two"]);
    // more than a join without `since` would send (50): only recovery from the last id gets them all
    for (let i = 0; i < 60; i++) {
      await post(room, `during ${i}`);
      sent.push(`during ${i}`);
    }
    flaky = await startServe(["--redis", redis.url, "--port", String(port)]);
    const ids = await withTimeout(Promise.all(offline), 15_000, "the offline messages to go out");
    assert.equal(ids.length, 2);
    assert.deepEqual(outboxes.at(-1), [], "the outbox is empty again");
    for (let i = 0; i < 3; i++) sent.push((await talker.say(`after ${i}`)) && `after ${i}`);
    const expected = [...sent.slice(0, 65), "offline one", "offline two", ...sent.slice(65)];
    await until(() => (seen.messages.length >= expected.length ? true : undefined), "every message");
    assert.deepEqual(seen.messages.map((m) => m.text), expected);
    // what was said while it was away came with the recovery; the rest live
    for (const text of expected) assert.equal(seen.arrivals.get(text), text.startsWith("during") ? "missed" : "live", text);
    assert.ok(seen.states.includes("reconnecting") && seen.states.at(-1) === "connected");
    assert.ok(!seen.log.includes("arrive erin"), "its own return is not an arrival");
  });

  it("pages back through history with older()", async () => {
    const room = freshRoom();
    for (let i = 0; i < 120; i++) await post(room, `m${i}`);
    const reader = client(steady.url, { room, username: "reader" });
    const seen = record(reader);
    await reader.join();
    assert.deepEqual(seen.messages.map((m) => m.text), Array.from({ length: 50 }, (_, i) => `m${i + 70}`));
    assert.ok([...seen.arrivals.values()].every((a) => a === "history"), "the room's past on entering");
    assert.equal(reader.hasOlder, true);
    // from a message of the application's choice: the client's own cursor stays
    const before = seen.messages.find((m) => m.text === "m100")!.id;
    const some = await reader.older(10, before);
    assert.deepEqual([some.messages.map((m) => m.text), some.more], [Array.from({ length: 10 }, (_, i) => `m${i + 90}`), true]);
    const page1 = await reader.older(50);
    assert.deepEqual([page1.messages.map((m) => m.text), page1.more], [Array.from({ length: 50 }, (_, i) => `m${i + 20}`), true]);
    const page2 = await reader.older(50);
    assert.deepEqual([page2.messages.map((m) => m.text), page2.more], [Array.from({ length: 20 }, (_, i) => `m${i}`), false]);
    assert.deepEqual((await reader.older(50)).messages, []);
  });

  it("renews an expiring token with its function and loses nothing; is closed for good when kicked", async () => {
    const secured = await startServe(["--redis", redis.url], { ROOMCAST_AUTH_SECRET: SECRET, ROOMCAST_API_KEY: API_KEY });
    cleanup.add(() => secured.stop());
    const room = freshRoom();
    const talker = client(secured.url, { room, token: await mint({ sub: "t", name: "talker" }) });
    await talker.join();
    let issued = 0;
    const erin = client(secured.url, { room, token: () => mint({ sub: "e", name: "erin" }, ++issued === 1 ? 2 : 600) });
    const seen = record(erin);
    await erin.join();
    assert.deepEqual(erin.me, { username: "erin", user: "e" }, "who the token says");
    const sent: string[] = [];
    for (let i = 0; i < 30 && !seen.log.includes("error TOKEN_EXPIRED"); i++) {
      sent.push(`t${i}`);
      await talker.say(`t${i}`);
      await new Promise((r) => setTimeout(r, 120)); // a steady stream across the expiry
    }
    assert.ok(seen.log.includes("error TOKEN_EXPIRED"));
    for (let i = 30; i < 33; i++) sent.push((await talker.say(`t${i}`)) && `t${i}`);
    await until(() => (seen.messages.length >= sent.length ? true : undefined), "every message");
    assert.deepEqual(seen.messages.map((m) => m.text), sent);
    assert.equal(issued, 2);
    // kicked: closed for good, with the reason, and no reconnect
    const kicked = await fetch(`${secured.url}/api/rooms/${room}/kick`, {
      method: "POST",
      headers: { authorization: `Bearer ${API_KEY}`, "content-type": "application/json" },
      body: JSON.stringify({ user: "e" }),
    });
    assert.equal(kicked.status, 200);
    await until(() => (erin.state === "closed" ? true : undefined), "erin to be closed");
    assert.equal(seen.log.at(-1), "closed KICKED");
    await assert.rejects(erin.say("still here?"), (err: RoomcastError) => err.code === "KICKED");
  });
  it("keeps nothing per message on a long healthy session, and stays closed once closed (also while a refused handshake waits to be tried again)", async () => {
    const room = freshRoom();
    const reader = client(steady.url, { room, username: "reader" });
    await reader.join();
    const writer = client(steady.url, { room, username: "writer" });
    await writer.join();
    for (let i = 0; i < 20; i++) await writer.say(`m${i}`);
    await until(() => (reader.state === "connected" ? true : undefined), "connected");
    // the client holds no list that grows with the messages it has seen (a day open is ~860k)
    for (const c of [reader, writer]) assert.deepEqual((c as unknown as { recentOwn: unknown[] }).recentOwn, []);

    const limited = await startServe(["--max-connections-per-ip", "1"]);
    cleanup.add(() => limited.stop());
    const first = client(limited.url, { room, username: "first" });
    await first.join();
    const second = client(limited.url, { room, username: "second" });
    const refused = new Promise<void>((resolve) => second.on("error", (e) => e.code === "RATE_LIMITED" && resolve()));
    await withTimeout(refused, 5000, "the per-address refusal");
    second.close();
    first.close();
    // the refused client would have tried again within ~1.5 s: give it 3 s to prove it does not
    await new Promise((r) => setTimeout(r, 3000));
    assert.equal(second.state, "closed");
    const stats = (await (await fetch(`${limited.url}/metrics`)).text()).match(/^roomcast_connections (\d+)/m)?.[1];
    assert.equal(stats, "0", "no connection came back");
  });
});
