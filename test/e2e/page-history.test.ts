/**
 * The page and the room's past, in real Chromium against a real `roomcast serve` with its server
 * API: scrolling up through a long history page by page down to the room's start, and messages
 * the application deletes leaving every open page.
 */
import assert from "node:assert/strict";
import { after, before, describe, it } from "node:test";
import type { Browser, Page } from "playwright-core";
import { launchBrowser, Pages, texts, waitForText } from "../helpers/browser.js";
import { Cleanup, eventually } from "../helpers/processes.js";
import { startServe, type Roomcast } from "../helpers/roomcast.js";
import { ServerApi } from "../helpers/server-api.js";

const API_KEY = "page-history-api-key-0123";

describe("the web page and the room's past", () => {
  const cleanup = new Cleanup();
  let server: Roomcast;
  let api: ServerApi;
  let browser: Browser;
  let pages: Pages;

  before(async () => {
    server = await startServe([], { ROOMCAST_API_KEY: API_KEY });
    cleanup.add(() => server.stop());
    api = new ServerApi(server.url, API_KEY);
    browser = await launchBrowser();
    cleanup.add(() => browser.close());
    pages = new Pages(browser, cleanup);
  });
  after(() => cleanup.run());

  /**
   * The page's errors: none, not even a 401 for the list of active rooms (with an API key the
   * server's read API is private, and the server tells the page so: it does not ask).
   */
  const pageErrors = () => pages.errors;

  /** The id of the first message in the log. */
  const firstId = (page: Page) => page.locator("#log .message").first().getAttribute("data-id");

  it("loads earlier messages page by page as the reader scrolls to the top, keeping the view, down to the room's start", async () => {
    const room = "archive";
    const all = Array.from({ length: 320 }, (_, i) => `old message ${i + 1}`);
    for (const [i, text] of all.entries()) await api.post(room, i % 7 === 3 ? "ann" : "bot", text);
    const page = await pages.enter(server.url, room, "reader", { viewport: { width: 900, height: 700 } });
    await waitForText(page, "old message 320");
    assert.deepEqual(await texts(page), all.slice(-50), "the newest 50 on entering");
    assert.equal(await page.locator("#log .start").count(), 0, "not the start yet");

    let loads = 0;
    while ((await page.locator("#log .start").count()) === 0) {
      assert.ok(++loads <= 10, "the start is reached in a few pages");
      const first = (await firstId(page))!;
      // the reader scrolls to the top: where the old first message is on screen then
      const expected = await page.locator("#log").evaluate((log, id) => {
        log.scrollTop = 0;
        const line = log.querySelector(`[data-id="${id}"]`);
        return line.getBoundingClientRect().bottom - log.getBoundingClientRect().top;
      }, first);
      await eventually(async () => ((await firstId(page)) !== first ? true : undefined), 10_000, `page ${loads} of older messages`);
      const line = await page.locator("#log").evaluate((log, id) => {
        const line = log.querySelector(`[data-id="${id}"]`);
        return line.getBoundingClientRect().bottom - log.getBoundingClientRect().top;
      }, first);
      assert.ok(Math.abs(line - expected) <= 2, `page ${loads}: what the reader looked at stayed in place (${expected} → ${line})`);
    }
    await page.locator("#log .start", { hasText: "This is the start of #archive." }).waitFor();
    assert.deepEqual(await texts(page), all, "every message once, in order");
    assert.ok(loads >= 5, `${loads} pages of 50 or more`);
    assert.equal(await page.locator("#log .start").count(), 1);
    assert.deepEqual(pageErrors(), []);
  });

  it("takes a message the application deletes off every open page, the group's name moving to the next one", async () => {
    const room = "edits";
    const ann = await pages.enter(server.url, room, "ann");
    const bob = await pages.enter(server.url, room, "bob");
    const ids: string[] = [];
    for (const text of ["first words", "second words", "third words"]) ids.push(await api.post(room, "carol", text));
    await api.post(room, "dave", "dave's words");
    for (const page of [ann, bob]) await waitForText(page, "dave's words");

    await api.delete(room, ids[0]!);
    for (const page of [ann, bob]) {
      await page.locator(`#log [data-id="${ids[0]}"]`).waitFor({ state: "detached" });
      assert.deepEqual(await texts(page), ["second words", "third words", "dave's words"]);
      // "second words" now starts carol's group: it carries her name
      assert.equal(await page.locator(`#log [data-id="${ids[1]}"] .author`).textContent(), "carol");
    }
    await api.delete(room, ids[2]!);
    for (const page of [ann, bob]) {
      await page.locator(`#log [data-id="${ids[2]}"]`).waitFor({ state: "detached" });
      assert.deepEqual(await texts(page), ["second words", "dave's words"]);
    }
    // a page that enters later never sees them
    const late = await pages.enter(server.url, room, "late");
    await waitForText(late, "dave's words");
    assert.deepEqual(await texts(late), ["second words", "dave's words"]);
    assert.deepEqual(pageErrors(), []);
  });
});
