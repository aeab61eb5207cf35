// A moveHead entry checked against the version objects it names, before a follower acknowledges
// it. The entry carries each version's record (root, parents, author, clock, message) beside
// the version's id, and the metadata stores the record as given: a leader that is buggy or an
// impostor holding the cluster token could record parents, authors or messages the version
// object does not have, or move a folder's head to a version that does not build on it (one of
// another folder, whose parents are that folder's history). A commit never makes either
// (node/commit.ts: the head's first parent is the head it moves from, a merge's second the
// pushed version; a folder's first move is free to name any parent), so an honest member refuses to acknowledge such an entry; without a majority
// it never commits.
//
// Deterministic: it reads only the entry and the content-addressed objects (held by then,
// strong-fetch.ts), so every honest member judges an entry alike.
import { idEquals, idToHex, type ObjectId } from "../core/id.ts";
import type { Version } from "../core/objects.ts";
import type { NewVersionRecord } from "../node/metadata-records.ts";
import type { StrongCommand } from "./strong-consensus.ts";

export class StrongMoveError extends Error {
  override name = "StrongMoveError";
}

type MoveHead = Extract<StrongCommand, { op: "moveHead" }>;

/** Throws StrongMoveError when a record differs from its version object or the head does not build on `expected`. */
export async function checkMoveHead(decodeVersion: (id: ObjectId) => Promise<Version>, command: MoveHead): Promise<void> {
  const recorded = new Set(command.versions.map((v) => idToHex(v.id)));
  let head: Version | undefined;
  for (const record of command.versions) {
    const version = await decodeVersion(record.id);
    const differs = recordDiffers(record, version);
    if (differs) throw new StrongMoveError(`moveHead of ${command.folder} records version ${idToHex(record.id)} with a ${differs} its object does not have`);
    if (idEquals(record.id, command.head)) head = version;
  }
  if (!head) throw new StrongMoveError(`moveHead of ${command.folder}: the head is not one of the versions it records`);
  // The log's first move of a folder has no head to build on; its head may still name a parent
  // (a folder the log turned strong from eventual: the leader's old eventual head, kept as
  // history there and perhaps nowhere else, server/consensus-heads.ts).
  const expected = command.expected;
  if (expected === null) return;
  if (!(head.parents.length > 0 && idEquals(head.parents[0]!, expected))) {
    throw new StrongMoveError(`moveHead of ${command.folder}: head ${idToHex(command.head)} does not build on ${idToHex(expected)}, the head it moves from`);
  }
  for (const parent of head.parents) {
    if (idEquals(parent, expected) || recorded.has(idToHex(parent))) continue;
    throw new StrongMoveError(`moveHead of ${command.folder}: head ${idToHex(command.head)} names parent ${idToHex(parent)}, neither the head it moves from nor a version the move records`);
  }
}

/** The first field of `record` that is not its version object's, or undefined. */
function recordDiffers(record: NewVersionRecord, version: Version): string | undefined {
  if (!idEquals(record.root, version.root)) return "root";
  if (record.parents.length !== version.parents.length || record.parents.some((p, i) => !idEquals(p, version.parents[i]!))) return "parents";
  if (record.author !== version.author) return "author";
  if (record.hlcWallMs !== version.hlcWallMs || record.hlcCounter !== version.hlcCounter) return "clock";
  if (record.message !== version.message) return "message";
  return undefined;
}
