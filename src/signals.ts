/**
 * SIGTERM and SIGINT handlers installed before a process starts serving: without them, a signal
 * that arrives while starting (after "listening" was logged, say) would kill the process at once,
 * without its graceful stop. A signal that comes early is kept until the process is ready to stop.
 */
export function stopSignals(): { ready(stop: (signal: string) => void): void } {
  let pending: string | undefined;
  let stop: ((signal: string) => void) | undefined;
  const on = (signal: string) => {
    if (stop) stop(signal);
    else pending ??= signal;
  };
  process.once("SIGTERM", () => on("SIGTERM"));
  process.once("SIGINT", () => on("SIGINT"));
  return {
    ready(handler) {
      stop = handler;
      if (pending) handler(pending);
    },
  };
}

/**
 * A rejected promise nobody handled is a bug, but not one worth every connection of the process:
 * Node 20 exits on it by default. Logged (one line, with the reason), the process keeps serving.
 */
export function surviveUnhandledRejections(logger: { error(obj: object, msg: string): void }): void {
  process.on("unhandledRejection", (reason) => {
    logger.error({ err: reason instanceof Error ? reason.stack ?? reason.message : String(reason) }, "unhandled rejection (a bug: please report it); still serving");
  });
}
