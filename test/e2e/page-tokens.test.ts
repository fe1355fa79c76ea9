/**
 * The web page on a server that runs with tokens, in real Chromium: the page gets its token from
 * the application's endpoint (here a small node:http server on another origin, answering CORS with
 * credentials, who the user is told by a cookie), asks for no nickname, shows the token's name,
 * tells users of one name apart, says why it stopped (kicked, banned, forbidden, no token address)
 * and renews an expired token without the reader losing anything.
 */
import assert from "node:assert/strict";
import { createServer, type Server } from "node:http";
import { after, before, describe, it } from "node:test";
import type { Browser, Page } from "playwright-core";
import { connected, launchBrowser, Pages, say, texts, waitForText } from "../helpers/browser.js";
import { TestClient } from "../helpers/client.js";
import { Cleanup } from "../helpers/processes.js";
import { startServe, type Roomcast } from "../helpers/roomcast.js";
import { ServerApi } from "../helpers/server-api.js";
import { mint, SECRET } from "../helpers/tokens.js";

const API_KEY = "page-tokens-api-key-0123";

/** Every text the composer's notice showed, in order (the page's notices may be brief). */
const NOTICE_RECORDER = `(() => {
  window.__notices = [];
  document.addEventListener("DOMContentLoaded", () => {
    const notice = document.getElementById("notice");
    new MutationObserver(() => notice.textContent && window.__notices.push(notice.textContent)).observe(notice, { childList: true, characterData: true, subtree: true });
  });
})();`;

/** The application's users: the cookie `who` names one; `seconds` is how long each token it gets lives. */
interface AppUser {
  sub: string;
  name: string;
  rooms?: string[];
  /** Lifetimes of the tokens handed out, one per fetch; the last one repeats. */
  seconds?: number[];
  issued: number;
}

describe("the web page with tokens", () => {
  const cleanup = new Cleanup();
  let server: Roomcast;
  let api: ServerApi;
  let tokenUrl: string;
  let browser: Browser;
  let pages: Pages;
  const users = new Map<string, AppUser>();
  const user = (sub: string, name: string, more: Partial<AppUser> = {}) => {
    const u: AppUser = { sub, name, issued: 0, ...more };
    users.set(sub, u);
    return u;
  };

  /** The application's token endpoint, on its own origin. */
  async function startTokenEndpoint(pageOrigin: () => string): Promise<string> {
    const endpoint: Server = createServer((req, res) => {
      const cors = { "access-control-allow-origin": pageOrigin(), "access-control-allow-credentials": "true", "content-type": "application/json", "cache-control": "no-store" };
      const who = /(?:^|;\s*)who=([^;]+)/.exec(req.headers.cookie ?? "")?.[1];
      const u = who === undefined ? undefined : users.get(who);
      if (req.url !== "/token" || !u || req.headers.origin !== pageOrigin()) {
        res.writeHead(401, cors).end(JSON.stringify({ error: "not signed in" }));
        return;
      }
      const seconds = u.seconds?.[Math.min(u.issued, u.seconds.length - 1)] ?? 600;
      u.issued++;
      void mint({ sub: u.sub, name: u.name, ...(u.rooms ? { rooms: u.rooms } : {}) }, seconds).then((token) => res.writeHead(200, cors).end(JSON.stringify({ token })));
    });
    await new Promise<void>((resolve) => endpoint.listen(0, "127.0.0.1", resolve));
    cleanup.add(() => new Promise((resolve) => endpoint.close(resolve)));
    const address = endpoint.address();
    assert.ok(address !== null && typeof address === "object");
    return `http://127.0.0.1:${address.port}/token`;
  }

  /** A page of the application's user `sub` (its session cookie set), opened at `room` (or at the entry page). */
  async function open(sub: string, room: string | undefined, options: { initScripts?: string[] } = {}): Promise<Page> {
    const url = room === undefined ? `${server.url}/` : `${server.url}/?room=${room}`;
    return pages.open(url, { cookies: [{ name: "who", value: sub, url: tokenUrl }], ...options }, sub);
  }

  before(async () => {
    let origin = "";
    tokenUrl = await startTokenEndpoint(() => origin);
    server = await startServe(["--auth-token-url", tokenUrl], { ROOMCAST_AUTH_SECRET: SECRET, ROOMCAST_API_KEY: API_KEY });
    cleanup.add(() => server.stop());
    origin = server.url;
    api = new ServerApi(server.url, API_KEY);
    browser = await launchBrowser();
    cleanup.add(() => browser.close());
    pages = new Pages(browser, cleanup);
  });
  after(() => cleanup.run());

  it("asks for no nickname, shows the token's name, and keeps two users of one name apart", async () => {
    user("u1", "sam");
    user("u2", "sam");
    const entry = await open("u1", undefined);
    assert.equal(await entry.locator("html").getAttribute("data-auth"), "token");
    assert.equal(await entry.locator("html").getAttribute("data-auth-token-url"), tokenUrl);
    assert.ok(await entry.locator("#nickname").isHidden(), "no nickname to type");
    assert.ok(await entry.locator("#active-rooms").isHidden(), "the private room list is not shown");
    await entry.locator("#room").fill("twins");
    await entry.locator("#enter-form button[type=submit]").click();
    await connected(entry);
    const sam1 = entry;
    const sam2 = await open("u2", "twins");
    await connected(sam2);
    for (const page of [sam1, sam2]) {
      await page.locator("#online li").nth(1).waitFor();
      assert.deepEqual(await page.locator("#online li").allTextContents(), ["sam", "sam"], "two people, not one with two tabs");
      assert.equal(await page.locator("#online li.me").count(), 1, "one of them is you");
    }
    await sam1.locator("#log .notice", { hasText: "sam joined" }).nth(1).waitFor();
    await say(sam1, "I am the first sam");
    await waitForText(sam2, "I am the first sam");
    assert.equal(await sam2.locator("#log .message.mine").count(), 0, "the other sam's message is not yours");
    assert.equal(await sam2.locator("#log .message .author").first().textContent(), "sam");
    await waitForText(sam1, "I am the first sam");
    assert.equal(await sam1.locator("#log .message.mine .author").textContent(), "sam (you)");
    await sam2.close();
    await sam1.locator("#log .notice", { hasText: "sam left" }).waitFor();
    assert.deepEqual(await sam1.locator("#online li").allTextContents(), ["sam"]);
    assert.equal(await sam1.locator("#online li.me").count(), 1, "you are the one still here");
    // the page read nothing from the private API: presence and rooms come from the connection
    assert.deepEqual(pages.requests.filter((r) => r.includes("/api/")), []);
    assert.deepEqual(pages.errors, []);
  });

  it("says why it stopped when kicked, banned or refused a room, and does not come back", async () => {
    user("u3", "kim");
    user("u4", "watcher");
    user("u5", "sup", { rooms: ["support-*"] });
    const kim = await open("u3", "hall");
    const watcher = await open("u4", "hall");
    await Promise.all([connected(kim), connected(watcher)]);
    await api.kick("hall", "u3");
    await kim.locator("#notice", { hasText: "You were removed from this room." }).waitFor();
    await kim.locator('#conn-state[data-state="closed"]').waitFor();
    // the room goes on without kim: a message after the kick reaches the watcher, not kim
    const talker = new TestClient(server.url, "hall", { auth: { token: await mint({ sub: "t", name: "talker" }) } });
    cleanup.add(() => talker.close());
    assert.ok((await talker.join("")).ok);
    assert.ok((await talker.request("say", { text: "after the kick" })).ok);
    await waitForText(watcher, "after the kick");
    assert.deepEqual(await texts(kim), []);
    assert.deepEqual((await api.presence("hall")).map((u) => u.user).sort(), ["t", "u4"]);
    await watcher.locator("#log .notice", { hasText: "kim left" }).waitFor();

    // banned: the next visit is refused with its reason
    await api.kick("hall", "u4", 60);
    await watcher.locator("#notice", { hasText: "You were removed from this room." }).waitFor();
    await watcher.reload();
    await watcher.locator("#notice", { hasText: "You are banned from this room for now." }).waitFor();
    await watcher.locator('#conn-state[data-state="closed"]').waitFor();

    // a token whose rooms do not include this one
    const sup = await open("u5", "lobby");
    await sup.locator("#notice", { hasText: "You may not enter this room." }).waitFor();
    await sup.locator('#conn-state[data-state="closed"]').waitFor();
  });

  it("renews an expired token: a brief notice, nothing missed, and the reader goes on chatting", async () => {
    const erin = user("u6", "erin", { seconds: [3, 600] });
    const page = await open("u6", "steady", { initScripts: [NOTICE_RECORDER] });
    await connected(page);
    const talker = new TestClient(server.url, "steady", { auth: { token: await mint({ sub: "t2", name: "talker" }) } });
    cleanup.add(() => talker.close());
    assert.ok((await talker.join("")).ok);
    const sent: string[] = [];
    // a steady stream across the expiry (3 s), until the page has been told and reconnected
    for (let i = 0; erin.issued < 2 || i < 30; i++) {
      assert.ok(i < 80, "the token expired and was renewed");
      assert.ok((await talker.request("say", { text: `tick ${i}` })).ok);
      sent.push(`tick ${i}`);
      await new Promise((r) => setTimeout(r, 100)); // the pace of the stream, not a wait for an event
    }
    await connected(page, 20_000);
    const notices = (await page.evaluate("window.__notices")) as string[];
    assert.ok(notices.includes("Your session expired: reconnecting."), `told briefly: ${JSON.stringify(notices)}`);
    // gone once connected again, before the reader does anything
    await page.locator("#notice").waitFor({ state: "hidden" });
    await say(page, "still with you");
    await waitForText(page, "still with you");
    assert.deepEqual(await texts(page), [...sent, "still with you"], "every message once, in order");
    assert.equal(erin.issued, 2, "one fresh token");
    assert.deepEqual(await page.locator("#online li.me").allTextContents(), ["erin"]);
  });

  it("says so when the server has tokens but no address to get one from", async () => {
    const bare = await startServe([], { ROOMCAST_AUTH_SECRET: SECRET });
    cleanup.add(() => bare.stop());
    const page = await pages.open(`${bare.url}/?room=lobby`, {}, "bare");
    assert.equal(await page.locator("html").getAttribute("data-auth"), "token");
    await page.locator("#enter-error", { hasText: "no address to get a sign-in token from" }).waitFor();
    assert.ok(await page.locator("#chat-view").isHidden());
    assert.ok(await page.locator("#nickname").isHidden());
  });
});
