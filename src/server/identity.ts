/**
 * Who a connection is, when roomcast is configured with tokens (`--auth-secret`,
 * `--auth-public-key`): the application that embeds the chat signs a JWT for each of its users
 * (`sub`: the user's id, `name`: what people see, `exp`, optionally `rooms`), and every
 * connection carries one in its handshake. Verified with `jose`; only the configured algorithms
 * are accepted (never `none`; an HS256 token is never checked against a public key's bytes).
 * Without those options there is no token: anyone picks a name (the article's open chat).
 */
import { createPublicKey, createSecretKey, type KeyObject } from "node:crypto";
import { readFileSync } from "node:fs";
import { errors, jwtVerify, type JWTHeaderParameters } from "jose";
import { ChatError } from "../chat/errors.js";
import { graphemeLength, USERNAME_MAX, type ErrorCode } from "../protocol.js";
import { usernameSchema } from "../protocol-schemas.js";

/** A verified connection's identity. */
export interface Identity {
  /** `sub`: the user, as the application knows it. Presence, kick and ban key on it. */
  user: string;
  /** What members see. */
  name: string;
  /** `exp`, in epoch ms. */
  expiresAt: number;
  /** The rooms it may enter (`tea`, or a prefix `support-*`); undefined: every room. */
  rooms: string[] | undefined;
}

export interface AuthConfig {
  authSecret?: string | undefined;
  authPublicKey?: string | undefined;
}

/** A start-up mistake in the auth options (an unreadable key file), told in one line. */
export class AuthConfigError extends Error {}

export class TokenVerifier {
  private constructor(
    private readonly keys: Map<string, KeyObject>,
    private readonly algorithms: string[],
  ) {}

  /** The verifier for these options, or undefined when no token is required (open mode). */
  static from(config: AuthConfig): TokenVerifier | undefined {
    const keys = new Map<string, KeyObject>();
    if (config.authSecret !== undefined) keys.set("HS256", createSecretKey(Buffer.from(config.authSecret, "utf8")));
    if (config.authPublicKey !== undefined) {
      let key: KeyObject;
      try {
        key = createPublicKey(readFileSync(config.authPublicKey, "utf8"));
      } catch (err) {
        throw new AuthConfigError(`--auth-public-key ${config.authPublicKey}: ${err instanceof Error ? err.message.split("\n")[0] : String(err)}`);
      }
      const type = key.asymmetricKeyType;
      const curve = key.asymmetricKeyDetails?.namedCurve;
      if (type === "rsa") keys.set("RS256", key);
      else if (type === "ec" && curve === "prime256v1") keys.set("ES256", key);
      else throw new AuthConfigError(`--auth-public-key ${config.authPublicKey}: an RSA or EC P-256 public key is needed (got ${type}${curve ? ` ${curve}` : ""})`);
    }
    return keys.size === 0 ? undefined : new TokenVerifier(keys, [...keys.keys()]);
  }

  /** The token's identity; throws ChatError UNAUTHORIZED (TOKEN_EXPIRED when only `exp` is wrong). */
  async verify(token: unknown): Promise<Identity> {
    if (typeof token !== "string" || token.length === 0) throw refuse("UNAUTHORIZED", "a token is required: connect with auth: { token }");
    if (token.length > 16_384) throw refuse("UNAUTHORIZED", "the token is too long");
    let payload;
    try {
      ({ payload } = await jwtVerify(token, (header: JWTHeaderParameters) => this.key(header), {
        algorithms: this.algorithms,
        requiredClaims: ["sub", "exp"],
      }));
    } catch (err) {
      if (err instanceof errors.JWTExpired) throw refuse("UNAUTHORIZED", "the token has expired");
      throw refuse("UNAUTHORIZED", "the token is not valid");
    }
    const user = payload.sub;
    if (typeof user !== "string" || user.length === 0 || user.length > 256) throw refuse("UNAUTHORIZED", "the token's sub must be a user id");
    const name = payload["name"] === undefined ? defaultName(user) : usernameSchema.safeParse(payload["name"]);
    if (typeof name !== "string" && !name.success) throw refuse("UNAUTHORIZED", `the token's name must be 1 to ${USERNAME_MAX} characters`);
    const rooms = payload["rooms"];
    if (rooms !== undefined && !(Array.isArray(rooms) && rooms.every((r) => typeof r === "string"))) {
      throw refuse("UNAUTHORIZED", "the token's rooms must be a list of room ids");
    }
    return { user, name: typeof name === "string" ? name : name.data, expiresAt: payload.exp! * 1000, rooms: rooms as string[] | undefined };
  }

  private key(header: JWTHeaderParameters): KeyObject {
    const key = this.keys.get(header.alg);
    // jose also checks `algorithms`; this makes the key's own algorithm the only one it is used for
    if (!key) throw new Error(`algorithm ${header.alg} is not accepted`);
    return key;
  }
}

/** Whether the identity may enter the room: its `rooms` claim lists it, or a prefix of it (`support-*`). */
export function mayEnter(identity: Identity, room: string): boolean {
  if (identity.rooms === undefined) return true;
  return identity.rooms.some((r) => (r.endsWith("*") ? room.startsWith(r.slice(0, -1)) : r === room));
}

/** Without a `name` claim people see the user id, cut to a name's length. */
function defaultName(user: string): string {
  if (graphemeLength(user) <= USERNAME_MAX) return user;
  const parts = [...new Intl.Segmenter(undefined, { granularity: "grapheme" }).segment(user)].slice(0, USERNAME_MAX - 1);
  return `${parts.map((p) => p.segment).join("")}…`;
}

function refuse(code: ErrorCode, message: string): ChatError {
  return new ChatError(code, message);
}
