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
