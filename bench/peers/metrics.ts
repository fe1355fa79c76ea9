import type { IncomingMessage, ServerResponse } from "node:http";
import { collectDefaultMetrics, Registry } from "prom-client";

/** GET /metrics with the process metrics, so the bench reads every peer's CPU the same way. */
export function metricsHandler(): (req: IncomingMessage, res: ServerResponse) => void {
  const registry = new Registry();
  collectDefaultMetrics({ register: registry });
  return (req, res) => {
    if (req.url !== "/metrics") return void res.writeHead(404).end();
    void registry.metrics().then((text) => res.writeHead(200, { "content-type": registry.contentType }).end(text));
  };
}
