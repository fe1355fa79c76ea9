import { availableParallelism } from "node:os";
import { Command } from "commander";
import { clusterOptions, ConfigError, resolveClusterConfig } from "../config.js";
import { ClusterPrimary } from "../cluster/primary.js";
import { createLogger } from "../log.js";
import { addOptions, browsableUrl, fail, tell } from "./options.js";
import { stopSignals } from "../signals.js";

export function clusterCommand(): Command {
  const command = new Command("cluster")
    .description(
      "Run a primary and one worker per CPU core (the article's cluster.js): worker i serves on " +
        "port-base + i, with the same options as `serve`; the workers share rooms through Redis. " +
        "SIGTERM or SIGINT: graceful stop within 10 s. SIGHUP: rolling restart, one worker at a time.",
    )
    .action(async (flags: Record<string, unknown>) => {
      let config;
      try {
        config = resolveClusterConfig(flags, availableParallelism());
      } catch (err) {
        if (err instanceof ConfigError) fail(err.message);
        throw err;
      }
      const logger = createLogger(config.logLevel, { role: "primary" });
      const primary = new ClusterPrimary(config, logger);
      const signals = stopSignals();
      process.on("SIGHUP", () => void primary.rollingRestart());
      try {
        await primary.start();
      } catch (err) {
        fail(err instanceof Error ? err.message : String(err));
      }
      const first = browsableUrl(config.host, config.portBase);
      const last = browsableUrl(config.host, config.portBase + config.workers - 1);
      tell(config.workers === 1 ? `roomcast cluster: 1 worker on ${first}` : `roomcast cluster: ${config.workers} workers on ${first} … ${last}`);
      const stop = (signal: string) => {
        logger.info({ signal }, "stopping the cluster");
        setTimeout(() => process.exit(1), 10_000).unref();
        void primary.stop().then(() => {
          logger.info("cluster stopped");
          process.exit(0);
        });
      };
      signals.ready(stop);
    });
  return addOptions(command, clusterOptions);
}
