// The sequential model of strong folders' heads: each folder's head is a compare-and-set
// register. A read answers the head; a push moves it from the head the node found (`before`) to
// the version it made (`after`). The push's own parent does not matter here: a push onto a stale
// parent is merged onto the current head, and then `before` is that head (the commit's
// `mergedWith`). So a push is legal only from the state it names as `before`: two acknowledged
// pushes from one `before`, a read of a head that was already replaced, a head that moves back,
// all leave no legal order.
//
// A push that never answered carries no output; after the run, the final history says whether it
// landed (each push has a unique message) and resolveIndeterminatePushes fills in what it did or
// drops it.
import type { Model } from "./checker.ts";
import type { Operation } from "./history.ts";

/** A version id in lowercase hex, or null for a folder with no version. */
export type Head = string | null;

export interface ReadInput {
  folder: string;
}

export interface PushInput {
  folder: string;
  /** The version message the push carries: unique over the run, so the final history identifies it. */
  message: string;
}

/** What a push did: the head it found when it moved it, and the new head. */
export interface PushOutput {
  before: Head;
  after: string;
}

export type HeadInput = ReadInput | PushInput;
export type HeadOutput = Head | PushOutput;
export type HeadOperation = Operation<HeadInput, HeadOutput>;

export const READ = "read";
export const PUSH = "push";

export const headRegisterModel: Model<Head, HeadInput, HeadOutput> = {
  init: () => null,
  step(state, input, output, kind) {
    if (kind === READ) {
      // An indeterminate read says nothing about the head.
      if (output === undefined) return { legal: true, state };
      return { legal: output === state, state };
    }
    if (kind === PUSH) {
      if (output === undefined) {
        throw new Error(`push "${(input as PushInput).message}" never answered and was not resolved: run resolveIndeterminatePushes on the history first`);
      }
      const push = output as PushOutput;
      return push.before === state ? { legal: true, state: push.after } : { legal: false, state };
    }
    throw new Error(`the head register has no operation "${kind}"`);
  },
  stateKey: (state) => state ?? "(none)",
  partitionKey: (input) => input.folder,
  describe(operation) {
    if (operation.kind === READ) {
      return `read ${operation.input.folder} -> ${operation.output === undefined ? "(no answer)" : short(operation.output as Head)}`;
    }
    const message = (operation.input as PushInput).message;
    if (operation.output === undefined) return `push "${message}" to ${operation.input.folder} -> (no answer)`;
    const push = operation.output as PushOutput;
    return `push "${message}" to ${operation.input.folder}: ${short(push.before)} -> ${short(push.after)}`;
  },
};

function short(head: Head): string {
  return head === null ? "(none)" : head.slice(0, 12);
}

/** A push's output from a commit's answer (docs/api.md, CommitJson): the head it moved from is the merge's base when it merged. */
export function pushOutputOfCommit(commit: { version: string; parent: string | null; mergedWith: string | null }): PushOutput {
  return { before: commit.mergedWith ?? commit.parent, after: commit.version };
}

/** Finds what the push carrying `message` into `folder` did, from the final history; null when no version carries it. */
export type PushLookup = (folder: string, message: string) => PushOutput | null;

/**
 * Resolves the history's indeterminate operations with the final history: a push that never
 * answered gets the output of what it did when a version carries its message (its return stays
 * at infinity: it took effect some time after its call), and is dropped when none does (it never
 * took effect). Indeterminate reads are dropped: they say nothing. Messages must be unique.
 */
export function resolveIndeterminatePushes(operations: readonly HeadOperation[], lookup: PushLookup): HeadOperation[] {
  const messages = new Set<string>();
  const resolved: HeadOperation[] = [];
  for (const operation of operations) {
    if (operation.kind === PUSH) {
      const { folder, message } = operation.input as PushInput;
      const key = `${folder}\u0000${message}`;
      if (messages.has(key)) throw new Error(`two pushes to ${folder} carry the message "${message}"; each must be unique`);
      messages.add(key);
    }
    if (operation.returnMs !== Infinity || operation.output !== undefined) {
      resolved.push(operation);
      continue;
    }
    if (operation.kind !== PUSH) continue;
    const { folder, message } = operation.input as PushInput;
    const output = lookup(folder, message);
    if (output) resolved.push({ ...operation, output });
  }
  return resolved;
}

/**
 * The acknowledged pushes the final history does not hold as acknowledged: the version carrying
 * the message is missing (a lost write), or it moved the head from or to something else than
 * the answer said.
 */
export function lostAcknowledgedPushes(operations: readonly HeadOperation[], lookup: PushLookup): { operation: HeadOperation; found: PushOutput | null }[] {
  const lost: { operation: HeadOperation; found: PushOutput | null }[] = [];
  for (const operation of operations) {
    if (operation.kind !== PUSH || operation.returnMs === Infinity || operation.output === undefined) continue;
    const { folder, message } = operation.input as PushInput;
    const found = lookup(folder, message);
    const acknowledged = operation.output as PushOutput;
    if (!found || found.before !== acknowledged.before || found.after !== acknowledged.after) lost.push({ operation, found });
  }
  return lost;
}

/** A version as the versions routes list it (VersionJson's fields this needs). */
export interface VersionSummary {
  id: string;
  parents: string[];
  message: string;
}

/**
 * A lookup over one folder's whole version list. The version carrying the message is the one
 * pushed; when a merge has it as second parent, the push was merged onto the merge's first
 * parent (the head then) and moved the head to the merge; else it moved the head from its own
 * parent to itself.
 */
export function pushOutputsFromVersions(versions: readonly VersionSummary[]): (message: string) => PushOutput | null {
  const byMessage = new Map<string, VersionSummary>();
  const mergeOf = new Map<string, VersionSummary>();
  for (const version of versions) {
    if (byMessage.has(version.message)) throw new Error(`two versions carry the message "${version.message}"`);
    byMessage.set(version.message, version);
    if (version.parents.length === 2) {
      if (mergeOf.has(version.parents[1])) throw new Error(`two merges take ${version.parents[1]} as their second parent`);
      mergeOf.set(version.parents[1], version);
    }
  }
  return (message) => {
    const pushed = byMessage.get(message);
    if (!pushed) return null;
    const merge = mergeOf.get(pushed.id);
    if (merge) return { before: merge.parents[0], after: merge.id };
    return { before: pushed.parents[0] ?? null, after: pushed.id };
  };
}
