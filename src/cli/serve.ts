import { Command } from "commander";
import { ConfigError, redisTarget, resolveServeConfig, serveOptions } from "../config.js";
import { createLogger } from "../log.js";
import { StartError, startServer } from "../server/app.js";
import { addOptions, browsableUrl, fail, tell } from "./options.js";
import { stopSignals, surviveUnhandledRejections } from "../signals.js";

export function serveCommand(): Command {
  const command = new Command("serve")
    .description(
      "Run one roomcast process. Without --redis the whole chat lives in this process's memory; " +
        "with --redis it is one node of a larger chat: any number of `serve` processes on any number " +
        "of machines pointed at one Redis form one chat.",
    )
    .action(async (flags: Record<string, unknown>) => {
      let config;
      try {
        config = resolveServeConfig(flags);
      } catch (err) {
        if (err instanceof ConfigError) fail(err.message);
        throw err;
      }
      const logger = createLogger(config.logLevel);
      const signals = stopSignals();
      surviveUnhandledRejections(logger);
      let server;
      try {
        server = await startServer(config, logger);
      } catch (err) {
        if (err instanceof StartError) fail(err.message);
        throw err;
      }
      const where = { single: "redis", sentinel: "redis sentinel", cluster: "redis cluster" }[redisTarget(config)?.kind ?? "single"];
      tell(`roomcast listening on ${browsableUrl(config.host, server.port)} (${redisTarget(config) ? where : "memory"})`);
      const stop = (signal: string) => {
        logger.info({ signal }, "stopping");
        const force = setTimeout(() => {
          logger.warn("graceful stop took over 10 s, exiting");
          process.exit(1);
        }, 10_000);
        force.unref();
        server.close().then(
          () => {
            logger.info("stopped");
            process.exit(0);
          },
          (err: unknown) => {
            logger.error({ err }, "error while stopping");
            process.exit(1);
          },
        );
      };
      signals.ready(stop);
    });
  return addOptions(command, serveOptions);
}
