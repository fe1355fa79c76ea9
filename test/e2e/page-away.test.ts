/**
 * A page kept open in the background, in real Chromium against a real `roomcast serve`: the
 * unread count in the title, and desktop notifications (opt-in, with the browser's permission).
 *
 * Headless Chromium reports every page as visible whatever is done to its tab or window (tried:
 * other tabs brought to the front, the window minimised, headful Chromium under Xvfb), so these
 * tests set the document's visibility themselves: an init script makes `visibilityState` a
 * switch and fires `visibilitychange`, as the browser does when the tab is hidden. Notifications
 * are real (the permission is granted to the page's origin); an init script only records each
 * one the page creates, through a subclass that calls the real constructor.
 */
import assert from "node:assert/strict";
import { after, before, describe, it } from "node:test";
import type { Browser, Page } from "playwright-core";
import { talker as talkerIn } from "../helpers/client.js";
import { connected, launchBrowser, Pages, say, waitForText } from "../helpers/browser.js";
import { Cleanup } from "../helpers/processes.js";
import { startServe, type Roomcast } from "../helpers/roomcast.js";

const VISIBILITY_SWITCH = `(() => {
  let hidden = false;
  Object.defineProperty(Document.prototype, "visibilityState", { configurable: true, get: () => (hidden ? "hidden" : "visible") });
  Object.defineProperty(Document.prototype, "hidden", { configurable: true, get: () => hidden });
  window.__setHidden = (value) => {
    hidden = value;
    document.dispatchEvent(new Event("visibilitychange"));
  };
})();`;

const NOTIFICATION_RECORDER = `(() => {
  window.__notified = [];
  const Real = window.Notification;
  class Recorded extends Real {
    constructor(title, options) {
      super(title, options);
      window.__notified.push({ title, body: options && options.body });
    }
  }
  window.Notification = Recorded;
})();`;

describe("the web page in a background tab", () => {
  const cleanup = new Cleanup();
  let server: Roomcast;
  let browser: Browser;
  let pages: Pages;

  const talker = (room: string, name: string) => talkerIn(server.url, room, name, cleanup);
  const setHidden = (page: Page, hidden: boolean) => page.evaluate(`window.__setHidden(${hidden})`);
  const notified = (page: Page) => page.evaluate("window.__notified") as Promise<{ title: string; body: string }[]>;

  before(async () => {
    server = await startServe();
    cleanup.add(() => server.stop());
    browser = await launchBrowser();
    cleanup.add(() => browser.close());
    pages = new Pages(browser, cleanup);
  });
  after(() => cleanup.run());

  it("counts new messages in the title while the page is hidden, and clears the count when it is seen", async () => {
    const page = await pages.enter(server.url, "tea", "ann", { initScripts: [VISIBILITY_SWITCH] });
    assert.equal(await page.title(), "tea · roomcast");
    const bob = await talker("tea", "bob");
    await bob("seen at once");
    await waitForText(page, "seen at once");
    assert.equal(await page.title(), "tea · roomcast", "no count while the page is seen");

    await setHidden(page, true);
    await say(page, "my own words do not count");
    for (const text of ["one", "two", "three"]) await bob(text);
    await waitForText(page, "three");
    assert.equal(await page.title(), "(3) tea · roomcast");

    await setHidden(page, false);
    assert.equal(await page.title(), "tea · roomcast");
    assert.deepEqual(pages.errors, []);
  });

  it("notifies of mentions or of every message, as chosen, when the reader is elsewhere", async () => {
    const page = await pages.enter(server.url, "desk", "ann", {
      initScripts: [VISIBILITY_SWITCH, NOTIFICATION_RECORDER],
      permissions: ["notifications"],
    });
    const bob = await talker("desk", "bob");
    assert.equal(await page.locator("#notify-mode").inputValue(), "off", "nothing until the reader asks");
    await page.locator("#notify-mode").selectOption("mentions");
    await setHidden(page, true);
    await bob("a message for everyone");
    await bob("@ann can you look at this?");
    await waitForText(page, "can you look");
    assert.deepEqual(await notified(page), [{ title: "bob in #desk", body: "@ann can you look at this?" }]);

    await page.locator("#notify-mode").selectOption("all");
    await bob("every word now");
    await waitForText(page, "every word now");
    assert.equal((await notified(page)).length, 2);
    assert.equal((await notified(page))[1]!.body, "every word now");

    // seen: no notification for the room on screen
    await setHidden(page, false);
    await bob("you are looking");
    await waitForText(page, "you are looking");
    assert.equal((await notified(page)).length, 2);

    // the choice is remembered
    await page.reload();
    await connected(page);
    assert.equal(await page.locator("#notify-mode").inputValue(), "all");
  });

  it("notifies of a message in another of your rooms while you read this one", async () => {
    const page = await pages.enter(server.url, "front", "ann", { initScripts: [NOTIFICATION_RECORDER], permissions: ["notifications"] });
    await page.locator("#notify-mode").selectOption("all");
    await page.locator("#add-room").click();
    await page.locator("#room").fill("back");
    await page.locator("#enter-form button[type=submit]").click();
    await connected(page);
    const front = await talker("front", "bob");
    await front("over here");
    await page.locator('#room-tabs .room-tab[data-room="front"] .badge', { hasText: "1" }).waitFor();
    assert.deepEqual(await notified(page), [{ title: "bob in #front", body: "over here" }]);
  });

  it("falls back to off, and says why, when the browser refuses notifications", async () => {
    const page = await pages.enter(server.url, "denied", "ann");
    await page.locator("#notify-mode").selectOption("mentions");
    await page.locator("#notify-note", { hasText: "Notifications are blocked" }).waitFor();
    assert.equal(await page.locator("#notify-mode").inputValue(), "off");
  });
});
