/**
 * How the page shows a conversation, in real Chromium against a real `roomcast serve`: links,
 * mentions, groups of one author's messages, bubbles as wide as their text, times and days in the
 * reader's locale.
 */
import assert from "node:assert/strict";
import { after, before, describe, it } from "node:test";
import type { Browser } from "playwright-core";
import { talker as talkerIn } from "../helpers/client.js";
import { launchBrowser, Pages, say, waitForText } from "../helpers/browser.js";
import { Cleanup } from "../helpers/processes.js";
import { startServe, type Roomcast } from "../helpers/roomcast.js";

describe("the web page's log", () => {
  const cleanup = new Cleanup();
  let server: Roomcast;
  let browser: Browser;
  let pages: Pages;

  const talker = (room: string, name: string) => talkerIn(server.url, room, name, cleanup);

  before(async () => {
    server = await startServe(["--rate-limit", "100", "--rate-burst", "100"]);
    cleanup.add(() => server.stop());
    browser = await launchBrowser();
    cleanup.add(() => browser.close());
    pages = new Pages(browser, cleanup);
  });
  after(() => cleanup.run());

  it("turns http(s) and www. addresses into links, and nothing else", async () => {
    const page = await pages.enter(server.url, "links", "reader");
    const bob = await talker("links", "bob");
    const long = `https://example.com/${"segment/".repeat(40)}end`;
    const lines = [
      "see https://example.com/docs.",
      "(read https://en.wikipedia.org/wiki/Foo_(bar)) and www.example.org, ok?",
      "javascript:alert(1) data:text/html,hi ftp://example.com www. http://",
      "看这里https://example.cn/路径，谢谢",
      long,
    ];
    for (const line of lines) await bob(line);
    await waitForText(page, "segment/end");
    const links = await page.locator("#log .message a").evaluateAll((as) =>
      as.map((a) => ({ text: a.textContent, href: a.getAttribute("href"), rel: a.getAttribute("rel"), target: a.getAttribute("target") })),
    );
    const expected = [
      ["https://example.com/docs", "https://example.com/docs"],
      ["https://en.wikipedia.org/wiki/Foo_(bar)", "https://en.wikipedia.org/wiki/Foo_(bar)"],
      ["www.example.org", "https://www.example.org/"],
      ["https://example.cn/路径", "https://example.cn/%E8%B7%AF%E5%BE%84"],
      [long, long],
    ];
    assert.deepEqual(
      links,
      expected.map(([text, href]) => ({ text, href, rel: "noopener noreferrer", target: "_blank" })),
    );
    // the whole text is still there, punctuation after a link included
    assert.deepEqual(await page.locator("#log .message .text").allTextContents(), lines);
    // a long address breaks inside its bubble: nothing sticks out of the log
    const overflow = await page.locator("#log").evaluate((log) => log.scrollWidth - log.clientWidth);
    assert.ok(overflow <= 0, `no sideways scrolling in the log (${overflow}px)`);
  });

  it("marks messages that mention you (@name), and only those", async () => {
    const page = await pages.enter(server.url, "mentions", "ann");
    const bob = await talker("mentions", "bob");
    for (const text of ["@ann can you look?", "@anna is someone else", "mail bob@ann.org", "thanks @ANN!"]) await bob(text);
    await waitForText(page, "thanks @ANN!");
    const marked = await page.locator("#log .message.mentions-me .text").allTextContents();
    assert.deepEqual(marked, ["@ann can you look?", "thanks @ANN!"]);
    assert.deepEqual(await page.locator("#log mark.mention").allTextContents(), ["@ann", "@ANN"]);
  });

  it("groups one author's messages under one name and time, bubbles as wide as their text", async () => {
    const page = await pages.enter(server.url, "groups", "ann");
    const bob = await talker("groups", "bob");
    for (const text of ["one", "two", "three"]) await bob(text);
    await waitForText(page, "three");
    await say(page, "mine");
    await waitForText(page, "mine");
    await bob("four");
    await waitForText(page, "four");
    const lines = await page.locator("#log .message").evaluateAll((items) =>
      items.map((li) => ({
        author: li.querySelector(".author")?.textContent ?? null,
        text: li.querySelector(".text").textContent,
        mine: li.classList.contains("mine"),
      })),
    );
    assert.deepEqual(lines, [
      { author: "bob", text: "one", mine: false },
      { author: null, text: "two", mine: false },
      { author: null, text: "three", mine: false },
      { author: "ann (you)", text: "mine", mine: true },
      { author: "bob", text: "four", mine: false },
    ]);
    // a screen reader still hears who wrote a continued message
    assert.equal(await page.locator("#log .message.continued .visually-hidden").first().textContent(), "bob: ");
    const widths = await page.locator("#log .bubble").evaluateAll((bubbles) => bubbles.map((b) => b.getBoundingClientRect().width));
    const logWidth = await page.locator("#log").evaluate((log) => log.clientWidth);
    assert.ok(widths.every((w) => w < 120), `short messages have narrow bubbles (${widths.join(", ")} in a log of ${logWidth})`);
    // your own messages are on the other side
    const ownBox = (await page.locator("#log .message.mine .bubble").boundingBox())!;
    const otherBox = (await page.locator("#log .message:not(.mine) .bubble").first().boundingBox())!;
    assert.ok(ownBox.x > otherBox.x + logWidth / 2, "your own bubble is on the right");
  });

  it("writes times in the reader's locale without a leading zero, in English and Chinese", async () => {
    const en = await pages.enter(server.url, "times", "reader");
    const zh = await pages.enter(server.url, "times", "读者", { locale: "zh-CN" });
    const bob = await talker("times", "bob");
    await bob("what time is it?");
    for (const page of [en, zh]) await waitForText(page, "what time is it?");
    const enTime = (await en.locator("#log .message .time").last().textContent()) ?? "";
    const zhTime = (await zh.locator("#log .message .time").last().textContent()) ?? "";
    assert.match(enTime, /^([1-9]|1[0-2]):[0-5]\d\s(AM|PM)$/);
    assert.match(zhTime, /^(凌晨|早上|上午|中午|下午|晚上)([1-9]|1[0-2]):[0-5]\d$/);
    const ts = Date.parse((await en.locator("#log .message time").last().getAttribute("datetime"))!);
    assert.equal(enTime, new Intl.DateTimeFormat("en-US", { hour: "numeric", minute: "2-digit" }).format(ts));
    assert.equal(await en.locator("#log .day").first().textContent(), "Today");
    assert.equal(await zh.locator("#log .day").first().textContent(), "今天");
  });

  it("puts a day separator over each day: Today becomes Yesterday at midnight, then a date", async () => {
    // The page's clock starts 30 s before tonight's midnight (the messages are from today).
    const lateTonight = new Date();
    lateTonight.setHours(23, 59, 30, 0);
    const page = await pages.open("about:blank");
    await page.clock.install({ time: lateTonight });
    await page.goto(`${server.url}/?room=days`);
    await page.locator("#nickname").fill("night owl");
    await page.locator("#enter-form button[type=submit]").click();
    const bob = await talker("days", "bob");
    await bob("before midnight");
    await waitForText(page, "before midnight");
    assert.deepEqual(await page.locator("#log .day").allTextContents(), ["Today"]);

    await page.clock.fastForward("01:00");
    await page.locator("#log .day", { hasText: "Yesterday" }).waitFor();
    assert.deepEqual(await page.locator("#log .day").allTextContents(), ["Yesterday"]);

    await page.clock.fastForward(48 * 3600_000);
    const ts = Date.parse((await page.locator("#log .message time").first().getAttribute("datetime"))!);
    const now = new Date(lateTonight.getTime() + 49 * 3600_000);
    const year = now.getFullYear() === new Date(ts).getFullYear() ? {} : { year: "numeric" as const };
    const date = new Intl.DateTimeFormat("en-US", { weekday: "long", month: "long", day: "numeric", ...year }).format(ts);
    await page.locator("#log .day", { hasText: date }).waitFor();
  });
});
