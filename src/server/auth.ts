// Bearer-token checks. Tokens are compared in constant time (on their SHA-256, so the
// comparison does not leak the length either).
import { createHash, timingSafeEqual } from "node:crypto";

function digest(text: string): Buffer {
  return createHash("sha256").update(text).digest();
}

export function tokensEqual(given: string, expected: string): boolean {
  return timingSafeEqual(digest(given), digest(expected));
}

/** The token from an `Authorization: Bearer T` header, or undefined when absent or malformed. */
export function bearerToken(header: string | undefined | null): string | undefined {
  if (!header) return undefined;
  const match = /^Bearer ([\x21-\x7e]+)$/.exec(header);
  return match?.[1];
}
