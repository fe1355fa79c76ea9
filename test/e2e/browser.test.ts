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
    // a room named in Chinese, shared as a link, on both processes
    const page = await enter(a, "茶室", "小明", { locale: "zh-CN" });
    const other = await enter(b, "茶室", "小红", { locale: "zh-CN" });
    assert.equal(decodeURIComponent(new URL(page.url()).search), "?room=茶室");
    assert.equal(await page.getByRole("button", { name: "发送" }).count(), 1);
    await page.locator("#text").fill("x".repeat(2001));
    assert.equal(await page.locator("#counter").textContent(), "2001/2000");
    await page.locator("#text").press("Enter");
    await page.locator("#notice", { hasText: "消息无法发送" }).waitFor();
    assert.equal((await page.locator("#text").inputValue()).length, 2001, "the text stays");
    await say(page, "大家好");
    await waitForText(page, "大家好");
    await waitForText(other, "大家好");
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

  /** A busy morning in a team's room: 45 messages from five people, links, mentions, emoji. */
  const ENGLISH: [string, string][] = [
    ["dev", "Morning all ☀️ The deploy window opens at 10:00."],
    ["dev", "Checklist: https://roomcast.example/runbooks/deploy#checklist"],
    ["ann", "Morning! I'll take the workers, one at a time."],
    ["bob", "I'm on nginx. The config diff is small: two upstreams added."],
    ["carol", "Docs for the new flags are up at www.example.org/roomcast/flags"],
    ["小明", "早上好！我在上海，今天网络不错。"],
    ["ann", "👋 小明"],
    ["dev", "Redis is at 41% memory, plenty of room."],
    ["bob", "nginx -t passes on both hosts ✅"],
    ["carol", "Should we warn the support channel first?"],
    ["dev", "Yes. @carol can you post the notice?"],
    ["carol", "On it."],
    ["carol", "Posted: \"Short rolling restart at 10:00, nothing should drop.\""],
    ["ann", "Starting with worker 1."],
    ["ann", "Worker 1 is back on the new version, 212 connections re-joined."],
    ["bob", "I see them landing on worker 2 meanwhile, as expected."],
    ["dev", "Latency p99 is flat at 38 ms."],
    ["ann", "Worker 2 now."],
    ["小明", "我这边重新连接了一次，消息一条都没丢 👍"],
    ["ann", "That's the re-join with `since` doing its job."],
    ["ann", "Worker 2 is back. Going on with 3 and 4."],
    ["bob", "The graph: https://grafana.example/d/roomcast?from=now-1h&to=now"],
    ["carol", "Looks boring. Boring is good."],
    ["dev", "Long-polling clients too? A few corporate proxies still block WebSockets."],
    ["bob", "Yes, 31 of them, all reconnected through nginx."],
    ["ann", "3 and 4 done. All eight workers run the new build."],
    ["dev", "🎉"],
    ["carol", "Nice work, everyone."],
    ["小明", "辛苦了！"],
    ["bob", "I'll keep an eye on the error rate for the next hour."],
    ["dev", "@ann could you write a short summary for the changelog?"],
    ["ann", "Sure, after lunch."],
    ["carol", "Lunch? The noodle place on 5th reopened (www.example.com/noodles)."],
    ["bob", "I'm in 🍜"],
    ["小明", "我也想去，可惜在上海 😄"],
    ["dev", "Next time we all meet, noodles are on me."],
    ["ann", "Summary draft: rolling restart, zero dropped messages, p99 flat."],
    ["ann", "Anything I missed?"],
    ["bob", "The two new upstreams on nginx."],
    ["ann", "Added, thanks @bob"],
    ["carol", "And the link to the docs of the flags, please."],
    ["ann", "Done: https://roomcast.example/changelog#rolling-restart"],
    ["dev", "Perfect. @carol can you tell support it's over?"],
    ["carol", "Will do."],
    ["bob", "See you at lunch, @ann!"],
  ];
  const CHINESE: [string, string][] = [
    ["老王", "大家早上好！今天十点开始滚动发布。"],
    ["老王", "检查清单在这里：https://roomcast.example/runbooks/deploy#checklist"],
    ["小红", "收到。我来盯 nginx。"],
    ["阿杰", "我负责 Redis，内存占用 41%，没问题。"],
    ["小明", "早上好 ☀️ 我先更新文档：www.example.org/roomcast/flags"],
    ["老王", "好的。@小红 nginx 配置检查过了吗？"],
    ["小红", "nginx -t 两台机器都通过了 ✅"],
    ["阿杰", "要不要先通知客服？"],
    ["老王", "要的，阿杰你发一下吧。"],
    ["阿杰", "已发：“十点短暂滚动重启，消息不会丢。”"],
    ["小明", "第一个 worker 开始重启。"],
    ["小明", "1 号 worker 已恢复，212 个连接重新加入。"],
    ["小红", "我这边看到它们暂时落在 2 号 worker 上，符合预期。"],
    ["阿杰", "p99 延迟稳定在 38 毫秒。"],
    ["小明", "现在重启 2 号。"],
    ["ann", "Reconnected once here, no message lost 👍"],
    ["小明", "这就是带 since 重新加入的效果。"],
    ["小明", "2 号也好了，继续 3 号和 4 号。"],
    ["小红", "监控图：https://grafana.example/d/roomcast?from=now-1h"],
    ["老王", "曲线很平稳，平稳就是好事。"],
    ["阿杰", "长轮询的客户端也正常吗？有些公司的代理还是会拦 WebSocket。"],
    ["小红", "正常，31 个都通过 nginx 重新连上了。"],
    ["小明", "3 号和 4 号完成，八个 worker 全部是新版本。"],
    ["老王", "🎉🎉"],
    ["阿杰", "大家辛苦了！"],
    ["ann", "Great work, everyone."],
    ["小红", "接下来一小时我继续盯错误率。"],
    ["老王", "@小明 能写一段更新日志吗？"],
    ["小明", "好的，午饭后写。"],
    ["阿杰", "午饭？楼下那家面馆重新开张了（www.example.com/noodles）。"],
    ["小红", "我去 🍜"],
    ["ann", "Save me a seat!"],
    ["老王", "下次聚会我请客。"],
    ["小明", "日志草稿：滚动重启，零消息丢失，p99 平稳。"],
    ["小明", "还有遗漏吗？"],
    ["小红", "nginx 新加的两个 upstream。"],
    ["小明", "已补上，谢谢 @小红"],
    ["阿杰", "还有参数文档的链接（www.example.org/roomcast/flags）。"],
    ["小明", "完成：https://roomcast.example/changelog#rolling-restart"],
    ["老王", "很好。@小明 顺便跟客服说一声发布结束了。"],
    ["小明", "马上。"],
    ["小红", "午饭见！"],
  ];

  /** Errors in the screenshots' pages (pageErrors also has those of the reconnect test's). */
  const viewerErrors: string[] = [];

  /** Members that are not pages: each author's connection, by name. */
  async function members(server: Roomcast, room: string, names: Iterable<string>): Promise<Map<string, TestClient>> {
    const clients = new Map<string, TestClient>();
    for (const name of names) {
      const c = new TestClient(server.url, room);
      cleanup.add(() => c.close());
      assert.ok((await c.join(name)).ok);
      clients.set(name, c);
    }
    return clients;
  }
  async function converse(clients: Map<string, TestClient>, lines: [string, string][]): Promise<void> {
    for (const [name, text] of lines) assert.ok((await clients.get(name)!.request("say", { text })).ok, text);
  }

  /**
   * A page of `nickname`, already in `rooms` (as after a reload: the rooms are remembered), showing
   * the first of them, its log at the newest message.
   */
  async function viewer(nickname: string, rooms: string[], options: { locale?: string; viewport?: { width: number; height: number }; colorScheme?: "light" | "dark" }): Promise<Page> {
    const context = await browser.newContext({ locale: options.locale ?? "en-US", viewport: options.viewport ?? { width: 1280, height: 800 }, colorScheme: options.colorScheme ?? "light" });
    cleanup.add(() => context.close());
    const page = await context.newPage();
    page.on("pageerror", (e) => viewerErrors.push(`${nickname}: ${e.message}`));
    page.on("console", (m) => m.type() === "error" && viewerErrors.push(`${nickname}: ${m.text()}`));
    await page.goto(`${a.url}/`);
    await page.evaluate(`localStorage.setItem("roomcast.nickname", ${JSON.stringify(nickname)});
      localStorage.setItem("roomcast.rooms", ${JSON.stringify(JSON.stringify(rooms.map((room) => ({ room, nickname }))))})`);
    await page.goto(`${a.url}/?room=${rooms[0]}`);
    await page.locator('#conn-state[data-state="connected"]').waitFor({ timeout: 10_000 });
    return page;
  }
  async function shoot(page: Page, file: string, lastText: string): Promise<void> {
    await waitForText(page, lastText);
    await page.evaluate("document.fonts.ready.then(() => true)");
    assert.ok(await page.locator("#log").evaluate((log) => log.scrollHeight - log.scrollTop - log.clientHeight < 2), "at the newest message");
    await page.screenshot({ path: `${SCREENSHOT_DIR}/${file}` });
  }

  it("takes screenshots of a busy room: desktop, phone, Chinese, dark", async () => {
    mkdirSync(SCREENSHOT_DIR, { recursive: true });
    const english = await members(a, "lobby", ["dev", "ann", "bob", "carol", "小明"]);
    await converse(english, ENGLISH);
    const chinese = await members(a, "shanghai", ["老王", "小红", "阿杰", "小明", "ann"]);
    await converse(chinese, CHINESE);
    // the readers' own connections go: their pages stand for them
    for (const name of ["ann", "bob", "carol"]) english.get(name)!.close();
    chinese.get("小明")!.close();
    const others = await members(a, "random", ["dev"]);
    const last = ENGLISH.at(-1)![1];

    const desk = await viewer("ann", ["lobby", "deploys", "random"], {});
    await converse(others, [["dev", "Anyone seen my charger?"], ["dev", "The blue one"], ["dev", "Found it 🙈"]]);
    await desk.locator('#room-tabs .room-tab[data-room="random"] .badge', { hasText: "3" }).waitFor();
    await english.get("dev")!.request("typing", { typing: true });
    await desk.locator("#typing", { hasText: "dev is typing…" }).waitFor();
    await shoot(desk, "screenshot.png", last);

    const phone = await viewer("bob", ["lobby"], { viewport: { width: 390, height: 844 } });
    await shoot(phone, "screenshot-phone.png", last);

    const dark = await viewer("carol", ["lobby", "random"], { colorScheme: "dark" });
    await shoot(dark, "screenshot-dark.png", last);

    const zh = await viewer("小明", ["shanghai", "lobby"], { locale: "zh-CN" });
    await shoot(zh, "screenshot-zh.png", CHINESE.at(-1)![1]);
    assert.deepEqual(viewerErrors, []);
  });
});
