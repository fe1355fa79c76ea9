/**
 * Issue 13 case 4 at test size: the reconnect avalanche (lab/avalanche.ts) with 2,000 clients in
 * 100 rooms over both app hosts, app1 lost: every client that lost its connection recovers
 * (connected, re-joined with since), nothing acknowledged is lost, every client has its room's
 * messages once, in order. The full size is `npm run lab:avalanche -- --clients 10000`.
 */
import assert from "node:assert/strict";
import { describe, it } from "node:test";
import { formatSummary, runAvalanche } from "../../lab/avalanche.js";
import { labUnavailable } from "../../lab/netns.js";

const unavailable = labUnavailable();
const CLIENTS = 2000;

describe("the multi-host lab: a reconnect avalanche", { skip: unavailable }, () => {
  it(`loses app1 under ${CLIENTS} clients in 100 rooms: every lost client recovers through app2, nothing lost`, async (t) => {
    // runAvalanche tears its lab down itself, also when it fails
    const r = await runAvalanche({ clients: CLIENTS, rooms: 100, clientHosts: 6, recoveryTimeoutMs: 45_000 }, (line) => t.diagnostic(line));
    for (const line of formatSummary(r).split("\n")) t.diagnostic(line);
    t.diagnostic(`recovered p50 ${r.rejoined.p50} ms, p99 ${r.rejoined.p99} ms, max ${r.rejoined.max} ms`);
    assert.ok(r.onApp1 >= CLIENTS / 2 - 1, `half the clients on app1: ${r.onApp1}`);
    assert.ok(r.lost >= r.onApp1, `every client on app1 lost its connection: ${r.lost} of ${r.onApp1}`);
    assert.equal(r.neverRecovered, 0, "every client that lost its connection recovered");
    assert.ok(r.allReady, "every client connected, joined, with its room's messages at the end");
    assert.ok(r.messages.acked > 0, "messages were acknowledged through the loss");
    assert.equal(r.messages.ackedLost, 0, "every acknowledged message is in its room's history");
    assert.equal(r.messages.wrongClients, 0, `every client has its room's messages once, in order: ${JSON.stringify(r.messages)}`);
    // jittered back-off: the first attempts are spread over ~500 ms (500 ms ± 50 %), not one instant
    assert.ok(r.firstAttempt.max - r.firstAttempt.min >= 200, `first attempts spread: ${r.firstAttempt.min}–${r.firstAttempt.max} ms`);
  });
});
