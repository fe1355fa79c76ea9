/**
 * The web page in a busy room, in real Chromium against a real `roomcast serve`: hundreds of
 * messages, phone and desktop widths, a reader who scrolled up.
 */
import assert from "node:assert/strict";
import { after, before, describe, it } from "node:test";
import type { Browser, Page } from "playwright-core";
import { TestClient } from "../helpers/client.js";
import { launchBrowser, Pages, say, waitForText } from "../helpers/browser.js";
import { Cleanup } from "../helpers/processes.js";
import { startServe, type Roomcast } from "../helpers/roomcast.js";

describe("the web page in a busy room", () => {
  const cleanup = new Cleanup();
  let server: Roomcast;
  let browser: Browser;
  let pages: Pages;

  /** A member that is not a page: it posts `count` messages `prefix 1` … `prefix count`, in order. */
  async function talker(room: string, name: string): Promise<TestClient> {
    const client = new TestClient(server.url, room);
    cleanup.add(() => client.close());
    const ack = await client.request("join", { username: name });
    assert.ok(ack.ok, "the talker joined");
    return client;
  }
  async function post(client: TestClient, count: number, prefix: string, lines = 1): Promise<void> {
    for (let i = 1; i <= count; i++) {
      const ack = await client.request("say", { text: [`${prefix} ${i}`, ...Array.from({ length: lines - 1 }, () => "and more")].join("\n") });
      assert.ok(ack.ok, `message ${i} accepted`);
    }
  }
  /** True when the whole of `selector`'s last match is inside the log's visible box and the window. */
  const inView = (page: Page, selector: string) =>
    page.locator(selector).last().evaluate((line) => {
      const box = line.getBoundingClientRect();
      const doc = line.ownerDocument;
      const log = doc.getElementById("log").getBoundingClientRect();
      const x = box.left + Math.min(box.width / 2, 20);
      const y = box.top + box.height / 2;
      return box.top >= log.top - 1 && box.bottom <= log.bottom + 1 && box.bottom <= doc.defaultView.innerHeight && line.contains(doc.elementFromPoint(x, y));
    });
  const atBottom = (page: Page) => page.locator("#log").evaluate((log) => log.scrollHeight - log.scrollTop - log.clientHeight < 40);

  before(async () => {
    server = await startServe(["--rate-limit", "1000", "--rate-burst", "1000"]);
    cleanup.add(() => server.stop());
    browser = await launchBrowser();
    cleanup.add(() => browser.close());
    pages = new Pages(browser, cleanup);
  });
  after(() => cleanup.run());

  it("keeps the newest message and the composer in view on a phone and a desktop, after 300 messages", async () => {
    const phone = await pages.enter(server.url, "busy", "phone", { viewport: { width: 390, height: 844 } });
    const narrow = await pages.enter(server.url, "busy", "narrow", { viewport: { width: 640, height: 700 } });
    const desk = await pages.enter(server.url, "busy", "desk", { viewport: { width: 1280, height: 800 } });
    await post(await talker("busy", "talker"), 300, "busy");
    for (const [page, name] of [[phone, "phone"], [narrow, "narrow"], [desk, "desk"]] as const) {
      await waitForText(page, "busy 300");
      assert.ok((await page.locator("#log .message").count()) >= 300, `${name}: every message is in the log`);
      assert.ok(await inView(page, "#log .message"), `${name}: the newest message is on screen`);
      const box = (await page.locator("#text").boundingBox())!;
      assert.ok(box.y + box.height <= page.viewportSize()!.height, `${name}: the text box is on screen`);
      const hit = await page.evaluate(`document.elementFromPoint(${box.x + box.width / 2}, ${box.y + box.height / 2})?.id`);
      assert.equal(hit, "text", `${name}: a tap on the text box lands on the text box`);
      const send = (await page.getByRole("button", { name: "Send" }).boundingBox())!;
      const sendHit = await page.evaluate(`document.elementFromPoint(${send.x + send.width / 2}, ${send.y + send.height / 2})?.closest("button")?.textContent`);
      assert.equal(sendHit, "Send", `${name}: the Send button is not covered`);

      await page.locator("#text").click();
      await page.keyboard.type(`typed on ${name}`);
      await page.keyboard.press("Enter");
      await waitForText(page, `typed on ${name}`);
      assert.equal(await page.locator("#text").inputValue(), "", `${name}: the sent text left the box`);
      assert.ok(await inView(page, "#log .message"), `${name}: the message just sent is on screen`);
      const overflow = (await page.evaluate("document.documentElement.scrollWidth - window.innerWidth")) as number;
      assert.ok(overflow <= 0, `${name}: no sideways scrolling (${overflow}px)`);
    }
    assert.deepEqual(pages.errors, []);
  });

  it("keeps at most 1000 messages of a room that runs all day, the oldest going while the reader is at the newest", async () => {
    const page = await pages.enter(server.url, "all-day", "keeper");
    const other = await talker("all-day", "talker");
    await post(other, 1250, "talk");
    await waitForText(page, "talk 1250");
    const count = await page.locator("#log .message").count();
    assert.ok(count >= 1000 && count <= 1100, `${count} messages kept`);
    assert.ok(await inView(page, "#log .message"), "the newest message is on screen");
    // the log now starts mid-conversation: with a day, and the name over its first message
    const first = await page.locator("#log > li").first().evaluate((li) => li.className);
    assert.equal(first, "day");
    assert.equal(await page.locator("#log > li").nth(1).locator(".author").textContent(), "talker");
    assert.deepEqual(pages.errors, []);
  });

  it("scrolls your own message into view, and counts the others' new messages while you read above", async () => {
    const page = await pages.enter(server.url, "reading", "reader", { viewport: { width: 800, height: 500 } });
    const other = await talker("reading", "talker");
    await post(other, 30, "earlier", 2);
    await waitForText(page, "earlier 30");
    const log = page.locator("#log");
    await log.evaluate((el) => (el.scrollTop = 0));

    await say(page, "my own words");
    await waitForText(page, "my own words");
    await page.locator("#new-marker").waitFor({ state: "hidden" });
    assert.ok(await atBottom(page), "your own message scrolled the log to the newest");
    assert.ok(await inView(page, "#log .message"), "your own message is on screen");

    await log.evaluate((el) => (el.scrollTop = 0));
    await post(other, 3, "while you read");
    await waitForText(page, "while you read 3");
    assert.equal(await log.evaluate((el) => el.scrollTop), 0, "the reader's view did not move");
    await page.locator("#new-marker", { hasText: "3 new messages ↓" }).waitFor();
    await post(other, 1, "one more");
    await page.locator("#new-marker", { hasText: "4 new messages ↓" }).waitFor();
    await page.locator("#new-marker").click();
    await page.locator("#new-marker").waitFor({ state: "hidden" });
    assert.ok(await atBottom(page), "the button scrolls to the newest");

    // one message: singular
    await log.evaluate((el) => (el.scrollTop = 0));
    await post(other, 1, "single");
    await page.locator("#new-marker", { hasText: "1 new message ↓" }).waitFor();
    assert.deepEqual(pages.errors, []);
  });
});
