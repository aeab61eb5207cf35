// Small validators for JSON request bodies: each returns the value or throws a UserError
// whose message says which field is wrong and why.
import { idFromHex, isIdHex, type ObjectId } from "../core/id.ts";
import { validateFolderName, validateVersionRef } from "../core/names.ts";
import { nodeIdProblem, UserError } from "../node/node.ts";

export function requireObject(value: unknown): Record<string, unknown> {
  if (typeof value !== "object" || value === null || Array.isArray(value)) throw new UserError("the body must be a JSON object");
  return value as Record<string, unknown>;
}

export function requireId(value: unknown, field: string): ObjectId {
  if (!isIdHex(value)) throw new UserError(`${field} must be an object id (64 lowercase hex digits)`);
  return idFromHex(value);
}

export function optionalId(value: unknown, field: string): ObjectId | null {
  if (value === null || value === undefined) return null;
  return requireId(value, field);
}

/** A string field of at most `maxBytes` bytes of UTF-8 (the limits are in bytes: see core/limits.ts). */
export function optionalString(value: unknown, field: string, maxBytes: number, fallback: string): string {
  if (value === undefined || value === null) return fallback;
  if (typeof value !== "string") throw new UserError(`${field} must be a string`);
  if (Buffer.byteLength(value) > maxBytes) throw new UserError(`${field} must be at most ${maxBytes} bytes of UTF-8`);
  return value;
}

export function optionalCount(value: unknown, field: string, fallback: number, max = Number.MAX_SAFE_INTEGER): number {
  if (value === undefined || value === null) return fallback;
  if (typeof value !== "number" || !Number.isSafeInteger(value) || value < 0 || value > max) {
    throw new UserError(`${field} must be a whole number from 0 to ${max}`);
  }
  return value;
}

/** A count that may be explicitly null (meaning "no limit"). */
export function optionalNullableCount(value: unknown, field: string): number | null | undefined {
  if (value === undefined) return undefined;
  if (value === null) return null;
  return optionalCount(value, field, 0);
}

/** A value as an error message shows it: quoted and escaped by JSON, and cut short. */
export function quoteForError(value: string, maxChars = 64): string {
  return value.length > maxChars ? `${JSON.stringify(value.slice(0, maxChars))}…` : JSON.stringify(value);
}

/** Throws a 400 UserError naming `field` when `value` breaks `rule`. */
export function checkNamed(field: string, value: string, rule: (value: string) => string | undefined): void {
  const problem = rule(value);
  if (problem) throw new UserError(`${field} ${quoteForError(value)}: ${problem}`);
}

function requireNamed(value: unknown, field: string, what: string, rule: (value: string) => string | undefined): string {
  if (typeof value !== "string") throw new UserError(`${field} must be ${what}`);
  checkNamed(field, value, rule);
  return value;
}

/** A folder name in a body: the rule of every folder route (core/names.ts). */
export function requireFolderName(value: unknown, field: string): string {
  return requireNamed(value, field, "a folder name", validateFolderName);
}

/** A version id or prefix in a body. */
export function requireVersionRef(value: unknown, field: string): string {
  return requireNamed(value, field, "a version id", validateVersionRef);
}

export function requireNodeId(value: unknown, field: string): string {
  return requireNamed(value, field, "a node id", nodeIdProblem);
}
