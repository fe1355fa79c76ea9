/**
 * The zod schemas of the wire protocol's payloads (protocol.ts): every client payload is checked
 * against these at the boundary (server/socket.ts).
 */
import { z } from "zod";
import { charLength, CONTROL_IN_NAME, CONTROL_IN_TEXT, MESSAGE_ID, ROOM_ID, USERNAME_MAX } from "./protocol.js";

export const roomIdSchema = z.string().regex(ROOM_ID);

export const messageIdSchema = z.string().regex(MESSAGE_ID);

/** A username: trimmed, 1–32 characters, no control characters. */
export const usernameSchema = z
  .string()
  .transform((s) => s.trim())
  .refine((s) => s.length > 0 && charLength(s) <= USERNAME_MAX, {
    message: `a username is 1 to ${USERNAME_MAX} characters`,
  })
  .refine((s) => !CONTROL_IN_NAME.test(s), { message: "a username may not hold control characters" });

/** A message text: 1–`max` characters, not only white space; kept as sent (not trimmed). */
export function textSchema(max: number) {
  return z
    .string()
    .refine((s) => s.trim().length > 0, { message: "a message may not be empty or only white space" })
    .refine((s) => charLength(s) <= max, { message: `a message is at most ${max} characters` })
    .refine((s) => !CONTROL_IN_TEXT.test(s), { message: "a message may not hold control characters" });
}

// Each payload is first checked to be a plain object (else BAD_PAYLOAD); then each field is
// checked on its own, so that the refusal names the field's own code (BAD_USERNAME, BAD_TEXT).
export const payloadSchema = z.custom<Record<string, unknown>>(
  (v) => typeof v === "object" && v !== null && !Array.isArray(v),
  { message: "the payload must be an object" },
);
export const joinSinceSchema = messageIdSchema.optional();
export const typingFlagSchema = z.boolean();

