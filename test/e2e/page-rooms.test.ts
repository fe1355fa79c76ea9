/**
 * Several rooms at once in one page, in real Chromium against a real `roomcast serve`: the
 * sidebar with unread counts, switching, leaving one room, the rooms remembered across reloads,
 * and the rooms panel of a phone.
 */
import assert from "node:assert/strict";
import { after, before, describe, it } from "node:test";
import type { Browser, Page } from "playwright-core";
import { talker as talkerIn } from "../helpers/client.js";
import { connected, launchBrowser, Pages, say, texts, waitForText } from "../helpers/browser.js";
import { Cleanup, eventually } from "../helpers/processes.js";
import { getJson, startServe, type Roomcast } from "../helpers/roomcast.js";

describe("several rooms in one page", () => {
  const cleanup = new Cleanup();
  let server: Roomcast;
  let browser: Browser;
  let pages: Pages;

  const talker = (room: string, name: string) => talkerIn(server.url, room, name, cleanup);
  /** Enters another room from the chat, through "Join a room". */
  async function joinAnother(page: Page, room: string): Promise<void> {
    if (!(await page.locator("#add-room").isVisible())) await page.locator("#rooms-toggle").click();
    await page.locator("#add-room").click();
    await page.locator("#room").fill(room);
    await page.locator("#enter-form button[type=submit]").click();
    await connected(page);
  }
  const tab = (page: Page, room: string) => page.locator(`#room-tabs .room-tab[data-room="${room}"]`);
  const present = async (room: string) =>
    (await getJson<{ users: { username: string }[] }>(`${server.url}/api/rooms/${room}/presence`)).body.users.map((u) => u.username);

  before(async () => {
    server = await startServe();
    cleanup.add(() => server.stop());
    browser = await launchBrowser();
    cleanup.add(() => browser.close());
    pages = new Pages(browser, cleanup);
  });
  after(() => cleanup.run());

  it("keeps a sidebar of your rooms with unread counts, switches without leaving, leaves one, remembers them", async () => {
    const page = await pages.enter(server.url, "tea", "ann");
    await joinAnother(page, "coffee");
    assert.equal(await page.locator("#room-title").textContent(), "# coffee");
    assert.deepEqual(await page.locator("#room-tabs .room-tab").evaluateAll((tabs) => tabs.map((b) => b.dataset.room)), ["tea", "coffee"]);
    assert.equal(await tab(page, "coffee").getAttribute("aria-current"), "page");

    const teaTalk = await talker("tea", "bob");
    await teaTalk("tea is ready");
    await teaTalk("who wants some?");
    await tab(page, "tea").locator(".badge", { hasText: "2" }).waitFor();
    assert.equal(await tab(page, "tea").getAttribute("aria-label"), "# tea, 2 unread messages");
    await say(page, "coffee first");
    await waitForText(page, "coffee first");

    await tab(page, "tea").click();
    await waitForText(page, "who wants some?");
    assert.equal(new URL(page.url()).searchParams.get("room"), "tea");
    assert.equal(await tab(page, "tea").locator(".badge").count(), 0, "seen: no badge");
    assert.deepEqual(await texts(page), ["tea is ready", "who wants some?"]);
    // both rooms are joined at once
    assert.ok((await present("tea")).includes("ann"));
    assert.ok((await present("coffee")).includes("ann"));
    // Back returns to the room seen before
    await page.goBack();
    await waitForText(page, "coffee first");

    await tab(page, "tea").click();
    await page.locator("#leave").click();
    await page.locator("#room-title", { hasText: "# coffee" }).waitFor();
    assert.deepEqual(await page.locator("#room-tabs .room-tab").evaluateAll((tabs) => tabs.map((b) => b.dataset.room)), ["coffee"]);
    await eventually(async () => ((await present("tea")).includes("ann") ? undefined : true), 10_000, "ann to leave tea");
    assert.ok((await present("coffee")).includes("ann"), "still in coffee");

    await joinAnother(page, "juice");
    await page.reload();
    await connected(page);
    assert.equal(await page.locator("#room-title").textContent(), "# juice");
    assert.deepEqual(await page.locator("#room-tabs .room-tab").evaluateAll((tabs) => tabs.map((b) => b.dataset.room)), ["coffee", "juice"]);
    await tab(page, "coffee").click();
    await waitForText(page, "coffee first");
    assert.deepEqual(pages.errors, []);
  });

  it("folds the rooms into a panel on a phone, which never covers the composer", async () => {
    const page = await pages.enter(server.url, "bus", "rider", { viewport: { width: 390, height: 844 } });
    assert.ok(await page.locator("#rooms").isHidden(), "no sidebar on a phone");
    await joinAnother(page, "train");
    const busTalk = await talker("bus", "driver");
    await busTalk("next stop");
    await page.locator("#rooms-toggle-badge", { hasText: "1" }).waitFor();

    await page.locator("#rooms-toggle").click();
    await page.locator("#rooms").waitFor({ state: "visible" });
    assert.equal(await page.locator("#rooms-toggle").getAttribute("aria-expanded"), "true");
    const box = (await page.locator("#text").boundingBox())!;
    const hit = await page.evaluate(`document.elementFromPoint(${box.x + box.width / 2}, ${box.y + box.height / 2})?.id`);
    assert.equal(hit, "text", "the open panel leaves the composer alone");
    await page.keyboard.press("Escape");
    await page.locator("#rooms").waitFor({ state: "hidden" });

    await page.locator("#rooms-toggle").click();
    await tab(page, "bus").click();
    await page.locator("#rooms").waitFor({ state: "hidden" });
    await waitForText(page, "next stop");
    await page.locator("#rooms-toggle-badge").waitFor({ state: "hidden" });
    const overflow = (await page.evaluate("document.documentElement.scrollWidth - window.innerWidth")) as number;
    assert.ok(overflow <= 0, `no sideways scrolling (${overflow}px)`);
  });
});
