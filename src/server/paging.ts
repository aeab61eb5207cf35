// Paging of the list routes: every list the node answers is one page of at most a fixed number
// of items (core/limits.ts), with the cursor of the page after it (`next`, null on the last), so
// no reply grows with the number of folders or the length of a history.
//
// Query parameters: `limit` (1 up to the route's maximum, which is also the default; a larger
// one is lowered to the maximum, and the reply's `limit` says what was used) and `cursor` (a
// `next` from an earlier page, opaque to clients). A cursor names a position in a keyset order
// (a version's sequence, a folder's name), not an offset, so items added while a client pages
// never shift or repeat what it reads next.
import type { Context } from "hono";
import { UserError } from "../node/node.ts";
import { quoteForError } from "./validate.ts";

/** The page size a request asks for, within [1, max]; `max` when it asks for none. */
export function pageLimit(c: Context, max: number): number {
  const text = c.req.query("limit");
  if (text === undefined) return max;
  if (!/^[0-9]{1,16}$/.test(text) || !Number.isSafeInteger(Number(text)) || Number(text) < 1) {
    throw new UserError(`limit ${quoteForError(text)}: must be a whole number from 1 (at most ${max} are sent per page)`);
  }
  return Math.min(Number(text), max);
}

// A history cursor is "s" and a version's sequence: the page after holds the versions recorded
// before it. The letter keeps it from being read as a count, and leaves room for other kinds.
const SEQUENCE_CURSOR = /^s([1-9][0-9]{0,15})$/;

export function sequenceCursor(sequence: number): string {
  return `s${sequence}`;
}

/** The sequence a history cursor names; undefined when the request has no cursor. */
export function sequenceFromCursor(c: Context): number | undefined {
  const text = c.req.query("cursor");
  if (text === undefined) return undefined;
  const match = SEQUENCE_CURSOR.exec(text);
  const sequence = match ? Number(match[1]) : NaN;
  if (!Number.isSafeInteger(sequence)) throw new UserError(`cursor ${quoteForError(text)}: not a cursor of this list (pass the "next" of the page before)`);
  return sequence;
}

// A folder-list cursor is "n" and the name the page starts at (names are ASCII without
// separators, so it needs no escaping beyond the URL's).
export function nameCursor(name: string): string {
  return `n${name}`;
}

export function nameFromCursor(c: Context): string | undefined {
  const text = c.req.query("cursor");
  if (text === undefined) return undefined;
  if (!text.startsWith("n") || text.length < 2 || text.length > 1 + 1024) {
    throw new UserError(`cursor ${quoteForError(text)}: not a cursor of this list (pass the "next" of the page before)`);
  }
  return text.slice(1);
}
