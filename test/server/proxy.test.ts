/** X-Forwarded-For is believed only with --trust-proxy, so per-address limits cannot be dodged. */
import assert from "node:assert/strict";
import { after, describe, it } from "node:test";
import { TestClient } from "../helpers/client.js";
import { Cleanup, withTimeout } from "../helpers/processes.js";
import { metric, startServe } from "../helpers/roomcast.js";

const cleanup = new Cleanup();
after(() => cleanup.run());

async function outcome(url: string, forwardedFor: string): Promise<string> {
  const c = new TestClient(url, "limits", { extraHeaders: { "x-forwarded-for": forwardedFor } });
  cleanup.add(() => c.close());
  return withTimeout(
    new Promise<string>((resolve) => {
      c.socket.once("connect", () => resolve("connected"));
      c.socket.once("connect_error", (err: Error & { data?: { code?: string } }) => resolve(err.data?.code ?? err.message));
    }),
    5000,
    "connect or connect_error",
  );
}

describe("client addresses and --max-connections-per-ip", () => {
  it("ignores X-Forwarded-For without --trust-proxy: one address is one address", async () => {
    const server = await startServe(["--max-connections-per-ip", "1"]);
    cleanup.add(() => server.stop());
    assert.equal(await outcome(server.url, "10.0.0.1"), "connected");
    assert.equal(await outcome(server.url, "10.0.0.2"), "RATE_LIMITED", "a forged header does not make a new address");
  });

  it("takes the address nginx appended last with --trust-proxy", async () => {
    const server = await startServe(["--max-connections-per-ip", "1", "--trust-proxy", "yes"]);
    cleanup.add(() => server.stop());
    assert.equal(await outcome(server.url, "10.0.0.1"), "connected");
    assert.equal(await outcome(server.url, "10.0.0.2"), "connected", "another client behind the proxy");
    assert.equal(await outcome(server.url, "10.0.0.9, 10.0.0.1"), "RATE_LIMITED", "what the client itself put first proves nothing");
  });

  it("counts a closed connection out again", async () => {
    const server = await startServe(["--max-connections-per-ip", "1"]);
    cleanup.add(() => server.stop());
    const first = new TestClient(server.url, "limits");
    await first.connected();
    first.close();
    const metricsSeeNone = async () => (await metric(server.url, "roomcast_connections")) === 0;
    while (!(await metricsSeeNone())) await new Promise((r) => setTimeout(r, 50));
    assert.equal(await outcome(server.url, "x"), "connected");
  });
});
