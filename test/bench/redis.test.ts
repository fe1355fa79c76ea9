/**
 * `npm run bench:redis` at a tiny size: one round of a second or less per run, on one Redis (with
 * its replica) and on a 3-shard Redis Cluster, with and without --redis-wait 1, then the tables,
 * the chart and RENDER from the saved runs. The figures are not checked (too few messages to mean
 * anything); what is: every figure comes from where it should.
 */
import assert from "node:assert/strict";
import { mkdtempSync, readFileSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { after, describe, it } from "node:test";
import { fileURLToPath } from "node:url";
import { holds, measureAll, summarize, SYSTEMS, type Plan, type Saved } from "../../bench/redis-run.js";
import type { BenchReport } from "../../bench/bench.js";
import { Cleanup, startChild } from "../helpers/processes.js";

const SCRIPT = fileURLToPath(new URL("../../bench/redis-run.js", import.meta.url));
const cleanup = new Cleanup();
after(() => cleanup.run());

const plan: Plan = {
  rounds: 1,
  durationS: 0.6,
  warmupS: 0.3,
  idleS: 0.5,
  // 30 rooms: each of the 3 shards gets some (all 30 on two of them: (2/3)^30 ≈ 5e-6)
  rooms: 30,
  clients: 2,
  senders: 1,
  rate: 60,
  steps: [30, 60],
  // the mechanics, not this loaded machine's p99: every step holds
  limits: { minRatio: 0.999, maxP99Ms: 10_000 },
  procs: 1,
  roomcastArgs: [],
};

const sum = (xs: number[]) => xs.reduce((a, b) => a + b, 0);

describe("npm run bench:redis", () => {
  it("measures one Redis and a 3-shard Cluster with and without --redis-wait 1, and tells it in tables, a chart and again from the saved runs", async () => {
    const runs = await measureAll(plan);

    assert.deepEqual(runs.cost.map((r) => r.system).sort(), ["cluster", "cluster-wait", "redis", "redis-wait"]);
    for (const r of runs.cost) {
      const { topology, wait } = SYSTEMS[r.system];
      const what = `${r.system}: ${JSON.stringify(r.shards)}`;
      assert.equal(r.shards.length, topology === "cluster" ? 3 : 1, what);
      assert.equal(new Set(r.shards.map((s) => s.address)).size, r.shards.length, `one entry per master: ${what}`);
      assert.deepEqual([r.report.lost, r.report.duplicated, r.report.outOfOrder, r.report.deliveryRatio], [0, 0, 0, 1], what);
      // every master stored messages in the window and spent CPU on them; Redis's count is the
      // generator's, give or take the messages at the edges of the window
      for (const s of r.shards) assert.ok(s.messages > 0 && s.cpuS > 0, what);
      const messages = sum(r.shards.map((s) => s.messages));
      const sent = r.report.offeredPerS * r.report.options.durationS;
      assert.ok(Math.abs(messages - sent) <= Math.max(6, sent * 0.25), `Redis stored ${messages} messages in the window, the generator sent ${sent}`);
      assert.ok(r.replicasCpuS > 0, `the replicas replicate: ${what}`);
      assert.ok(r.idle.seconds >= 0.5 && r.idle.mastersCpuS >= 0 && r.idle.replicasCpuS >= 0, JSON.stringify(r.idle));
      // WAIT once per message on the message's own master with --redis-wait 1, never without;
      // every WAIT confirmed by a replica in time
      for (const s of r.shards) {
        if (wait) assert.ok(Math.abs(s.waits - s.messages) <= 3, `WAIT per message: ${what}`);
        else assert.equal(s.waits, 0, what);
      }
      assert.equal(r.waitShort, 0, what);
    }

    // the step-up, without WAIT, on each topology: every step (they all hold here)
    assert.deepEqual(runs.saturation.map((r) => r.system).sort(), ["cluster", "redis"]);
    for (const r of runs.saturation) {
      assert.deepEqual(r.steps.map((s) => [s.messagesPerS, s.held]), [[30, true], [60, true]], r.system);
      assert.equal(r.highestHeld, 60);
      for (const s of r.steps) assert.ok(sum(s.shards.map((x) => x.messages)) > 0);
    }

    const dir = mkdtempSync(join(tmpdir(), "roomcast-bench-redis-"));
    cleanup.add(() => rmSync(dir, { recursive: true, force: true }));
    const saved: Saved = { machine: { cpus: 2, model: "test", node: process.version, redis: "7", date: new Date().toISOString(), loadBefore: [0, 0, 0], loadAfter: [0, 0, 0] }, plan, runs };
    const printed = summarize(saved, dir);
    const lines = printed.split("\n");
    for (const system of Object.values(SYSTEMS)) assert.ok(lines.some((l) => l.startsWith(`| ${system.label} |`)), `a row for ${system.label}:\n${printed}`);
    // per shard: three figures for the Cluster, none for one Redis
    assert.equal(lines.find((l) => l.startsWith("| Cluster 3+3 | "))!.split("|")[8]!.split(" / ").length, 3, printed);
    assert.equal(lines.find((l) => l.startsWith("| one Redis | "))!.split("|")[8]!.trim(), "–", printed);
    assert.ok(lines.some((l) => l.startsWith("| one Redis | 60 | 60 | none (every step held) |")), printed);
    const svg = readFileSync(join(dir, "redis.svg"), "utf8");
    assert.match(svg, /^<svg /);
    assert.equal((svg.match(/font-weight="bold"/g) ?? []).length, 6, "six panels");
    assert.deepEqual((JSON.parse(readFileSync(join(dir, "redis.json"), "utf8")) as Saved).runs.cost.length, 4);

    // RENDER: the same tables and chart from the saved runs, by the command itself
    const again = join(dir, "again");
    const render = startChild(process.execPath, [SCRIPT], { RENDER: join(dir, "redis.json"), OUT: again });
    assert.equal(await render.exited, 0, render.output());
    assert.equal(render.output(), printed);
    assert.equal(readFileSync(join(again, "redis.svg"), "utf8"), svg);
  });

  it("holds a step only with delivery and p99 within the limits", () => {
    const report = (ratio: number, p99: number) => ({ deliveryRatio: ratio, latencyMs: { p50: 1, p95: 1, p99, max: p99 } }) as BenchReport;
    const limits = { minRatio: 0.999, maxP99Ms: 100 };
    assert.equal(holds(report(1, 100), limits), true);
    assert.equal(holds(report(1, 100.5), limits), false);
    assert.equal(holds(report(0.9989, 20), limits), false);
  });

  it("refuses a bad setting in one line, before starting anything", async () => {
    for (const [name, value, message] of [
      ["ROUNDS", "two", "bench:redis: ROUNDS must be a number of at least 1, not \"two\"\n"],
      ["ROUNDS", "1.5", "bench:redis: ROUNDS must be a whole number, not 1.5\n"],
      ["STEPS", "2000,1000", "bench:redis: STEPS must be rising messages/s, comma-separated, not \"2000,1000\"\n"],
    ] as const) {
      const child = startChild(process.execPath, [SCRIPT], { [name]: value });
      assert.equal(await child.exited, 1);
      assert.equal(child.output(), message);
    }
  });
});
