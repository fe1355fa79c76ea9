import { pino, type Logger } from "pino";

/** JSON lines on stdout: one per event that matters (start, Redis lost and back, stop), never per message. */
export function createLogger(level: string, bindings: Record<string, unknown> = {}): Logger {
  return pino({ level, base: { pid: process.pid, ...bindings } });
}
