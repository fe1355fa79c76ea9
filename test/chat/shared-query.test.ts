import assert from "node:assert/strict";
import { describe, it } from "node:test";
import { SharedQuery } from "../../src/chat/shared-query.js";

/** A query whose answers the test releases one by one; each answer is the query's number. */
function controlled() {
  const pending: (() => void)[] = [];
  let started = 0;
  const shared = new SharedQuery(() => {
    const n = ++started;
    return new Promise<number>((resolve) => pending.push(() => resolve(n)));
  });
  const release = async () => {
    await new Promise((r) => setImmediate(r));
    pending.shift()?.();
    await new Promise((r) => setImmediate(r));
  };
  return { shared, release, started: () => started };
}

describe("SharedQuery", () => {
  it("answers a caller with a query started after it asked, shared by everyone who asked meanwhile", async () => {
    const { shared, release, started } = controlled();
    const first = shared.get();
    // these ask while query 1 is running: it may predate their change, so they share query 2
    const waiting = [shared.get(), shared.get(), shared.get()];
    assert.equal(started(), 1);
    await release();
    assert.equal(await first, 1);
    assert.equal(started(), 2);
    const late = shared.get(); // asks while query 2 runs: gets query 3
    await release();
    assert.deepEqual(await Promise.all(waiting), [2, 2, 2]);
    await release();
    assert.equal(await late, 3);
    assert.equal(started(), 3);
  });

  it("starts afresh once idle, and passes a failure to the callers that shared it only", async () => {
    let calls = 0;
    const shared = new SharedQuery(async () => {
      calls++;
      if (calls === 1) throw new Error("down");
      return calls;
    });
    const failing = shared.get();
    const next = shared.get();
    await assert.rejects(failing, /down/);
    assert.equal(await next, 2);
    assert.equal(await shared.get(), 3);
  });
});
