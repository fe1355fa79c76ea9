/**
 * Which pages may connect: a page of another site cannot open a connection, over WebSocket or
 * long-polling (HTTP 403 or 400 before any handshake), the chat's own page can (directly and
 * through nginx), programs that send no Origin can, and --allowed-origins lets listed sites in.
 */
import assert from "node:assert/strict";
import { createServer, type Server } from "node:http";
import { connect } from "node:net";
import { after, before, describe, it } from "node:test";
import type { Browser } from "playwright-core";
import { launchBrowser } from "../helpers/browser.js";
import { Cleanup, freePort } from "../helpers/processes.js";
import { startNginx } from "../helpers/nginx.js";
import { metric, startServe, type Roomcast } from "../helpers/roomcast.js";

/** The status line of a raw WebSocket upgrade to roomcast, sent with this Origin (or none). */
function upgradeStatus(port: number, origin: string | undefined): Promise<string> {
  return new Promise((resolve, reject) => {
    const socket = connect({ host: "127.0.0.1", port }, () => {
      socket.write(
        `GET /socket.io/?EIO=4&transport=websocket&roomid=o HTTP/1.1\r\nHost: 127.0.0.1:${port}\r\n` +
          `${origin === undefined ? "" : `Origin: ${origin}\r\n`}Upgrade: websocket\r\nConnection: Upgrade\r\n` +
          `Sec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\nSec-WebSocket-Version: 13\r\n\r\n`,
      );
    });
    socket.once("data", (d) => {
      resolve(d.toString().split("\r\n")[0]!);
      socket.destroy();
    });
    socket.once("error", reject);
  });
}

const pollStatus = async (url: string, origin: string | undefined) =>
  (await fetch(`${url}/socket.io/?EIO=4&transport=polling&roomid=o`, { headers: origin === undefined ? {} : { origin } })).status;

describe("allowed origins", () => {
  const cleanup = new Cleanup();
  let server: Roomcast;
  let open: Roomcast;
  let listed: Roomcast;
  let browser: Browser;
  let other: Server;
  let otherOrigin: string;

  before(async () => {
    // a page of another site, which tries to reach the chat with the user's browser
    const otherPort = await freePort();
    otherOrigin = `http://127.0.0.1:${otherPort}`;
    other = createServer((_req, res) => res.writeHead(200, { "content-type": "text/html" }).end("<!doctype html><title>another site</title>"));
    await new Promise<void>((resolve) => other.listen(otherPort, "127.0.0.1", resolve));
    cleanup.add(() => new Promise((resolve) => other.close(resolve)));
    server = await startServe([]);
    cleanup.add(() => server.stop());
    listed = await startServe(["--allowed-origins", `https://app.example, ${otherOrigin}`]);
    cleanup.add(() => listed.stop());
    open = await startServe(["--allowed-origins", "*"]);
    cleanup.add(() => open.stop());
    browser = await launchBrowser();
    cleanup.add(() => browser.close());
  });
  after(() => cleanup.run());

  it("refuses another site's Origin before any handshake, polling and WebSocket alike; no Origin and its own pass", async () => {
    assert.equal(await pollStatus(server.url, "http://evil.example"), 403);
    assert.match(await upgradeStatus(server.port, "http://evil.example"), /^HTTP\/1\.1 40[03] /);
    assert.equal(await pollStatus(server.url, `http://127.0.0.1:${server.port}`), 200);
    assert.match(await upgradeStatus(server.port, `http://127.0.0.1:${server.port}`), /^HTTP\/1\.1 101 /);
    assert.equal(await pollStatus(server.url, undefined), 200);
    assert.match(await upgradeStatus(server.port, undefined), /^HTTP\/1\.1 101 /);
    // listed origins, and * with a warning at start
    assert.equal(await pollStatus(listed.url, "https://app.example"), 200);
    assert.equal(await pollStatus(listed.url, "https://other.example"), 403);
    assert.equal(await pollStatus(open.url, "http://evil.example"), 200);
    assert.match(open.output(), /allowed-origins \*: pages on every site may connect/);
    assert.ok(!server.output().includes("every site"));
  });

  it("keeps a page of another site out in Chromium, over WebSocket and polling; lets it in when listed", async () => {
    const page = await (await browser.newContext()).newPage();
    await page.goto(otherOrigin);
    const tryChat = (port: number) =>
      page.evaluate(async (p) => {
        const ws = await new Promise<string>((resolve) => {
          const socket = new WebSocket(`ws://127.0.0.1:${p}/socket.io/?EIO=4&transport=websocket&roomid=o`);
          socket.onmessage = (e) => resolve(`open: ${String(e.data).slice(0, 1)}`);
          socket.onerror = () => resolve("refused");
        });
        const polling = await fetch(`http://127.0.0.1:${p}/socket.io/?EIO=4&transport=polling&roomid=o`).then(
          (r) => `status ${r.status}`,
          () => "refused",
        );
        return { ws, polling };
      }, port);
    const before = await metric(server.url, "roomcast_connections");
    assert.deepEqual(await tryChat(server.port), { ws: "refused", polling: "refused" });
    assert.equal(await metric(server.url, "roomcast_connections"), before, "no connection was made");
    const refusals = await (await fetch(`${server.url}/metrics`)).text();
    assert.match(refusals, /roomcast_refusals_total\{code="FORBIDDEN"\} [2-9]/);
    // listed: the WebSocket opens (the Engine.IO open packet arrives)
    assert.equal((await tryChat(listed.port)).ws, "open: 0");
  });

  it("lets the chat's own page connect, directly and through nginx, with nothing refused (the WebSocket upgrade too)", async () => {
    const own = await startServe([]);
    cleanup.add(() => own.stop());
    const nginx = await startNginx([`127.0.0.1:${own.port}`]);
    cleanup.add(() => nginx.stop());
    for (const url of [own.url, nginx.url]) {
      const page = await (await browser.newContext()).newPage();
      await page.goto(`${url}/?room=origins`);
      await page.getByLabel("Nickname").fill("own");
      await page.locator("#enter-form button[type=submit]").click();
      await page.locator('#conn-state[data-state="connected"]').waitFor({ timeout: 10_000 });
      // A same-origin GET carries no Origin, so the page's long-polling handshake proves little; a
      // WebSocket handshake always carries it (the SDK may open with one).
      const ws = await page.evaluate(
        (u) =>
          new Promise<string>((resolve) => {
            const socket = new WebSocket(`${u.replace(/^http/, "ws")}/socket.io/?EIO=4&transport=websocket&roomid=origins`);
            socket.onmessage = () => resolve("open");
            socket.onerror = () => resolve("refused");
          }),
        url,
      );
      assert.equal(ws, "open", `a WebSocket from the page at ${url}`);
    }
    const metrics = await (await fetch(`${own.url}/metrics`)).text();
    assert.doesNotMatch(metrics, /roomcast_refusals_total\{code="FORBIDDEN"\}/, "no request of the page was refused");
  });
});
