/**
 * Sending while the connection is down, in real Chromium against real `roomcast serve` processes
 * on a private Redis: what the reader sends waits, marked "sending…", and goes out by itself when
 * the connection is back, once and in order; a refused message comes back to the box.
 */
import assert from "node:assert/strict";
import { after, before, describe, it } from "node:test";
import type { Browser } from "playwright-core";
import { launchBrowser, Pages, say, texts, waitForText } from "../helpers/browser.js";
import { Cleanup, freePort } from "../helpers/processes.js";
import { startRedis, type TestRedis } from "../helpers/redis.js";
import { startServe, type Roomcast } from "../helpers/roomcast.js";

describe("the web page sending while offline", () => {
  const cleanup = new Cleanup();
  let redis: TestRedis;
  /** The sender's server, on a fixed port: killed and started again there. */
  let flaky: Roomcast;
  let flakyPort: number;
  let steady: Roomcast;
  let browser: Browser;
  let pages: Pages;

  before(async () => {
    redis = await startRedis();
    cleanup.add(() => redis.stop());
    flakyPort = await freePort();
    [flaky, steady] = await Promise.all([startServe(["--redis", redis.url, "--port", String(flakyPort)]), startServe(["--redis", redis.url])]);
    cleanup.add(() => flaky.stop());
    cleanup.add(() => steady.stop());
    browser = await launchBrowser();
    cleanup.add(() => browser.close());
    pages = new Pages(browser, cleanup);
  });
  after(() => cleanup.run());

  it("keeps what is sent while the server is down, marked sending…, and sends it once, in order, when it is back", async () => {
    const room = "tunnel";
    const ann = await pages.enter(flaky.url, room, "ann");
    const bob = await pages.enter(steady.url, room, "bob");
    await say(ann, "before the tunnel");
    await waitForText(bob, "before the tunnel");

    await flaky.stop("SIGKILL");
    await ann.locator('#conn-state[data-state="reconnecting"]').waitFor({ timeout: 10_000 });
    await say(ann, "in the tunnel 1");
    await say(ann, "in the tunnel 2");
    // out of the box, into the log as waiting
    assert.equal(await ann.locator("#text").inputValue(), "", "the box is free for the next one");
    const waiting = ann.locator("#log .outgoing");
    await waiting.nth(1).waitFor();
    assert.deepEqual(await waiting.locator(".text").allTextContents(), ["in the tunnel 1", "in the tunnel 2"]);
    assert.deepEqual(await waiting.locator(".status").allTextContents(), ["sending…", "sending…"]);
    assert.deepEqual(await texts(ann), ["before the tunnel"], "not shown as sent");

    flaky = await startServe(["--redis", redis.url, "--port", String(flakyPort)]);
    cleanup.add(() => flaky.stop());
    await waitForText(bob, "in the tunnel 2", 30_000);
    await waitForText(ann, "in the tunnel 2", 30_000);
    await waiting.first().waitFor({ state: "detached" });
    const expected = ["before the tunnel", "in the tunnel 1", "in the tunnel 2"];
    assert.deepEqual(await texts(bob), expected, "once each, in order, for the others");
    assert.deepEqual(await texts(ann), expected, "and for the sender");
    assert.equal(await ann.locator("#log .message.mine").count(), 3);
    await say(ann, "out of the tunnel");
    await waitForText(bob, "out of the tunnel");
    assert.deepEqual(await texts(bob), [...expected, "out of the tunnel"]);
    assert.deepEqual(pages.errors.filter((e) => !e.includes("ERR_CONNECTION_REFUSED")), []);
  });

  it("puts a refused message back in the box with its notice", async () => {
    const page = await pages.enter(steady.url, "refusals", "carl");
    // invisible characters only: the page cannot tell, the server refuses it (BAD_TEXT)
    await say(page, "\u200b\u200b");
    await page.locator("#notice", { hasText: "That message cannot be sent" }).waitFor();
    assert.equal(await page.locator("#text").inputValue(), "\u200b\u200b", "the text is back in the box");
    assert.equal(await page.locator("#log .outgoing").count(), 0, "and no longer waiting in the log");
    await say(page, "a real one");
    await waitForText(page, "a real one");
    await page.locator("#notice").waitFor({ state: "hidden" });
  });
});
