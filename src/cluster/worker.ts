/**
 * A cluster worker: one `serve` process on its own port (port-base + index), started by the
 * primary. It reports when it listens and its connection count (as the article's fork_server.js
 * reports connects and disconnects), and stops gracefully on SIGTERM or SIGINT: no new
 * connections, clients told to reconnect (nginx moves them to another worker), presence removed.
 */
import { workerConfigFromEnv } from "../config.js";
import { createLogger } from "../log.js";
import { StartError, startServer } from "../server/app.js";
import { stopSignals, surviveUnhandledRejections } from "../signals.js";
import type { WorkerReport } from "./messages.js";

const report = (message: WorkerReport) => process.send?.(message);

const { index, config } = workerConfigFromEnv();
const logger = createLogger(config.logLevel, { worker: index });

// Connection counts are sent at most every 250 ms, never once per connection.
let pending: NodeJS.Timeout | undefined;
let count = 0;
const reportConnections = (n: number) => {
  count = n;
  pending ??= setTimeout(() => {
    pending = undefined;
    report({ type: "connections", count });
  }, 250);
};

const signals = stopSignals();
surviveUnhandledRejections(logger);
// The primary is gone (killed without a word): do not linger as an orphan.
process.on("disconnect", () => process.kill(process.pid, "SIGTERM"));

try {
  const server = await startServer(config, logger, { onConnectionCount: reportConnections });
  report({ type: "listening", port: server.port });
  let stopping = false;
  const stop = (signal: string) => {
    if (stopping) return;
    stopping = true;
    logger.info({ signal }, "worker stopping");
    setTimeout(() => process.exit(1), 8000).unref();
    server.close().then(
      () => process.exit(0),
      () => process.exit(1),
    );
  };
  signals.ready(stop);
} catch (err) {
  const message = err instanceof StartError ? err.message : err instanceof Error ? err.message : String(err);
  logger.error({ err: message }, "worker could not start");
  if (process.send) process.send({ type: "fatal", message } satisfies WorkerReport, () => process.exit(1));
  else process.exit(1);
}
