/** JWTs for tests, made with jose as an application's backend would. */
import { generateKeyPairSync, type KeyObject } from "node:crypto";
import { writeFileSync } from "node:fs";
import { SignJWT, type JWTPayload } from "jose";

export const SECRET = "a-test-secret-of-at-least-32-characters!";

export interface Claims extends JWTPayload {
  name?: string;
  rooms?: string[];
}

/** A token for `sub`, valid `seconds` from now (negative: already expired), HS256 with SECRET by default. */
export async function mint(claims: Claims, seconds = 600, key: Uint8Array | KeyObject = new TextEncoder().encode(SECRET), alg = "HS256"): Promise<string> {
  let jwt = new SignJWT(claims).setProtectedHeader({ alg }).setIssuedAt();
  if (claims.exp === undefined) jwt = jwt.setExpirationTime(Math.floor(Date.now() / 1000) + seconds);
  return jwt.sign(key);
}

/** An unsigned token (`alg: none`), which must never be accepted. */
export function unsigned(claims: Claims): string {
  const b64 = (value: unknown) => Buffer.from(JSON.stringify(value)).toString("base64url");
  return `${b64({ alg: "none", typ: "JWT" })}.${b64({ exp: Math.floor(Date.now() / 1000) + 600, ...claims })}.`;
}

/** A key pair, its public key written as PEM to `file`. */
export function keyPair(type: "rsa" | "ec", file: string): { privateKey: KeyObject; publicPem: string } {
  const { privateKey, publicKey } = type === "rsa" ? generateKeyPairSync("rsa", { modulusLength: 2048 }) : generateKeyPairSync("ec", { namedCurve: "prime256v1" });
  const publicPem = publicKey.export({ type: "spki", format: "pem" }).toString();
  writeFileSync(file, publicPem);
  return { privateKey, publicPem };
}
