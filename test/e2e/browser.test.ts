/**
 * The web client in real Chromium, against real roomcast processes sharing a private Redis.
 */
import assert from "node:assert/strict";
import { mkdirSync } from "node:fs";
import { after, before, describe, it } from "node:test";
import type { Browser, Page } from "playwright-core";
import { TestClient } from "../helpers/client.js";
import { launchBrowser } from "../helpers/browser.js";
import { Cleanup, freePort } from "../helpers/processes.js";
import { startRedis, type TestRedis } from "../helpers/redis.js";
import { startServe, type Roomcast } from "../helpers/roomcast.js";

/** Where screenshots go: test-results/ by default; `SCREENSHOT_DIR=docs npm test` refreshes the README's. */
const SCREENSHOT_DIR = process.env["SCREENSHOT_DIR"] ?? "test-results";

describe("web client in Chromium", () => {
  const cleanup = new Cleanup();
  let redis: TestRedis;
  let a: Roomcast;
  let b: Roomcast;
  let aPort: number;
  let browser: Browser;
  const pageErrors: string[] = [];

  /** A page in its own browser context (own localStorage), entered into a room as `nickname`. */
  async function enter(server: Roomcast | string, room: string, nickname: string, options: { locale?: string; viewport?: { width: number; height: number } } = {}): Promise<Page> {
    const context = await browser.newContext({ locale: options.locale ?? "en-US", viewport: options.viewport ?? { width: 1100, height: 720 } });
    cleanup.add(() => context.close());
    const page = await context.newPage();
    page.on("console", (m) => m.type() === "error" && pageErrors.push(`${nickname}: ${m.text()}`));
    page.on("pageerror", (e) => pageErrors.push(`${nickname}: ${e.message}`));
    const url = typeof server === "string" ? server : server.url;
    await page.goto(`${url}/?room=${encodeURIComponent(room)}`);
    await page.getByLabel(options.locale?.startsWith("zh") ? "昵称" : "Nickname").fill(nickname);
    await page.locator("#enter-form button[type=submit]").click();
    await page.locator('#conn-state[data-state="connected"]').waitFor({ timeout: 10_000 });
    return page;
  }
  const say = async (page: Page, text: string) => {
    await page.locator("#text").fill(text);
    await page.locator("#text").press("Enter");
  };
  const texts = (page: Page) => page.locator("#log .message .text").allTextContents();
  const waitForText = (page: Page, text: string) =>
    page.locator("#log .message .text", { hasText: text }).first().waitFor({ timeout: 10_000 });

  before(async () => {
    redis = await startRedis();
    cleanup.add(() => redis.stop());
    aPort = await freePort();
    [a, b] = await Promise.all([startServe(["--redis", redis.url, "--port", String(aPort)]), startServe(["--redis", redis.url])]);
    cleanup.add(() => a.stop());
    cleanup.add(() => b.stop());
    browser = await launchBrowser();
    cleanup.add(() => browser.close());
  });
  after(() => cleanup.run());

  it("lets two people on two processes see each other join, talk in one order, type, and leave", async () => {
    const ann = await enter(a, "tea", "ann");
    const bob = await enter(b, "tea", "bob");
    await ann.locator("#log .notice", { hasText: "bob joined" }).waitFor();
    await bob.locator("#log .notice", { hasText: "bob joined" }).waitFor();

    await say(ann, "hello from ann");
    await bob.locator("#text").fill("hi ann");
    await bob.getByRole("button", { name: "Send" }).click();
    await say(ann, "how are you?");
    for (const page of [ann, bob]) await waitForText(page, "how are you?");
    await waitForText(ann, "hi ann");
    await waitForText(bob, "hi ann");
    assert.deepEqual(await texts(ann), await texts(bob), "one order on both pages");
    assert.equal(await ann.locator("#log .message.mine").count(), 2, "ann's own messages are set apart");
    assert.equal(await ann.locator("#text").inputValue(), "", "a sent message leaves the box");

    for (const page of [ann, bob]) {
      await page.locator("#online li", { hasText: "ann" }).waitFor();
      await page.locator("#online li", { hasText: "bob" }).waitFor();
    }
    await bob.locator("#text").pressSequentially("still typ");
    await ann.locator("#typing", { hasText: "bob is typing…" }).waitFor();

    await bob.close();
    await ann.locator("#log .notice", { hasText: "bob left" }).waitFor();
    await ann.locator("#online li", { hasText: "bob" }).waitFor({ state: "detached" });
    assert.deepEqual(pageErrors, []);
  });

  it("shows markup in nicknames and messages as text, and never runs it", async () => {
    const nasty = "<img src=x onerror=__xss=1>";
    const attacker = await enter(a, "xss", nasty);
    const victim = await enter(b, "xss", "victim");
    const payloads = [
      '<img src=x onerror="window.__xss=1">',
      "<script>window.__xss=1</script>",
      '<a href="javascript:window.__xss=1">click</a> javascript:window.__xss=1',
      'https://example.com/"><img src=x onerror=window.__xss=1>',
    ];
    for (const text of payloads) await say(attacker, text);
    for (const text of payloads) await waitForText(victim, text);
    assert.deepEqual(await texts(victim), payloads);
    // one author's messages in a row are one group under one name
    assert.deepEqual(await victim.locator("#log .message .author").allTextContents(), [nasty]);
    await victim.locator("#online li", { hasText: nasty }).waitFor();
    for (const page of [attacker, victim]) {
      assert.equal(await page.evaluate("window.__xss"), undefined);
      assert.equal(await page.locator("#log img, #online img, #log script").count(), 0);
      // only the https address became a link, and it ends where the markup begins
      assert.deepEqual(await page.locator("#log a").evaluateAll((links) => links.map((a) => a.getAttribute("href"))), ["https://example.com/"]);
    }
  });

  it("shows reconnecting while its server is down, then every message sent meanwhile exactly once", async () => {
    const page = await enter(`http://127.0.0.1:${aPort}`, "restart", "reader");
    const sender = new TestClient(b.url, "restart");
    cleanup.add(() => sender.close());
    await sender.join("sender");
    await sender.request("say", { text: "before the crash" });
    await waitForText(page, "before the crash");

    await a.stop("SIGKILL");
    await page.locator('#conn-state[data-state="reconnecting"]').waitFor({ timeout: 10_000 });
    assert.equal(await page.locator("#conn-state").textContent(), "Reconnecting…");
    for (let i = 1; i <= 5; i++) assert.ok((await sender.request("say", { text: `while down ${i}` })).ok);

    a = await startServe(["--redis", redis.url, "--port", String(aPort)]);
    cleanup.add(() => a.stop());
    await page.locator('#conn-state[data-state="connected"]').waitFor({ timeout: 20_000 });
    await sender.request("say", { text: "after the restart" });
    await waitForText(page, "after the restart");
    assert.deepEqual(await texts(page), [
      "before the crash",
      ...Array.from({ length: 5 }, (_, i) => `while down ${i + 1}`),
      "after the restart",
    ]);
  });

  it("keeps refused text in the box with a readable notice, and speaks Chinese to Chinese browsers", async () => {
    const page = await enter(a, "zh", "小明", { locale: "zh-CN" });
    assert.equal(await page.getByRole("button", { name: "发送" }).count(), 1);
    await page.locator("#text").fill("x".repeat(2001));
    assert.equal(await page.locator("#counter").textContent(), "2001/2000");
    await page.locator("#text").press("Enter");
    await page.locator("#notice", { hasText: "消息无法发送" }).waitFor();
    assert.equal((await page.locator("#text").inputValue()).length, 2001, "the text stays");
    await say(page, "大家好");
    await waitForText(page, "大家好");
  });

  it("lists active rooms on the entry page, and fits a phone screen", async () => {
    const context = await browser.newContext({ viewport: { width: 390, height: 844 }, locale: "en-US" });
    cleanup.add(() => context.close());
    const page = await context.newPage();
    await page.goto(`${b.url}/`);
    await page.locator(".room-pick", { hasText: "tea" }).waitFor();
    const overflow = (await page.evaluate("document.documentElement.scrollWidth - window.innerWidth")) as number;
    assert.ok(overflow <= 0, `no sideways scrolling (${overflow}px)`);
    await page.getByLabel("Nickname").fill("phone");
    await page.locator(".room-pick", { hasText: "tea" }).click();
    await page.locator('#conn-state[data-state="connected"]').waitFor();
    assert.equal(new URL(page.url()).searchParams.get("room"), "tea", "the room is in the URL, to share");
    const chatOverflow = (await page.evaluate("document.documentElement.scrollWidth - window.innerWidth")) as number;
    assert.ok(chatOverflow <= 0, `no sideways scrolling in the chat (${chatOverflow}px)`);
    // who is online stays in view on a phone too
    await page.locator("#online li", { hasText: "phone" }).waitFor({ state: "visible" });
  });

  it("does not yank a reader who scrolled up: a marker says there are new messages", async () => {
    const page = await enter(a, "scroll", "reader", { viewport: { width: 800, height: 500 } });
    const talker = new TestClient(b.url, "scroll");
    cleanup.add(() => talker.close());
    await talker.join("talker");
    for (let i = 0; i < 18; i++) await talker.request("say", { text: `line ${i}\nwith a second line` });
    await waitForText(page, "line 17");
    const log = page.locator("#log");
    await log.evaluate((el) => (el.scrollTop = 0));
    await talker.request("say", { text: "while you read" });
    await waitForText(page, "while you read");
    assert.equal(await log.evaluate((el) => el.scrollTop), 0, "the view stayed where the reader was");
    await page.locator("#new-marker").waitFor({ state: "visible" });
    await page.locator("#new-marker").click();
    await page.locator("#new-marker").waitFor({ state: "hidden" });
    assert.ok(await log.evaluate((el) => el.scrollHeight - el.scrollTop - el.clientHeight < 40), "the marker scrolls to the newest");
  });

  it("works in memory mode with nothing else installed: two tabs chat after `roomcast serve`", async () => {
    const solo = await startServe();
    cleanup.add(() => solo.stop());
    const one = await enter(solo, "solo", "one");
    const two = await enter(solo, "solo", "two");
    await say(one, "can you read me?");
    await say(two, "loud and clear");
    for (const page of [one, two]) await waitForText(page, "loud and clear");
    assert.deepEqual(await texts(one), ["can you read me?", "loud and clear"]);
    assert.deepEqual(await texts(two), ["can you read me?", "loud and clear"]);
    await one.locator("#online li", { hasText: "two" }).waitFor();
  });

  it("keeps the online list of a big room from presence_diff events, with one line for a crowd", async () => {
    const big = await startServe(["--big-room", "3", "--presence-batch", "100"]);
    cleanup.add(() => big.stop());
    const host = await enter(big, "arena", "host");
    const crowd: TestClient[] = [];
    cleanup.add(() => crowd.forEach((c) => c.close()));
    // two join one by one (the room is still small: a notice each), then twenty at once
    for (const name of ["p1", "p2"]) {
      const c = new TestClient(big.url, "arena");
      crowd.push(c);
      await c.join(name);
    }
    await host.locator("#log .notice", { hasText: "p2 joined" }).waitFor();
    const burst = Array.from({ length: 20 }, () => new TestClient(big.url, "arena"));
    crowd.push(...burst);
    await Promise.all(burst.map((c, i) => c.join(`fan${i}`)));
    await host.locator("#log .notice", { hasText: /\d+ people joined/ }).first().waitFor();
    /** Waits until the online list has exactly n entries (the page's CSP forbids eval-based waits). */
    const onlineCount = async (n: number) => {
      await host.locator("#online li").nth(n - 1).waitFor({ timeout: 10_000 });
      await host.locator("#online li").nth(n).waitFor({ state: "detached", timeout: 10_000 });
    };
    await onlineCount(23);
    for (const name of ["host", "p1", "p2", "fan0", "fan19"]) await host.locator("#online li", { hasText: name }).first().waitFor();
    burst.forEach((c) => c.close());
    await host.locator("#log .notice", { hasText: /\d+ people left/ }).first().waitFor();
    await onlineCount(3);
    assert.deepEqual((await host.locator("#online li").allTextContents()).sort(), ["host", "p1", "p2"]);
    // (a diff of three names or fewer is shown name by name)
    assert.ok((await host.locator("#log .notice", { hasText: "fan" }).count()) < 20, "not a notice per member of the crowd");
  });

  it("takes a screenshot of a lively room", async () => {
    mkdirSync(SCREENSHOT_DIR, { recursive: true });
    const page = await enter(a, "lobby", "ann");
    const lines: [string, string][] = [
      ["bob", "Morning! Is the deploy still on for 10:00?"],
      ["ann", "Yes, rolling restart, one worker at a time. Nobody should notice."],
      ["小明", "大家好!我在上海,网络有点慢。"],
      ["bob", "Even over long-polling it keeps up 👍"],
      ["ann", "And if a worker dies, your client re-joins and gets what it missed."],
      ["小明", "好的,谢谢!"],
    ];
    const others = new Map<string, TestClient>();
    for (const name of ["bob", "小明"]) {
      const c = new TestClient(b.url, "lobby");
      cleanup.add(() => c.close());
      await c.join(name);
      others.set(name, c);
    }
    for (const [name, text] of lines) {
      if (name === "ann") await say(page, text);
      else await others.get(name)!.request("say", { text });
      await waitForText(page, text);
    }
    await others.get("bob")!.request("typing", { typing: true });
    await page.locator("#typing", { hasText: "bob is typing…" }).waitFor();
    await page.locator("#online li", { hasText: "小明" }).waitFor();
    await page.screenshot({ path: `${SCREENSHOT_DIR}/screenshot.png` });
    const phone = await enter(b, "lobby", "小红", { locale: "zh-CN", viewport: { width: 390, height: 760 } });
    await waitForText(phone, "好的,谢谢!");
    await phone.screenshot({ path: `${SCREENSHOT_DIR}/screenshot-phone.png` });
  });
});
