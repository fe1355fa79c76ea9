/**
 * --redis-lost-grace on one process: after the grace without Redis it answers new handshakes 503
 * (polling and WebSocket) and closes its connections' transports, so their clients reconnect (to
 * another process, behind nginx); once Redis is back it serves again. (Across hosts, with nginx
 * sending the clients elsewhere: the lab scenarios.)
 */
import assert from "node:assert/strict";
import { connect } from "node:net";
import { after, before, describe, it } from "node:test";
import { TestClient } from "../helpers/client.js";
import { Cleanup, eventually, withTimeout } from "../helpers/processes.js";
import { startRedis, type TestRedis } from "../helpers/redis.js";
import { startServe, type Roomcast } from "../helpers/roomcast.js";

function upgradeStatus(port: number): Promise<string> {
  return new Promise((resolve, reject) => {
    const socket = connect({ host: "127.0.0.1", port }, () =>
      socket.write(
        `GET /socket.io/?EIO=4&transport=websocket&roomid=g HTTP/1.1\r\nHost: 127.0.0.1\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n` +
          `Sec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\nSec-WebSocket-Version: 13\r\n\r\n`,
      ),
    );
    socket.once("data", (d) => {
      resolve(d.toString().split("\r\n")[0]!);
      socket.destroy();
    });
    socket.once("error", reject);
  });
}

describe("--redis-lost-grace", () => {
  const cleanup = new Cleanup();
  let redis: TestRedis;
  let server: Roomcast;

  before(async () => {
    redis = await startRedis();
    cleanup.add(() => redis.stop());
    server = await startServe(["--redis", redis.url, "--redis-lost-grace", "1"]);
    cleanup.add(() => server.stop());
  });
  after(() => cleanup.run());

  const pollStatus = async () => (await fetch(`${server.url}/socket.io/?EIO=4&transport=polling&roomid=g`)).status;

  it("steps aside after the grace (503 for new handshakes, transports closed) and serves again when Redis is back", async () => {
    const member = new TestClient(server.url, "g");
    cleanup.add(() => member.close());
    assert.deepEqual(await member.join("m"), { ok: true });
    const closed = withTimeout(new Promise<string>((resolve) => member.socket.once("disconnect", resolve)), 10_000, "the member's transport to close");
    const lost = Date.now();
    await redis.stop();
    // within the grace it still holds its connections (a blip is not worth moving everyone)
    assert.equal(await pollStatus(), 200);
    assert.equal(await closed, "transport close", "a transport close: the client reconnects by itself");
    const after = Date.now() - lost;
    assert.ok(after >= 900 && after < 4000, `stepped aside ${after} ms after Redis was lost (grace 1 s)`);
    assert.equal(await pollStatus(), 503);
    assert.match(await upgradeStatus(server.port), /^HTTP\/1\.1 503 /);
    assert.equal((await fetch(`${server.url}/healthz`)).status, 503);
    await server.waitForLine((l) => l.includes("redis lost for the grace period"), 1000, "one log line saying so");
    await redis.start();
    await eventually(async () => ((await pollStatus()) === 200 ? true : undefined), 10_000, "serving again");
    assert.match(await upgradeStatus(server.port), /^HTTP\/1\.1 101 /);
    const back = new TestClient(server.url, "g");
    cleanup.add(() => back.close());
    assert.deepEqual(await back.join("m"), { ok: true });
  });
});
