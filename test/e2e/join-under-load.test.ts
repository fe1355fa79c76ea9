/**
 * Joining a busy room on another process: the history is read on one Redis connection while the
 * room's messages arrive on another, so the newest messages of a history may reach the process
 * after it. Each must still reach the joiner once, in order.
 */
import assert from "node:assert/strict";
import { after, before, describe, it } from "node:test";
import { compareIds } from "../../src/chat/ids.js";
import { TestClient } from "../helpers/client.js";
import { Cleanup } from "../helpers/processes.js";
import { startRedis } from "../helpers/redis.js";
import { startServe, type Roomcast } from "../helpers/roomcast.js";

describe("joins into a busy room", () => {
  const cleanup = new Cleanup();
  let a: Roomcast;
  let b: Roomcast;

  before(async () => {
    const redis = await startRedis();
    cleanup.add(() => redis.stop());
    const flags = ["--redis", redis.url, "--rate-limit", "100000", "--rate-burst", "100000"];
    [a, b] = await Promise.all([startServe(flags), startServe(flags)]);
    cleanup.add(() => a.stop());
    cleanup.add(() => b.stop());
  });
  after(() => cleanup.run());

  it("gives every joiner each message once, in order, while thousands a second are sent on the other process", async () => {
    const room = "busy";
    const sender = new TestClient(a.url, room);
    cleanup.add(() => sender.close());
    assert.deepEqual(await sender.join("sender"), { ok: true });
    let sending = true;
    let sent = 0;
    // five messages in flight at any time: as fast as the two processes take them
    const senders = Array.from({ length: 5 }, async () => {
      while (sending) {
        const ack = await sender.request("say", { text: `m${sent++}` });
        assert.ok(ack.ok, JSON.stringify(ack));
      }
    });

    let joins = 0;
    const broken: string[] = [];
    const until = Date.now() + 4000;
    while (Date.now() < until) {
      const wave = Array.from({ length: 20 }, () => new TestClient(b.url, room));
      await Promise.all(wave.map((c) => c.join("joiner")));
      await new Promise((r) => setTimeout(r, 50)); // let live messages follow the history
      for (const c of wave) {
        joins++;
        const ids = c.said().map((m) => m.id);
        const twice = ids.filter((id, i) => ids.indexOf(id) !== i);
        const disorder = ids.findIndex((id, i) => i > 0 && compareIds(ids[i - 1]!, id) >= 0);
        if (twice.length > 0 || disorder >= 0) broken.push(`twice: ${twice.slice(0, 3).join(",")}; out of order at ${disorder}`);
        c.close();
      }
    }
    sending = false;
    await Promise.all(senders);
    assert.ok(sent > 1000, `the room was busy (${sent} messages)`);
    assert.deepEqual(broken, [], `${broken.length} of ${joins} joiners got a message twice or out of order`);
  });
});
