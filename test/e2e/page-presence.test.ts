/**
 * Who is online, as the page shows it, in real Chromium: one line per person (a second tab is not
 * an arrival, closing one of two is not a departure), nothing read from the HTTP API, and presence
 * that heals when a process dies — two `roomcast serve` processes on one Redis behind real nginx.
 *
 * nginx hashes the client's address, and every page comes from 127.0.0.1: all pages through nginx
 * land on one process. So erin's page goes through nginx (to the process that will be killed, found
 * with a probe connection and /metrics), and the watcher's page straight to the other one, the
 * survivor; when erin's process is SIGKILLed, nginx sends erin's reconnect to the survivor.
 */
import assert from "node:assert/strict";
import { after, before, describe, it } from "node:test";
import type { Browser, Page } from "playwright-core";
import { connected, launchBrowser, Pages, say, waitForText } from "../helpers/browser.js";
import { TestClient } from "../helpers/client.js";
import { startNginx } from "../helpers/nginx.js";
import { Cleanup, eventually } from "../helpers/processes.js";
import { startRedis } from "../helpers/redis.js";
import { metric, startServe, type Roomcast } from "../helpers/roomcast.js";

const TTL_S = 3;

describe("who is online, on the web page", () => {
  const cleanup = new Cleanup();
  let browser: Browser;
  let pages: Pages;

  before(async () => {
    browser = await launchBrowser();
    cleanup.add(() => browser.close());
    pages = new Pages(browser, cleanup);
  });
  after(() => cleanup.run());

  const online = (page: Page) => page.locator("#online li").allTextContents();
  const notices = (page: Page) => page.locator("#log .notice").allTextContents();

  it("shows one line per person: a second tab is not an arrival, closing one of two is not a departure", async () => {
    const server = await startServe();
    cleanup.add(() => server.stop());
    const watcher = await pages.enter(server.url, "tabs", "watcher");
    const tab1 = await pages.enter(server.url, "tabs", "ann");
    await watcher.locator("#log .notice", { hasText: "ann joined" }).waitFor();
    const tab2 = await pages.enter(server.url, "tabs", "ann");
    await watcher.locator("#online li", { hasText: "ann ×2" }).waitFor();
    await tab1.close();
    await watcher.locator("#online li", { hasText: /^ann$/ }).waitFor();
    await say(tab2, "still here in one tab");
    await waitForText(watcher, "still here in one tab");
    assert.deepEqual(await notices(watcher), ["watcher joined", "ann joined"], "no line for a second tab or for closing it");
    await tab2.close();
    await watcher.locator("#log .notice", { hasText: "ann left" }).waitFor();
    assert.deepEqual(await online(watcher), ["watcher"]);
    assert.deepEqual(await notices(watcher), ["watcher joined", "ann joined", "ann left"]);
    assert.deepEqual(pages.requests.filter((r) => r.includes("/presence")), [], "presence comes from the connection, not the HTTP API");
    assert.deepEqual(pages.errors, []);
  });

  it("heals when a process dies: the watcher sees erin once, not twice, within the node TTL, and one 'erin joined'", async () => {
    const redis = await startRedis();
    cleanup.add(() => redis.stop());
    const flags = ["--redis", redis.url, "--node-ttl", String(TTL_S)];
    const servers = await Promise.all([startServe(flags), startServe(flags)]);
    for (const s of servers) cleanup.add(() => s.stop());
    const nginx = await startNginx(servers.map((s) => `127.0.0.1:${s.port}`));
    cleanup.add(() => nginx.stop());

    // which process nginx sends 127.0.0.1 to
    const probe = new TestClient(nginx.url, "probe");
    cleanup.add(() => probe.close());
    await probe.connected();
    const counts = await Promise.all(servers.map((s) => metric(s.url, "roomcast_connections")));
    assert.deepEqual([...counts].sort(), [0, 1], "the probe is on one process");
    const doomed: Roomcast = servers[counts.indexOf(1)]!;
    const survivor: Roomcast = servers[counts.indexOf(0)]!;
    probe.close();

    const watcher = await pages.enter(survivor.url, "heal", "watcher");
    const erin = await pages.enter(nginx.url, "heal", "erin");
    await eventually(async () => ((await metric(doomed.url, "roomcast_connections")) === 1 ? true : undefined), 5000, "erin on the process to be killed");
    await watcher.locator("#online li", { hasText: /^erin$/ }).waitFor();
    await say(erin, "before the crash");
    await waitForText(watcher, "before the crash");

    await doomed.stop("SIGKILL");
    const killed = Date.now();
    // erin's page comes back through nginx, on the survivor, recovering with `since`
    await erin.locator('#conn-state[data-state="reconnecting"]').waitFor({ timeout: 10_000 });
    await connected(erin, 20_000);
    assert.equal(await metric(survivor.url, "roomcast_connections"), 2, "both pages on the survivor");
    // erin's return reached the watcher before this message did (one channel, one order)
    await say(erin, "after the crash");
    await waitForText(watcher, "after the crash");
    // so "erin" and not "erin ×2" means the dead process's connection is gone: within the TTL
    const healed = await eventually(
      async () => ((await online(watcher)).join(",") === "erin,watcher" ? Date.now() - killed : undefined),
      (TTL_S + 5) * 1000,
      "the watcher's list to heal",
    );
    assert.ok(healed < (TTL_S + 2) * 1000, `healed ${healed} ms after the kill (node TTL ${TTL_S} s)`);
    assert.deepEqual(await notices(watcher), ["watcher joined", "erin joined"], "one arrival, no departure");
    assert.deepEqual(pages.errors.filter((e) => !/ERR_CONNECTION_REFUSED|502|Bad Gateway|WebSocket/.test(e)), []);
  });
});
