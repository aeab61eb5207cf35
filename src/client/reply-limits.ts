// The most bytes the client reads of each route's reply, from the bounds the node itself keeps
// (core/limits.ts): no reply is read past what the real one can be, so a node that sends an
// endless or oversized body costs a bounded amount of memory and gets one clear error.
import { LIMITS } from "../core/limits.ts";

/** An error reply is a sentence: more than this is not read (the reason is then the HTTP status text). */
export const ERROR_REPLY_BYTES_MAX = 64 * 1024;

/** A JSON record (health, a folder, a version, a commit, retention, a gc report): the JSON body bound. */
export const JSON_REPLY_BYTES_MAX = LIMITS.jsonBodyBytesMax;

/** One folder of a listing: a name of at most 128 bytes, two ids, its mode, retention and times. */
const FOLDER_JSON_BYTES_MAX = 2 * 1024;
export const FOLDER_PAGE_BYTES_MAX = LIMITS.foldersPageMax * FOLDER_JSON_BYTES_MAX + 4096;

/**
 * One version of a history page: its message (each byte at most 6 in JSON, as \u00XX), up to
 * versionParentsMax parent ids, the other ids, author, time and counts.
 */
const VERSION_JSON_BYTES_MAX = 6 * LIMITS.messageLengthBytesMax + LIMITS.versionParentsMax * 70 + 2048;
export const VERSION_PAGE_BYTES_MAX = LIMITS.versionsPageMax * VERSION_JSON_BYTES_MAX + 4096;

/** The status: a page of folders, each with its vector and its standing against each peer. */
export const STATUS_REPLY_BYTES_MAX = LIMITS.foldersPageMax * 32 * 1024;

/**
 * The largest reply read at all: twice a request body. A commit's or a restore's answer lists
 * every conflict of its merge (as many as the paths both sides changed, which the node does not
 * bound; 100 000 are about 50 MB), and a verify report every object it found corrupt or missing;
 * a reply cut short there would report a commit that landed as failed.
 */
export const LARGEST_REPLY_BYTES_MAX = 2 * LIMITS.requestBodyBytesMax;
export const COMMIT_REPLY_BYTES_MAX = LARGEST_REPLY_BYTES_MAX;
export const VERIFY_REPLY_BYTES_MAX = LARGEST_REPLY_BYTES_MAX;

/** The ids a "which do you lack?" answer can hold: a subset of those asked, 34 bytes each in msgpack. */
export function missingReplyBytesMax(idsAsked: number): number {
  return 64 + 34 * idsAsked;
}

/**
 * A download batch: at most the object bytes the caller expects (the chunk lengths a tree names,
 * or one structured object's bound per id), never more than the request body's worth the node
 * sends at most, plus the framing of each id asked (an [id, bytes] pair or an id in `missing`).
 */
export function downloadReplyBytesMax(idsAsked: number, objectBytesMax: number = LIMITS.requestBodyBytesMax): number {
  return Math.min(objectBytesMax, LIMITS.requestBodyBytesMax) + 64 + 80 * idsAsked;
}

/** One object's bytes (GET /v1/objects/:id). */
export const OBJECT_REPLY_BYTES_MAX = LIMITS.objectBytesMax;
