/** Debian's Chromium, driven by playwright-core (no browser download), and the page's common steps. */
import { chromium, type Browser, type BrowserContext, type BrowserContextOptions, type Page } from "playwright-core";
import type { Cleanup } from "./processes.js";

export const CHROMIUM = "/usr/bin/chromium";

export function launchBrowser(): Promise<Browser> {
  return chromium.launch({
    executablePath: CHROMIUM,
    args: [
      "--no-sandbox",
      "--disable-gpu",
      "--disable-quic",
      "--no-first-run",
      "--disable-background-networking",
      "--disable-component-update",
      "--disable-sync",
    ],
  });
}

export interface PageOptions {
  locale?: string;
  viewport?: { width: number; height: number };
  colorScheme?: "light" | "dark";
  /** Browser permissions granted to the page's origin (e.g. "notifications", "clipboard-read"). */
  permissions?: string[];
  /** Scripts run in the page before its own (playwright init scripts). */
  initScripts?: string[];
  /** Cookies the browser context starts with (an application's session, for its token endpoint). */
  cookies?: Parameters<BrowserContext["addCookies"]>[0];
}

/**
 * Opens pages of the web client, each in its own browser context (own localStorage, own
 * permissions), closed by `cleanup`; every console error and uncaught page error is kept in
 * `errors`, so that a test can assert there were none.
 */
export class Pages {
  readonly errors: string[] = [];
  /** Every request the pages made, as `name: METHOD url`, in order. */
  readonly requests: string[] = [];
  constructor(
    private readonly browser: Browser,
    private readonly cleanup: Cleanup,
  ) {}

  async open(url: string, options: PageOptions = {}, name = "page"): Promise<Page> {
    const contextOptions: BrowserContextOptions = {
      locale: options.locale ?? "en-US",
      viewport: options.viewport ?? { width: 1280, height: 800 },
      colorScheme: options.colorScheme ?? "light",
    };
    const context = await this.browser.newContext(contextOptions);
    this.cleanup.add(() => context.close());
    if (options.permissions) await context.grantPermissions(options.permissions, { origin: new URL(url).origin });
    if (options.cookies) await context.addCookies(options.cookies);
    for (const script of options.initScripts ?? []) await context.addInitScript(script);
    const page = await context.newPage();
    page.on("console", (m) => m.type() === "error" && this.errors.push(`${name}: ${m.text()}`));
    page.on("pageerror", (e) => this.errors.push(`${name}: ${e.message}`));
    page.on("request", (r) => this.requests.push(`${name}: ${r.method()} ${r.url()}`));
    await page.goto(url);
    return page;
  }

  /** A page entered into `room` as `nickname` through the entry form, once connected. */
  async enter(baseUrl: string, room: string, nickname: string, options: PageOptions = {}): Promise<Page> {
    const page = await this.open(`${baseUrl}/?room=${encodeURIComponent(room)}`, options, nickname);
    await page.locator("#nickname").fill(nickname);
    await page.locator("#enter-form button[type=submit]").click();
    await connected(page);
    return page;
  }
}

/** Waits until the room on screen is connected and joined. */
export const connected = (page: Page, timeout = 10_000) =>
  page.locator('#conn-state[data-state="connected"]').waitFor({ timeout });

/** Types `text` into the composer and presses Enter. */
export async function say(page: Page, text: string): Promise<void> {
  await page.locator("#text").fill(text);
  await page.locator("#text").press("Enter");
}

/** The texts of the messages in the log of the room on screen, in order. */
export const texts = (page: Page) => page.locator("#log .message .text").allTextContents();

/** Waits until a message holding `text` is in the log of the room on screen. */
export const waitForText = (page: Page, text: string, timeout = 10_000) =>
  page.locator("#log .message .text", { hasText: text }).first().waitFor({ timeout });
