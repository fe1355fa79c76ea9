/** WebSocket frames written by roomcast itself (fan-out, slow-consumer notice). */

/**
 * A WebSocket text frame as a server sends it (RFC 6455 §5.2: FIN, opcode 1, no mask), header and
 * payload in one buffer (the text encoded straight into it) so that it is one write. (ws's
 * `Sender.frame` gives the two apart, for a corked two-buffer write, and is not typed.)
 */
export function textFrame(text: string): Buffer {
  const n = Buffer.byteLength(text);
  const header = n < 126 ? 2 : n < 65536 ? 4 : 10;
  const frame = Buffer.allocUnsafe(header + n);
  frame[0] = 0x81;
  if (n < 126) {
    frame[1] = n;
  } else if (n < 65536) {
    frame[1] = 126;
    frame.writeUInt16BE(n, 2);
  } else {
    frame[1] = 127;
    frame.writeUInt32BE(0, 2);
    frame.writeUInt32BE(n, 6);
  }
  frame.write(text, header);
  return frame;
}
