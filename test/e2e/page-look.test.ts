/**
 * How the page looks, in real Chromium against a real `roomcast serve`: dark mode from the
 * system's setting, a desktop layout that uses the window, and an empty room that says how to
 * invite people.
 */
import assert from "node:assert/strict";
import { after, before, describe, it } from "node:test";
import type { Browser, Page } from "playwright-core";
import { TestClient } from "../helpers/client.js";
import { launchBrowser, Pages, waitForText } from "../helpers/browser.js";
import { Cleanup } from "../helpers/processes.js";
import { startServe, type Roomcast } from "../helpers/roomcast.js";

/** The relative luminance (0 black … 1 white) of a computed `rgb(r, g, b)` colour. */
function luminance(rgb: string): number {
  const [r, g, b] = (rgb.match(/\d+(\.\d+)?/g) ?? []).slice(0, 3).map((c) => {
    const v = Number(c) / 255;
    return v <= 0.03928 ? v / 12.92 : ((v + 0.055) / 1.055) ** 2.4;
  });
  return 0.2126 * r! + 0.7152 * g! + 0.0722 * b!;
}
const contrast = (a: string, b: string) => {
  const [hi, lo] = [luminance(a), luminance(b)].sort((x, y) => y - x);
  return (hi! + 0.05) / (lo! + 0.05);
};

describe("how the web page looks", () => {
  const cleanup = new Cleanup();
  let server: Roomcast;
  let browser: Browser;
  let pages: Pages;

  const colours = (page: Page, selector: string) =>
    page.locator(selector).first().evaluate((node) => {
      const style = node.ownerDocument.defaultView.getComputedStyle(node);
      return { color: style.color as string, background: style.backgroundColor as string };
    });

  before(async () => {
    server = await startServe();
    cleanup.add(() => server.stop());
    browser = await launchBrowser();
    cleanup.add(() => browser.close());
    pages = new Pages(browser, cleanup);
  });
  after(() => cleanup.run());

  it("follows the system's dark mode, with readable text", async () => {
    const talk = new TestClient(server.url, "night");
    cleanup.add(() => talk.close());
    await talk.join("bob");
    await talk.request("say", { text: "can you read this in the dark?" });
    for (const scheme of ["dark", "light"] as const) {
      const page = await pages.enter(server.url, "night", `reader-${scheme}`, { colorScheme: scheme });
      await waitForText(page, "in the dark");
      const body = await colours(page, "html");
      const log = await colours(page, ".chat");
      const bubble = await colours(page, "#log .message .bubble");
      const text = await colours(page, "#log .message .text");
      const bar = await colours(page, ".bar");
      if (scheme === "dark") assert.ok(luminance(body.background) < 0.05, `a dark page (${body.background})`);
      else assert.ok(luminance(body.background) > 0.8, `a light page (${body.background})`);
      assert.ok(contrast(text.color, bubble.background) >= 7, `${scheme}: message text contrast ${contrast(text.color, bubble.background).toFixed(1)}`);
      assert.ok(contrast(body.color, bar.background) >= 7, `${scheme}: bar text contrast`);
      assert.ok(log.color !== "", "styled");
    }
  });

  it("uses the whole window on a desktop, with the composer right under the log", async () => {
    const page = await pages.enter(server.url, "wide", "reader", { viewport: { width: 1600, height: 900 } });
    const chat = (await page.locator("#chat-view").boundingBox())!;
    const log = (await page.locator(".log-wrap").boundingBox())!;
    const composer = (await page.locator("#composer").boundingBox())!;
    assert.equal(chat.width, 1600, "the chat spans the window");
    assert.ok(log.width >= 1600 * 0.6, `the log takes most of the width (${log.width}px)`);
    assert.ok(Math.abs(composer.y - (log.y + log.height)) <= 1, `nothing between the log and the composer (${composer.y - log.y - log.height}px)`);
    assert.ok(composer.y + composer.height <= 900 && composer.y + composer.height >= 899, "the composer sits at the bottom of the window");
  });

  it("shows an empty room how to invite people, with a button that copies the room's link", async () => {
    const page = await pages.enter(server.url, "fresh", "host", { permissions: ["clipboard-read", "clipboard-write"] });
    await page.locator("#log .start", { hasText: "This is the start of #fresh." }).waitFor();
    await page.locator("#log .invite").waitFor();
    await page.getByRole("button", { name: "Copy link" }).click();
    await page.locator("#log .copy-status", { hasText: "Link copied" }).waitFor();
    assert.equal(await page.evaluate("navigator.clipboard.readText()"), `${server.url}/?room=fresh`);

    const guest = new TestClient(server.url, "fresh");
    cleanup.add(() => guest.close());
    await guest.join("guest");
    await guest.request("say", { text: "I came through the link" });
    await waitForText(page, "I came through the link");
    assert.equal(await page.locator("#log .invite").count(), 0, "the invitation goes with the first message");
    assert.equal(await page.locator("#log .start").count(), 1, "the room's start stays");
  });
});
