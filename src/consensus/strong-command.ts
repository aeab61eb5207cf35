// A strong command (strong-consensus.ts) as the bytes of a log entry, and back.
//
// Canonical msgpack arrays (core/encoding.ts), so the same command always makes the same bytes
// on every member. Decoding never trusts the shape: every member decodes what some leader
// wrote, and a leader may run another version, be buggy or be an impostor holding the cluster
// token. Every field is checked (folder names by core/names.ts, ids 32 bytes, node ids,
// strings and counts bounded by LIMITS), and a bad entry is a StrongCommandError, never a
// half-built command.
import { decodeMsgpack, DecodeError, encodeCanonical } from "../core/encoding.ts";
import { idEquals, idFromBytes, isObjectIdBytes, type ObjectId } from "../core/id.ts";
import { LIMITS } from "../core/limits.ts";
import { validateFolderName } from "../core/names.ts";
import type { NewVersionRecord, VersionOrigin } from "../node/metadata-records.ts";
import { nodeIdProblem } from "../node/node-id.ts";
import type { StrongCommand } from "./strong-consensus.ts";

/** The format of a command's bytes: bumped when the layout changes, so an old member refuses a new entry instead of misreading it. */
export const STRONG_COMMAND_FORMAT = 1;

/** Most versions one moveHead records: the pushed one and, after a stale parent, the merge onto the head. */
export const MOVE_HEAD_VERSIONS_MAX = 2;

/** The largest encoded command: a moveHead of two versions with the longest messages and most parents is ~12 KiB. */
export const STRONG_COMMAND_BYTES_MAX = 64 * 1024;

const OP_CREATE_FOLDER = 1;
const OP_MOVE_HEAD = 2;
const OP_SET_RETENTION = 3;

const ORIGINS: readonly VersionOrigin[] = ["push", "merge", "restore", "replica"];

export class StrongCommandError extends Error {
  override name = "StrongCommandError";
}

export function encodeStrongCommand(command: StrongCommand): Uint8Array {
  // Checked on the way out too: a command this member could not decode must never enter the log.
  const bytes = encodeUnchecked(command);
  decodeStrongCommand(bytes);
  return bytes;
}

function encodeUnchecked(command: StrongCommand): Uint8Array {
  if (command.op === "createFolder") {
    return encodeCanonical([STRONG_COMMAND_FORMAT, OP_CREATE_FOLDER, command.folder, command.keepVersions, command.keepDays, command.atMs]);
  }
  if (command.op === "setRetention") {
    // An unchanged limit is `false`, apart from null (no limit) and a count.
    return encodeCanonical([STRONG_COMMAND_FORMAT, OP_SET_RETENTION, command.folder, command.keepVersions ?? (command.keepVersions === null ? null : false), command.keepDays ?? (command.keepDays === null ? null : false), command.atMs]);
  }
  const versions = command.versions.map((v) => [
    v.id,
    v.root,
    v.parents,
    v.author,
    v.hlcWallMs,
    v.hlcCounter,
    v.message,
    v.origin,
    v.files,
    v.totalBytes,
    v.createdMs,
  ]);
  return encodeCanonical([STRONG_COMMAND_FORMAT, OP_MOVE_HEAD, command.folder, command.expected, command.head, versions, command.atMs]);
}

export function decodeStrongCommand(bytes: Uint8Array): StrongCommand {
  if (bytes.length === 0) throw new StrongCommandError("a strong command is empty");
  if (bytes.length > STRONG_COMMAND_BYTES_MAX) throw new StrongCommandError(`a strong command is at most ${STRONG_COMMAND_BYTES_MAX} bytes, got ${bytes.length}`);
  let value: unknown;
  try {
    value = decodeMsgpack(bytes);
  } catch (error) {
    throw new StrongCommandError(`a strong command is not msgpack: ${(error as DecodeError).message}`);
  }
  if (!Array.isArray(value) || value.length < 2) throw new StrongCommandError("a strong command is not a list of fields");
  if (value[0] !== STRONG_COMMAND_FORMAT) throw new StrongCommandError(`a strong command of format ${JSON.stringify(value[0])} (this node reads format ${STRONG_COMMAND_FORMAT})`);
  switch (value[1]) {
    case OP_CREATE_FOLDER: {
      if (value.length !== 6) throw new StrongCommandError("createFolder has 6 fields");
      return {
        op: "createFolder",
        folder: folderName(value[2]),
        keepVersions: limitOrNull(value[3], "keepVersions"),
        keepDays: limitOrNull(value[4], "keepDays"),
        atMs: count(value[5], "atMs"),
      };
    }
    case OP_MOVE_HEAD: {
      if (value.length !== 7) throw new StrongCommandError("moveHead has 7 fields");
      const versions = value[5];
      if (!Array.isArray(versions) || versions.length === 0 || versions.length > MOVE_HEAD_VERSIONS_MAX) {
        throw new StrongCommandError(`moveHead records 1 to ${MOVE_HEAD_VERSIONS_MAX} versions`);
      }
      const head = id(value[4], "head");
      const decoded = versions.map((v, i) => versionRecord(v, i));
      // The head moves to a version the command itself records: a head never names one this node lacks.
      if (!decoded.some((v) => idEquals(v.id, head))) throw new StrongCommandError("moveHead's head is not one of the versions it records");
      return {
        op: "moveHead",
        folder: folderName(value[2]),
        expected: value[3] === null ? null : id(value[3], "expected"),
        head,
        versions: decoded,
        atMs: count(value[6], "atMs"),
      };
    }
    case OP_SET_RETENTION: {
      if (value.length !== 6) throw new StrongCommandError("setRetention has 6 fields");
      return {
        op: "setRetention",
        folder: folderName(value[2]),
        ...(value[3] === false ? {} : { keepVersions: limitOrNull(value[3], "keepVersions") }),
        ...(value[4] === false ? {} : { keepDays: limitOrNull(value[4], "keepDays") }),
        atMs: count(value[5], "atMs"),
      };
    }
    default:
      throw new StrongCommandError(`unknown strong command ${JSON.stringify(value[1])}`);
  }
}

function versionRecord(value: unknown, at: number): NewVersionRecord {
  const where = `versions[${at}]`;
  if (!Array.isArray(value) || value.length !== 11) throw new StrongCommandError(`${where} is not a version record of 11 fields`);
  const parents = value[2];
  if (!Array.isArray(parents) || parents.length > LIMITS.versionParentsMax) throw new StrongCommandError(`${where}.parents is a list of at most ${LIMITS.versionParentsMax} ids`);
  const author = value[3];
  // A replication merge has no author; every other version names the node that wrote it.
  if (typeof author !== "string" || (author !== "" && nodeIdProblem(author))) throw new StrongCommandError(`${where}.author is not a node id`);
  const message = value[6];
  if (typeof message !== "string" || Buffer.byteLength(message) > LIMITS.messageLengthBytesMax) {
    throw new StrongCommandError(`${where}.message is a string of at most ${LIMITS.messageLengthBytesMax} bytes`);
  }
  const origin = value[7];
  if (typeof origin !== "string" || !ORIGINS.includes(origin as VersionOrigin)) throw new StrongCommandError(`${where}.origin is not one of ${ORIGINS.join(", ")}`);
  return {
    id: id(value[0], `${where}.id`),
    root: id(value[1], `${where}.root`),
    parents: parents.map((p, i) => id(p, `${where}.parents[${i}]`)),
    author,
    hlcWallMs: count(value[4], `${where}.hlcWallMs`),
    hlcCounter: count(value[5], `${where}.hlcCounter`),
    message,
    origin: origin as VersionOrigin,
    files: count(value[8], `${where}.files`),
    totalBytes: count(value[9], `${where}.totalBytes`),
    createdMs: count(value[10], `${where}.createdMs`),
  };
}

function folderName(value: unknown): string {
  if (typeof value !== "string") throw new StrongCommandError("folder is not a name");
  const problem = validateFolderName(value);
  if (problem) throw new StrongCommandError(`folder: ${problem}`);
  return value;
}

function id(value: unknown, field: string): ObjectId {
  if (!isObjectIdBytes(value)) throw new StrongCommandError(`${field} is not a 32-byte id`);
  return idFromBytes(value);
}

function count(value: unknown, field: string): number {
  if (typeof value !== "number" || !Number.isSafeInteger(value) || value < 0) throw new StrongCommandError(`${field} is not a non-negative integer`);
  return value;
}

/** A retention limit: null (none) or a count, as the API takes one. */
function limitOrNull(value: unknown, field: string): number | null {
  if (value === null) return null;
  return count(value, field);
}
