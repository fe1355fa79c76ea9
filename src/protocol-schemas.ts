/**
 * The zod schemas of the wire protocol's payloads (protocol.ts): every client payload is checked
 * against these at the boundary (server/socket.ts).
 */
import { z } from "zod";
import {
  canonicalId,
  charLength,
  CONTROL_IN_NAME,
  CONTROL_IN_TEXT,
  graphemeLength,
  INVISIBLE_ONLY,
  LONE_SURROGATE,
  roomId,
  USERNAME_MAX,
} from "./protocol.js";

/** A room id, normalised to NFC (so `é` typed two ways is one room). */
export const roomIdSchema = z.string().transform((s, ctx) => {
  const id = roomId(s);
  if (id === undefined) {
    ctx.addIssue({ code: "custom", message: "a room id is 1 to 64 letters or digits of any script, or _ - . :" });
    return z.NEVER;
  }
  return id;
});

/** A message id, by its real range (each part an unsigned 64-bit integer), in its canonical spelling. */
export const messageIdSchema = z.string().transform((s, ctx) => {
  const id = canonicalId(s);
  if (id === undefined) {
    ctx.addIssue({ code: "custom", message: "a message id is two whole numbers of at most 2^64 − 1, as in 1700000000000-0" });
    return z.NEVER;
  }
  return id;
});

/**
 * The most UTF-16 code units a name may hold: 32 characters as people count them, each of up to
 * 16 code units (a family emoji is 11), so that combining marks cannot make a 32-character name
 * of megabytes.
 */
const USERNAME_MAX_UNITS = USERNAME_MAX * 16;

/**
 * A username: trimmed, 1–32 characters counted as graphemes, no control characters, no lone
 * surrogates, not only invisible characters.
 */
export const usernameSchema = z
  .string()
  .transform((s) => s.trim())
  .refine((s) => s.length > 0 && s.length <= USERNAME_MAX_UNITS && graphemeLength(s) <= USERNAME_MAX, {
    message: `a username is 1 to ${USERNAME_MAX} characters`,
  })
  .refine((s) => !CONTROL_IN_NAME.test(s) && !LONE_SURROGATE.test(s), { message: "a username may not hold control characters or lone surrogates" })
  .refine((s) => !INVISIBLE_ONLY.test(s), { message: "a username must have a visible character" });

/**
 * A message text: 1–`max` characters (code points), not only white space or invisible
 * characters; kept as sent (not trimmed).
 */
export function textSchema(max: number) {
  return z
    .string()
    .refine((s) => !INVISIBLE_ONLY.test(s), { message: "a message may not be empty, only white space or only invisible characters" })
    .refine((s) => charLength(s) <= max, { message: `a message is at most ${max} characters` })
    .refine((s) => !CONTROL_IN_TEXT.test(s), { message: "a message may not hold control characters" })
    .refine((s) => !LONE_SURROGATE.test(s), { message: "a message may not hold lone surrogates (not characters)" });
}

// Each payload is first checked to be a plain object (else BAD_PAYLOAD); then each field is
// checked on its own, so that the refusal names the field's own code (BAD_USERNAME, BAD_TEXT).
export const payloadSchema = z.custom<Record<string, unknown>>(
  (v) => typeof v === "object" && v !== null && !Array.isArray(v),
  { message: "the payload must be an object" },
);
export const joinSinceSchema = messageIdSchema.optional();
export const typingFlagSchema = z.boolean();

/** How many messages a history page may ask for: 1 to the history size. */
export const historyLimitSchema = (max: number) => z.number().int().min(1).max(max);
