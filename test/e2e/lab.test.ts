/**
 * The multi-host lab (lab/): the article's layout on network namespaces — redis, two app hosts
 * running `roomcast cluster`, nginx on the edge, client hosts in different /24s — each fault
 * primitive doing what it says, and teardown leaving nothing, also when the owner is interrupted,
 * crashes or is SIGKILLed.
 */
import assert from "node:assert/strict";
import { once } from "node:events";
import { existsSync } from "node:fs";
import { after, before, describe, it } from "node:test";
import { fileURLToPath } from "node:url";
import type { ClientHost } from "../../lab/clients.js";
import { Lab, PORT_BASE, REDIS_PORT } from "../../lab/lab.js";
import { isRunning, labUnavailable, listLinks, listNetns, parseLinkName, parseNetnsName, pidsIn } from "../../lab/netns.js";
import { runtimeDir } from "../../lab/owners.js";
import { Cleanup, eventually, startChild, type Child } from "../helpers/processes.js";

const unavailable = labUnavailable();
const LAB_MAIN = fileURLToPath(new URL("../../lab/main.js", import.meta.url));
const LAB_MODULE = fileURLToPath(new URL("../../lab/lab.js", import.meta.url));

/** Everything named after lab `id` on this machine, and which of `pids` still run. */
function leftoversOf(id: string, pids: number[] = []) {
  return {
    netns: listNetns().filter((n) => parseNetnsName(n)?.id === id),
    links: listLinks().filter((l) => parseLinkName(l) === id),
    running: pids.filter(isRunning),
    dir: existsSync(runtimeDir(id)),
  };
}
const NOTHING = { netns: [], links: [], running: [], dir: false };

/** Waits until nothing of lab `id` is left (a SIGKILLed process is gone once its parent reaped it). */
async function assertNothingLeft(id: string, pids: number[]): Promise<void> {
  await eventually(() => (leftoversOf(id, pids).running.length === 0 ? true : undefined), 5000, "the lab's processes to be gone").catch(() => {});
  assert.deepEqual(leftoversOf(id, pids), NOTHING);
}

function pidsOfLab(id: string): number[] {
  return listNetns()
    .filter((n) => parseNetnsName(n)?.id === id)
    .flatMap(pidsIn);
}

describe("the multi-host lab", { skip: unavailable }, () => {
  describe("the layout and its faults", () => {
    const cleanup = new Cleanup();
    let lab: Lab;
    /** Client hosts whose members landed on app1 and on app2, with their runners. */
    let onApp1: { host: string; runner: ClientHost; member: string };
    let onApp2: { host: string; runner: ClientHost; member: string };
    /** Members opened in the room so far. */
    let opened = 0;
    const room = "lobby";
    const healthOf = async (from: string, host: string) => (await lab.fetchFrom(from, `${lab.workerUrl(host, 0)}/healthz`, 1500)).status;

    before(async () => {
      lab = await Lab.start({ clientHosts: 8, roomcastFlags: ["--rate-limit", "200", "--rate-burst", "200"] });
      cleanup.add(() => lab.stop());
    });
    after(() => cleanup.run());

    it("brings up redis, two app hosts of two workers and nginx on the edge, each at its own address", async (t) => {
      const addresses = [...lab.hosts.values()].map((h) => h.address);
      assert.equal(new Set(addresses).size, addresses.length);
      for (const address of addresses) assert.match(address, /^10\.77\.\d+\.\d+$/);
      const subnets = lab.clientHosts.map((h) => lab.host(h).address.split(".").slice(0, 3).join("."));
      assert.equal(new Set(subnets).size, lab.clientHosts.length, `client hosts in different /24s: ${subnets}`);
      for (const host of lab.appHosts) {
        for (const worker of [0, 1]) assert.equal((await lab.get(`${lab.workerUrl(host, worker)}/healthz`)).status, 200, `${host} worker ${worker}`);
      }
      const stats = await lab.get(`${lab.edgeUrl}/api/stats`);
      assert.equal(stats.status, 200);
      assert.equal((JSON.parse(stats.body) as { nodes: number }).nodes, 4, "four workers share the one Redis");
      assert.ok(await lab.reaches("app1", "redis", REDIS_PORT));
      assert.ok(await lab.reaches("edge", "app2", PORT_BASE + 1));
      t.diagnostic(`lab ${lab.id} in slot ${lab.slot} (${lab.plan.network}): ${[...lab.hosts.values()].map((h) => `${h.name} ${h.address}`).join(", ")}`);
    });

    it("spreads members from different /24s over both app hosts through the edge, and they talk", async (t) => {
      const landed: string[] = [];
      for (const host of lab.clientHosts) {
        const before = await Promise.all(lab.appHosts.map((a) => lab.connectionsOn(a)));
        const runner = lab.clients(host);
        const member = `m-${host}`;
        await runner.open({ url: lab.edgeUrl, room, names: [member], trackPresence: true });
        opened++;
        const now = await Promise.all(lab.appHosts.map((a) => lab.connectionsOn(a)));
        const app = lab.appHosts.find((_, i) => now[i]! > before[i]!);
        assert.ok(app, `${member} counted on an app host`);
        landed.push(`${host}→${app}`);
        if (app === "app1") onApp1 ??= { host, runner, member };
        else onApp2 ??= { host, runner, member };
        if (onApp1 && onApp2) break;
      }
      t.diagnostic(`nginx's hash $remote_addr: ${landed.join(", ")}`);
      assert.ok(onApp1 && onApp2, `members landed on both app hosts: ${landed}`);
      // the edge sees each member's own host address (no NAT anywhere)
      const peers = lab.tcpPeers("edge");
      for (const { host } of [onApp1, onApp2]) assert.ok(peers.includes(lab.host(host).address), `the edge sees ${host}: ${peers}`);

      const ids = [
        await onApp1.runner.sayReliably(onApp1.member, "hello from app1's side"),
        await onApp2.runner.sayReliably(onApp2.member, "hello from app2's side"),
      ];
      for (const { runner, member } of [onApp1, onApp2]) {
        const settled = await runner.settle({ names: [member], expected: ids, timeoutMs: 10_000 });
        assert.ok(settled.done && settled.wrong === 0, JSON.stringify(settled));
      }
      const texts = (await onApp2.runner.messages(onApp2.member)).messages.map((m) => m.text);
      assert.deepEqual(texts, ["hello from app1's side", "hello from app2's side"]);
    });

    it("kills every process of a host (machine lost): its members move to the other app host through the edge", async () => {
      const pids = pidsIn(lab.host("app2").netns);
      assert.ok(pids.length >= 3, `app2 runs a primary and two workers: ${pids}`);
      lab.killHost("app2");
      try {
        assert.deepEqual(pidsIn(lab.host("app2").netns), []);
        assert.equal((await lab.get(`${lab.workerUrl("app2", 0)}/healthz`, 1000)).status, 0, "nothing answers on app2");
        const settled = await onApp2.runner.settle({ names: [onApp2.member], timeoutMs: 15_000 });
        assert.ok(settled.done, JSON.stringify(settled));
        const [report] = (await onApp2.runner.report({ names: [onApp2.member] })).reports;
        assert.ok(report!.disconnects >= 1 && report!.rejoins >= 1, JSON.stringify(report));
        // (app2 may have had members of other client hosts too: they move in their own time)
        await eventually(async () => ((await lab.connectionsOn("app1")) === opened ? true : undefined), 15_000, `all ${opened} members on app1`);
      } finally {
        await lab.startHost("app2");
      }
      assert.equal((await lab.get(`${lab.workerUrl("app2", 0)}/healthz`)).status, 200);
    });

    it("pulls a host's cable for a while and plugs it back", async () => {
      assert.ok(await lab.reaches("app2", "redis", REDIS_PORT), "app2 reaches redis with its cable in");
      const cut = lab.cutLink("app2", 2);
      assert.equal((await lab.get(`${lab.workerUrl("app2", 0)}/healthz`, 800)).status, 0, "app2 unreachable while its cable is out");
      assert.equal(await lab.reaches("app2", "redis", REDIS_PORT, 800), false, "app2 reaches nothing either");
      assert.equal((await lab.get(`${lab.workerUrl("app1", 0)}/healthz`)).status, 200, "app1 unaffected");
      await cut;
      await eventually(async () => ((await lab.get(`${lab.workerUrl("app2", 0)}/healthz`, 1000)).status === 200 ? true : undefined), 10_000, "app2 back");
    });

    it("cuts app1 from redis (reject) while the edge still reaches app1: app1's /healthz answers 503; healed, 200", async () => {
      lab.partition("app1", "redis", "reject");
      try {
        assert.equal(await lab.reaches("app1", "redis", REDIS_PORT), false);
        await eventually(async () => ((await healthOf("edge", "app1")) === 503 ? true : undefined), 15_000, "app1's /healthz to answer 503 from the edge");
        assert.equal(await healthOf("edge", "app2"), 200, "app2 keeps its Redis");
        assert.ok(await lab.reaches("edge", "app1", PORT_BASE));
      } finally {
        lab.heal("app1", "redis");
      }
      await eventually(async () => ((await healthOf("edge", "app1")) === 200 ? true : undefined), 15_000, "app1's /healthz to answer 200 after the heal");
    });

    it("cuts app1 from redis silently (drop): app1 reaches no Redis, the edge still reaches app1, app2 its Redis", async (t) => {
      lab.partition("app1", "redis");
      try {
        const probe = await lab.fetchFrom("app1", `http://${lab.plan.redis}:${REDIS_PORT}/`, 1000);
        assert.match(probe.body, /timeout|aborted/i, "no answer at all: packets vanish");
        assert.equal(await lab.reaches("app1", "redis", REDIS_PORT, 1000), false);
        assert.ok(await lab.reaches("app2", "redis", REDIS_PORT));
        assert.ok(await lab.reaches("edge", "app1", PORT_BASE));
        // What roomcast makes of a silent cut is the product's business (not asserted here).
        t.diagnostic(`app1's /healthz seen from the edge 1 s into a silent Redis cut: ${await healthOf("edge", "app1")}`);
      } finally {
        lab.heal("app1", "redis");
      }
      assert.ok(await lab.reaches("app1", "redis", REDIS_PORT));
    });

    it("cuts the edge from app1 while app1 keeps Redis: members from app1's /24 join through app2", async () => {
      lab.partition("edge", "app1");
      try {
        assert.equal(await lab.reaches("edge", "app1", PORT_BASE, 1000), false);
        assert.ok(await lab.reaches("app1", "redis", REDIS_PORT));
        assert.equal((await lab.get(`${lab.workerUrl("app1", 0)}/healthz`)).status, 200, "app1 itself is fine");
        const before = await lab.connectionsOn("app2");
        // hashed to app1, nginx gives up on it after proxy_connect_timeout and takes the next upstream
        await onApp1.runner.open({ url: lab.edgeUrl, room, names: ["newcomer"], timeoutMs: 20_000 });
        assert.equal(await lab.connectionsOn("app2"), before + 1);
        await onApp1.runner.close(["newcomer"]);
      } finally {
        lab.heal("edge", "app1");
      }
      assert.ok(await lab.reaches("edge", "app1", PORT_BASE));
    });

    it("restarts Redis empty, then with its data", async () => {
      // Answered once roomcast has Redis again (right after a restart a read may fail, and nginx
      // then answers with its own error page), so judged by eventually.
      const history = () =>
        eventually(
          async () => {
            const res = await lab.get(`${lab.edgeUrl}/api/rooms/${room}/history?limit=100`);
            return res.status === 200 ? (JSON.parse(res.body) as { messages: { id: string }[] }).messages.map((m) => m.id) : undefined;
          },
          15_000,
          "the room's history through the edge",
        );
      const before = await onApp1.runner.sayReliably(onApp1.member, "before the restart");
      assert.ok((await history()).includes(before));
      await lab.restartRedis();
      assert.deepEqual(await history(), [], "an empty Redis: the history is gone");
      const kept = await onApp1.runner.sayReliably(onApp1.member, "kept across a restart with its data");
      await lab.restartRedis({ keepData: true });
      assert.deepEqual(await history(), [kept]);
      for (const host of lab.appHosts) {
        await eventually(async () => ((await lab.get(`${lab.workerUrl(host, 0)}/healthz`)).status === 200 ? true : undefined), 15_000, `${host} on Redis`);
      }
    });

    it("restarts a host's roomcast (SIGTERM): its members come back through the edge", async () => {
      assert.ok((await lab.connectionsOn("app1")) >= 1, "members on app1");
      const primary = lab.service("app1").process.pid;
      await lab.restartRoomcast("app1");
      assert.notEqual(lab.service("app1").process.pid, primary, "a new cluster on app1");
      for (const { runner, member } of [onApp1, onApp2]) {
        const settled = await runner.settle({ names: [member], timeoutMs: 15_000 });
        assert.ok(settled.done, JSON.stringify(settled));
      }
      const id = await onApp2.runner.sayReliably(onApp2.member, "after the restart");
      const settled = await onApp1.runner.settle({ names: [onApp1.member], expected: [id] });
      assert.ok(settled.done && settled.wrong === 0, JSON.stringify(settled));
    });

    it("slows a link with its own TCP proxy: each way late by the delay, changed while it runs", async () => {
      const slow = await lab.slowLink(onApp1.host, "edge", 80, { delayMs: 150 });
      try {
        await onApp1.runner.open({ url: lab.edgeUrl, room, names: ["slowpoke"] });
        const late = await onApp1.runner.say("slowpoke", "through a slow link");
        assert.ok(late.ack.ok, JSON.stringify(late));
        assert.ok(late.ms >= 300, `a round trip takes twice the delay at least: ${late.ms} ms`);
        await slow.set({ delayMs: 0 });
        const quick = await onApp1.runner.say("slowpoke", "through a fast link");
        assert.ok(quick.ack.ok && quick.ms < 300, `delay changed while the connection stays: ${quick.ms} ms`);
      } finally {
        await slow.remove();
        await onApp1.runner.close(["slowpoke"]);
      }
    });

    it("stops and leaves nothing: no namespace, veth, bridge, process or file", async () => {
      const pids = lab.pids();
      assert.ok(pids.length > 10, `the lab runs its processes: ${pids.length}`);
      await lab.stop();
      await assertNothingLeft(lab.id, pids);
    });
  });

  describe("teardown when the owner does not stop the lab", () => {
    const cleanup = new Cleanup();
    after(() => cleanup.run());

    /**
     * A process that brings a small lab up and prints its id: `npm run lab`, or a script that
     * crashes (throws, uncaught) when it gets SIGUSR2, so that the test looks at its lab first.
     */
    const startOwner = async (owner: "lab" | "script"): Promise<{ child: Child; id: string; pids: number[] }> => {
      const child =
        owner === "lab"
          ? startChild(process.execPath, [LAB_MAIN, "--app-hosts", "1", "--workers", "1", "--client-hosts", "1"])
          : startChild(process.execPath, [
              "--input-type=module",
              "-e",
              `const { Lab } = await import(${JSON.stringify(LAB_MODULE)});
               const lab = await Lab.start({ appHosts: 1, workers: 1, clientHosts: 1 });
               process.stdout.write("roomcast lab " + lab.id + " is up\\n");
               process.on("SIGUSR2", () => { throw new Error("a crash"); });
               setInterval(() => {}, 1000);`,
            ]);
      cleanup.add(() => child.stop("SIGKILL"));
      const line = await child.waitForLine((l) => / is up/.test(l), 60_000, "the lab to be up");
      const id = /roomcast lab ([0-9a-f]{4}) /.exec(line)![1]!;
      const pids = pidsOfLab(id);
      assert.ok(pids.length >= 3, `its processes run: ${pids}`);
      return { child, id, pids };
    };

    // Three owners side by side (three slots): each test watches its own lab only.
    describe("owners that tear their lab down themselves", { concurrency: true }, () => {
      it("`npm run lab` stopped with SIGTERM (as Ctrl-C does with SIGINT) tears everything down", async () => {
        const { child, id, pids } = await startOwner("lab");
        const closed = once(child.process, "close"); // its output read to the end, not only exited
        child.process.kill("SIGTERM");
        assert.equal(await child.exited, 0);
        await closed;
        assert.match(child.output(), new RegExp(`roomcast lab ${id}: torn down \\(SIGTERM\\)`));
        await assertNothingLeft(id, pids);
      });

      it("an owner that gets SIGINT tears its lab down, then dies of the signal", async () => {
        const { child, id, pids } = await startOwner("script");
        const closed = once(child.process, "close");
        child.process.kill("SIGINT");
        assert.equal(await child.exited, "SIGINT");
        await closed;
        // by the owner itself, not by a sweep of another lab starting meanwhile
        assert.match(child.output(), new RegExp(`roomcast lab ${id}: torn down \\(SIGINT\\)`));
        await assertNothingLeft(id, pids);
      });

      it("an owner that crashes (uncaught exception) tears its lab down", async () => {
        const { child, id, pids } = await startOwner("script");
        const closed = once(child.process, "close");
        child.process.kill("SIGUSR2");
        assert.equal(await child.exited, 1);
        await closed;
        assert.match(child.output(), /a crash/);
        assert.match(child.output(), new RegExp(`roomcast lab ${id}: torn down \\(exit 1\\)`));
        await assertNothingLeft(id, pids);
      });
    });

    // After the owners above, alone: the sweep of its next start would tear their labs down too.
    describe("a lab left behind", () => {
      it("a SIGKILLed owner's lab is swept when the next lab starts", async () => {
        const { child, id, pids } = await startOwner("lab");
        child.process.kill("SIGKILL");
        await child.exited;
        const left = leftoversOf(id, pids);
        assert.ok(left.netns.length > 0 && left.running.length > 0, "a SIGKILLed owner leaves its lab behind");
        const next = await Lab.start({ appHosts: 1, workers: 1, clientHosts: 1 });
        cleanup.add(() => next.stop());
        await assertNothingLeft(id, pids);
        await next.stop();
      });
    });
  });
});
