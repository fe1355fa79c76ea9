/**
 * The JSON API under /api/: what any page may read in the open chat (rooms, a room's history and
 * presence, cluster stats), and the server API an application uses with `--api-key` (publish a
 * message, delete one, kick or ban a user). With tokens or a key configured the read endpoints
 * need the key too (history is private then).
 *
 * Bodies are JSON of at most 64 KB, validated with the same schemas and codes as the socket
 * events; every refusal is `{ error: { code, message } }`: 400 for a bad request, 401 for a
 * missing or wrong key, 404 for an unknown message, never a stack trace.
 */
import { createHash, timingSafeEqual } from "node:crypto";
import type { IncomingMessage } from "node:http";
import { z } from "zod";
import type { Chat } from "../chat/chat.js";
import { SharedQuery } from "../chat/shared-query.js";
import { ChatError } from "../chat/errors.js";
import type { ServeConfig } from "../config.js";
import type { Engine } from "../engine/engine.js";
import { canonicalId, roomId } from "../protocol.js";
import { textSchema, usernameSchema } from "../protocol-schemas.js";
import { defaultPage } from "./socket.js";

/** The largest request body read; a larger one is refused without being read whole. */
export const MAX_BODY_BYTES = 64 * 1024;

export interface ApiDeps {
  engine: Engine;
  chat: Chat;
  config: ServeConfig;
}

/** An answer: status and JSON body. */
export interface ApiAnswer {
  status: number;
  body: unknown;
  headers?: Record<string, string>;
}

const refusal = (status: number, code: string, message: string, headers?: Record<string, string>): ApiAnswer => ({
  status,
  body: { error: { code, message } },
  ...(headers ? { headers } : {}),
});

/** A request the API refuses, thrown where the problem is found. */
class ApiRefusal extends Error {
  constructor(readonly answer: ApiAnswer) {
    super(JSON.stringify(answer.body));
  }
}

const postMessageBody = (maxText: number) =>
  z.object({ username: z.unknown().optional(), text: z.unknown().optional() }).transform((b, ctx) => {
    const username = usernameSchema.safeParse(b.username);
    if (!username.success) return fail(ctx, "BAD_USERNAME", `username: ${username.error.issues[0]?.message ?? "a string of 1 to 32 characters"}`);
    const text = textSchema(maxText).safeParse(b.text);
    if (!text.success) return fail(ctx, "BAD_TEXT", `text: ${typeof b.text === "string" ? (text.error.issues[0]?.message ?? "not a valid message") : "a string"}`);
    return { username: username.data, text: text.data };
  });

const kickBody = z.object({ user: z.unknown().optional(), ban_seconds: z.unknown().optional() }).transform((b, ctx) => {
  if (typeof b.user !== "string" || b.user.length === 0 || b.user.length > 256) return fail(ctx, "BAD_PAYLOAD", "user: the user id (a token's sub) or, without tokens, the username");
  const ban = b.ban_seconds;
  if (ban !== undefined && !(typeof ban === "number" && Number.isInteger(ban) && ban >= 1 && ban <= 10 * 365 * 86400)) {
    return fail(ctx, "BAD_PAYLOAD", "ban_seconds: a whole number of seconds, 1 to 10 years");
  }
  return { user: b.user, banSeconds: ban as number | undefined };
});

function fail(ctx: z.RefinementCtx, code: string, message: string): never {
  ctx.addIssue({ code: "custom", message, params: { code } });
  return z.NEVER as never;
}

export function createApi({ engine, chat, config }: ApiDeps) {
  const keyDigest = config.apiKey === undefined ? undefined : digest(config.apiKey);
  const privateReads = config.apiKey !== undefined || config.authSecret !== undefined || config.authPublicKey !== undefined;
  const messageBody = postMessageBody(config.maxTextLength);
  /**
   * The list of rooms reads every room's presence (a SCAN and a read per room), and in the open
   * chat anyone may ask for it as often as they like: requests that come while one read runs share
   * the next one (each answer read after its request came), so a flood costs two reads at a time.
   */
  const roomList = new SharedQuery(() => engine.rooms());
  const rooms = () => roomList.get();

  /** Throws 401 unless the request carries the key (Bearer, any case), compared in constant time. */
  function requireKey(req: IncomingMessage): void {
    const header = req.headers.authorization ?? "";
    const match = /^bearer\s+(\S+)\s*$/i.exec(header);
    const ok = keyDigest !== undefined && match !== null && timingSafeEqual(digest(match[1]!), keyDigest);
    if (!ok) {
      throw new ApiRefusal(
        refusal(401, "UNAUTHORIZED", keyDigest === undefined ? "this endpoint needs the API key, and none is configured (--api-key)" : "Authorization: Bearer <API key> is missing or wrong", {
          "www-authenticate": 'Bearer realm="roomcast"',
        }),
      );
    }
  }

  function room(raw: string): string {
    let decoded: string;
    try {
      decoded = decodeURIComponent(raw);
    } catch {
      throw new ApiRefusal(refusal(400, "BAD_ROOM", "the room id is not valid percent-encoding"));
    }
    const id = roomId(decoded);
    if (id === undefined) throw new ApiRefusal(refusal(400, "BAD_ROOM", "a room id is 1 to 64 letters or digits of any script, or _ - . :"));
    return id;
  }

  async function body<T>(req: IncomingMessage, schema: z.ZodType<T>): Promise<T> {
    const raw = await readBody(req);
    let value: unknown;
    try {
      value = JSON.parse(raw);
    } catch {
      throw new ApiRefusal(refusal(400, "BAD_PAYLOAD", "the body must be JSON"));
    }
    if (typeof value !== "object" || value === null || Array.isArray(value)) throw new ApiRefusal(refusal(400, "BAD_PAYLOAD", "the body must be a JSON object"));
    const parsed = schema.safeParse(value);
    if (!parsed.success) {
      const issue = parsed.error.issues[0];
      const code = (issue && "params" in issue ? (issue.params as { code?: string } | undefined)?.code : undefined) ?? "BAD_PAYLOAD";
      throw new ApiRefusal(refusal(400, code, issue?.message ?? "the body does not hold the documented fields"));
    }
    return parsed.data;
  }

  /** Answers an /api/ request, or undefined when the path is not the API's. */
  async function answer(req: IncomingMessage, url: URL): Promise<ApiAnswer | undefined> {
    const path = url.pathname;
    const method = req.method ?? "GET";
    const read = method === "GET" || method === "HEAD";

    if (path === "/api/rooms" || path === "/api/stats") {
      if (!read) return methodNotAllowed("GET");
      if (privateReads) requireKey(req);
      return { status: 200, body: path === "/api/rooms" ? { rooms: await rooms() } : await engine.stats() };
    }

    const roomRead = /^\/api\/rooms\/([^/]+)\/(history|presence)$/.exec(path);
    if (roomRead) {
      if (!read) return methodNotAllowed("GET");
      if (privateReads) requireKey(req);
      const id = room(roomRead[1]!);
      if (roomRead[2] === "presence") return { status: 200, body: await engine.presenceSnapshot(id) };
      const rawLimit = url.searchParams.get("limit");
      const limit = rawLimit === null ? defaultPage(config) : Number(rawLimit);
      if (!Number.isInteger(limit) || limit < 1 || limit > config.historySize) {
        return refusal(400, "BAD_LIMIT", `limit must be a whole number from 1 to ${config.historySize}`);
      }
      const rawBefore = url.searchParams.get("before");
      const before = rawBefore === null ? undefined : canonicalId(rawBefore);
      if (rawBefore !== null && before === undefined) return refusal(400, "BAD_PAYLOAD", "before must be a message id such as 1700000000000-0");
      const { messages, truncated } = await engine.history(id, { limit, before });
      return { status: 200, body: { messages, more: truncated } };
    }

    const messages = /^\/api\/rooms\/([^/]+)\/messages$/.exec(path);
    if (messages) {
      if (method !== "POST") return methodNotAllowed("POST");
      requireKey(req);
      const id = room(messages[1]!);
      const { username, text } = await body(req, messageBody);
      const message = await chat.post(id, username, text);
      return { status: 200, body: { id: message.id } };
    }

    const one = /^\/api\/rooms\/([^/]+)\/messages\/([^/]+)$/.exec(path);
    if (one) {
      if (method !== "DELETE") return methodNotAllowed("DELETE");
      requireKey(req);
      const id = room(one[1]!);
      let rawId = one[2]!;
      try {
        rawId = decodeURIComponent(rawId);
      } catch {
        return refusal(400, "BAD_PAYLOAD", "the message id is not valid percent-encoding");
      }
      const messageId = canonicalId(rawId);
      if (messageId === undefined) return refusal(400, "BAD_PAYLOAD", "a message id is two whole numbers, as in 1700000000000-0");
      if (!(await chat.deleteMessage(id, messageId))) return refusal(404, "NOT_FOUND", "the room's history holds no such message");
      return { status: 200, body: { id: messageId } };
    }

    const kick = /^\/api\/rooms\/([^/]+)\/kick$/.exec(path);
    if (kick) {
      if (method !== "POST") return methodNotAllowed("POST");
      requireKey(req);
      const id = room(kick[1]!);
      const { user, banSeconds } = await body(req, kickBody);
      await chat.kick(id, user, banSeconds);
      return { status: 200, body: banSeconds === undefined ? { user } : { user, bannedUntil: Date.now() + banSeconds * 1000 } };
    }

    return undefined;
  }

  return async (req: IncomingMessage, url: URL): Promise<ApiAnswer | undefined> => {
    try {
      return await answer(req, url);
    } catch (err) {
      if (err instanceof ApiRefusal) return err.answer;
      if (err instanceof ChatError) return err.code === "UNAVAILABLE" ? refusal(503, "UNAVAILABLE", "Redis is unreachable: nothing was done") : refusal(400, err.code, err.message);
      throw err;
    }
  };
}

/** The request body as text; refused (400) past MAX_BODY_BYTES without reading the rest. */
function readBody(req: IncomingMessage): Promise<string> {
  const declared = Number(req.headers["content-length"] ?? 0);
  if (declared > MAX_BODY_BYTES) return Promise.reject(new ApiRefusal(refusal(400, "BAD_PAYLOAD", `the body is over ${MAX_BODY_BYTES / 1024} KB`)));
  return new Promise((resolve, reject) => {
    const chunks: Buffer[] = [];
    let size = 0;
    req.on("data", (chunk: Buffer) => {
      size += chunk.length;
      if (size > MAX_BODY_BYTES) {
        req.removeAllListeners("data");
        req.pause();
        reject(new ApiRefusal(refusal(400, "BAD_PAYLOAD", `the body is over ${MAX_BODY_BYTES / 1024} KB`)));
        return;
      }
      chunks.push(chunk);
    });
    req.once("end", () => resolve(Buffer.concat(chunks).toString("utf8")));
    req.once("error", reject);
  });
}

function methodNotAllowed(allow: string): ApiAnswer {
  return refusal(405, "METHOD_NOT_ALLOWED", `this endpoint answers ${allow}`, { allow });
}

function digest(key: string): Buffer {
  return createHash("sha256").update(key, "utf8").digest();
}
