import type { ErrorCode, WireError } from "../protocol.js";

/**
 * A refusal with a spec error code. Made where the problem is found; turned into a wire answer
 * (an ack or an `error` message) in one place, server/socket.ts.
 */
export class ChatError extends Error {
  constructor(
    readonly code: ErrorCode,
    message: string,
  ) {
    super(message);
    this.name = "ChatError";
  }

  toWire(): WireError {
    return { code: this.code, message: this.message };
  }
}
