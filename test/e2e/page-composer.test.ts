/**
 * The page's composer, nickname field, history entries, keyboard and interface text, in real
 * Chromium against real `roomcast serve` processes (one on a private Redis).
 */
import assert from "node:assert/strict";
import { createConnection } from "node:net";
import { after, before, describe, it } from "node:test";
import type { Browser } from "playwright-core";
import { connected, launchBrowser, Pages, say, texts, waitForText } from "../helpers/browser.js";
import { Cleanup } from "../helpers/processes.js";
import { startRedis, type TestRedis } from "../helpers/redis.js";
import { startServe, type Roomcast } from "../helpers/roomcast.js";

/** Sends one command to a Redis server and resolves with its first reply line. */
function redisCommand(port: number, command: string): Promise<string> {
  return new Promise((resolve, reject) => {
    const socket = createConnection({ port, host: "127.0.0.1" }, () => socket.write(`${command}\r\n`));
    socket.once("data", (d) => {
      socket.destroy();
      resolve(d.toString().trim());
    });
    socket.once("error", reject);
  });
}

describe("the web page's composer and navigation", () => {
  const cleanup = new Cleanup();
  let redis: TestRedis;
  let strict: Roomcast;
  let server: Roomcast;
  let browser: Browser;
  let pages: Pages;

  before(async () => {
    redis = await startRedis();
    cleanup.add(() => redis.stop());
    // one message a second, no burst: the second of two quick sends is refused
    [strict, server] = await Promise.all([startServe(["--redis", redis.url, "--rate-limit", "1", "--rate-burst", "1"]), startServe()]);
    cleanup.add(() => strict.stop());
    cleanup.add(() => server.stop());
    browser = await launchBrowser();
    cleanup.add(() => browser.close());
    pages = new Pages(browser, cleanup);
  });
  after(() => cleanup.run());

  it("keeps a refused message in the box with its notice, until a later send succeeds", async () => {
    const page = await pages.enter(strict.url, "burst", "quick");
    // Messages go out one at a time, in order (the client's outbox): the second of two quick
    // ones is sent when the first is answered, and refused for going too fast.
    await say(page, "first of two");
    await say(page, "second of two");
    await page.locator("#notice", { hasText: "You are sending too fast" }).waitFor();
    await waitForText(page, "first of two");
    assert.equal(await page.locator("#text").inputValue(), "second of two", "the refused text is back in the box");
    assert.equal(await page.locator("#notice").textContent(), "You are sending too fast: wait a moment.", "with its notice");
    assert.deepEqual(await texts(page), ["first of two"]);
    assert.equal(await page.locator("#log .outgoing").count(), 0, "nothing left waiting");

    // A send held up (Redis pauses writes) shows as "sending…" after a moment and keeps the
    // notice; its success clears it. First the rate limit's bucket refills (one message a
    // second): a matter of time, with no event to wait for.
    await new Promise((r) => setTimeout(r, 1100));
    assert.equal(await redisCommand(redis.port, "CLIENT PAUSE 1500 WRITE"), "+OK");
    await page.locator("#text").press("Enter");
    assert.equal(await page.locator("#text").inputValue(), "", "out of the box while it is sent");
    await page.locator("#log .outgoing .status", { hasText: "sending…" }).waitFor();
    assert.equal(await page.locator("#notice").textContent(), "You are sending too fast: wait a moment.");
    await waitForText(page, "second of two");
    await page.locator("#notice").waitFor({ state: "hidden" });
    assert.equal(await page.locator("#notice").textContent(), "");
    await page.locator("#log .outgoing").waitFor({ state: "detached" });
    assert.deepEqual(await texts(page), ["first of two", "second of two"]);
  });

  it("takes a nickname of at most 32 characters, counted as a person sees them", async () => {
    const page = await pages.open(`${server.url}/`);
    const nickname = page.locator("#nickname");
    await nickname.pressSequentially("x".repeat(40));
    assert.equal(await nickname.inputValue(), "x".repeat(32), "typing stops at 32");
    // an emoji with a skin tone is one character to a person (and four UTF-16 units)
    await nickname.fill("👍🏽".repeat(40));
    assert.equal(await nickname.inputValue(), "👍🏽".repeat(32), "pasting is cut at 32");
    await nickname.fill("👍🏽".repeat(20));
    assert.equal(await nickname.inputValue(), "👍🏽".repeat(20), "20 of them are 20 characters: all kept");
  });

  it("puts rooms in the history: Back returns to the room list, Forward enters again", async () => {
    const page = await pages.open(`${server.url}/`);
    await page.locator("#nickname").fill("walker");
    await page.locator("#room").fill("hall");
    await page.locator("#enter-form button[type=submit]").click();
    await connected(page);
    assert.equal(new URL(page.url()).searchParams.get("room"), "hall");
    await say(page, "hello hall");
    await waitForText(page, "hello hall");

    await page.goBack();
    await page.locator("#enter-view").waitFor({ state: "visible" });
    assert.equal(new URL(page.url()).search, "", "the room list's address");
    assert.ok(await page.locator("#chat-view").isHidden());
    // still in the room: the entry page lists it under "Your rooms"
    await page.locator('#my-rooms .room-tab[data-room="hall"]').waitFor();

    await page.goForward();
    await page.locator("#chat-view").waitFor({ state: "visible" });
    assert.equal(new URL(page.url()).searchParams.get("room"), "hall");
    await connected(page);
    await waitForText(page, "hello hall");
    await say(page, "back again");
    await waitForText(page, "back again");
    assert.deepEqual(pages.errors, []);
  });

  it("closes what is open with Esc: the composer's notice goes, the text stays", async () => {
    const page = await pages.enter(server.url, "esc", "escaper");
    await page.locator("#text").fill("x".repeat(2001));
    await page.locator("#text").press("Enter");
    await page.locator("#notice", { hasText: "That message cannot be sent" }).waitFor();
    await page.locator("#text").press("Escape");
    assert.equal(await page.locator("#notice").textContent(), "", "Esc cleared the notice");
    assert.equal((await page.locator("#text").inputValue()).length, 2001, "and kept the text");
  });

  it("labels the log for screen readers, and writes Chinese with Chinese punctuation", async () => {
    const en = await pages.enter(server.url, "labels", "reader");
    assert.equal(await en.locator("#log").getAttribute("aria-label"), "Messages");

    const zh = await pages.open(`${server.url}/`, { locale: "zh-CN" });
    await zh.locator("#nickname").fill("小明");
    await zh.locator("#room").fill("not a room!");
    await zh.locator("#enter-form button[type=submit]").click();
    await zh.locator("#enter-error", { hasText: "房间名无效" }).waitFor();
    const shown = [await zh.locator(".tagline").textContent(), await zh.locator("#enter-error").textContent()];
    for (const text of shown) {
      assert.doesNotMatch(text ?? "", /[\u4e00-\u9fff][,:!?]|[,:!?][\u4e00-\u9fff]/, `full-width punctuation in "${text}"`);
    }
  });
});
