// What the Raft log's commands do to this node's metadata (every member applies the same
// commands in the same order, so every member ends with the same strong heads), and the
// snapshot of that state the log is compacted into.
//
// Deterministic: the outcome of a command depends only on the state the log built before it,
// never on this node's clock or on anything outside the log. One exception is handled here: a
// folder made *eventual* on this node (on a minority side, before the log created it strong)
// is turned strong with its versions kept as history; its eventual head is not one the log ever
// set, so until the log first moves it the folder counts as having no head (the log's view).
import { idEquals, idToHex, type ObjectId } from "../core/id.ts";
import { decodeMsgpack, encodeCanonical } from "../core/encoding.ts";
import { validateFolderName } from "../core/names.ts";
import type { RaftNodeId } from "../core/raft/types.ts";
import { HeadMovedError, UnknownFolderError, type FolderRecord, type NewVersionRecord } from "../node/metadata-records.ts";
import { nodeIdProblem } from "../node/node-id.ts";
import type { DsyncNode } from "../node/node.ts";
import type { ApplyOutcome, StrongCommand } from "./strong-consensus.ts";

/** Where a folder turned strong keeps the eventual head it had then (until the log first moves it). */
const FOREIGN_HEAD_KEY = "raft_foreign_head:";

/**
 * A strong folder's head as the log set it, given the head this node's metadata holds: null
 * while that is the eventual head the folder had when the log turned it strong (the log has not
 * moved it since). What a proposer names as a move's `expected`, so the log's compare-and-set
 * (the same on every member) starts from the head the log knows.
 */
export async function headAsTheLogSet(metadata: Pick<DsyncNode["metadata"], "getMeta">, folder: string, head: ObjectId | null): Promise<ObjectId | null> {
  if (head === null) return null;
  const foreign = await metadata.getMeta(FOREIGN_HEAD_KEY + folder);
  return foreign && foreign === idToHex(head) ? null : head;
}

/** The format of a snapshot's data: bumped when its layout changes. */
export const STRONG_SNAPSHOT_FORMAT = 1;

/** Most strong folders and members a snapshot may name (bounds what a follower decodes). */
export const SNAPSHOT_FOLDERS_MAX = 400_000;
export const SNAPSHOT_MEMBERS_MAX = 1024;
/** The msgpack values a snapshot at those bounds holds (six a folder, three a member): above the decoder's default million. */
export const SNAPSHOT_VALUES_MAX = 4 + 6 * SNAPSHOT_FOLDERS_MAX + 3 * SNAPSHOT_MEMBERS_MAX;

/** The longest member address kept (a base URL). */
export const MEMBER_ADDRESS_CHARS_MAX = 2048;

export interface StrongFolderState {
  name: string;
  head: ObjectId | null;
  keepVersions: number | null;
  keepDays: number | null;
  createdMs: number;
}

/** The state machine at an index: every strong folder with its head and retention, and how members are reached. */
export interface StrongSnapshotState {
  folders: StrongFolderState[];
  addresses: Array<{ id: RaftNodeId; address: string }>;
}

export class StrongSnapshotError extends Error {
  override name = "StrongSnapshotError";
}

export class StrongStateMachine {
  constructor(
    private readonly node: DsyncNode,
    private readonly log: (line: string) => void,
    /**
     * Called before a head moves, with the versions the move records: makes sure their objects
     * are still here (fetched again if a collection took them since the entry was acknowledged),
     * throwing when they cannot be had, so a head never names what this node lacks.
     */
    private readonly ensureHeld: (versions: readonly NewVersionRecord[]) => Promise<void> = async () => {},
  ) {}

  /** Applies one committed command to this node's metadata; the outcome is the same on every member. */
  async apply(command: StrongCommand): Promise<ApplyOutcome> {
    if (command.op === "createFolder") return this.createFolder(command);
    if (command.op === "setRetention") return this.setRetention(command);
    return this.moveHead(command);
  }

  private async setRetention(command: Extract<StrongCommand, { op: "setRetention" }>): Promise<ApplyOutcome> {
    const metadata = this.node.metadata;
    const folder = await metadata.getFolder(command.folder);
    // Only a folder the log created (a leader proposes no other): every member refuses it alike.
    if (!folder || folder.mode !== "strong") return { applied: false, reason: "unknown folder" };
    const change: { keepVersions?: number | null; keepDays?: number | null } = {};
    if (command.keepVersions !== undefined) change.keepVersions = command.keepVersions;
    if (command.keepDays !== undefined) change.keepDays = command.keepDays;
    await metadata.setRetention(command.folder, change, command.atMs);
    return { applied: true };
  }

  private async createFolder(command: Extract<StrongCommand, { op: "createFolder" }>): Promise<ApplyOutcome> {
    const metadata = this.node.metadata;
    const existing = await metadata.getFolder(command.folder);
    if (existing?.mode === "strong") return { applied: false, reason: "exists" };
    if (existing) {
      // Made eventual here while this node could not hear the log: strong from now on, its
      // versions kept as history, and no head as far as the log knows.
      if (existing.head) await metadata.setMeta(FOREIGN_HEAD_KEY + command.folder, idToHex(existing.head));
      await metadata.setFolderMode(command.folder, "strong", command.atMs);
      // An eventual commit may have moved the head between the read above and the mode change;
      // none can after it (an eventual move checks the mode in its own compare-and-set).
      const turned = await metadata.getFolder(command.folder);
      if (turned?.head && !(existing.head && idEquals(turned.head, existing.head))) await metadata.setMeta(FOREIGN_HEAD_KEY + command.folder, idToHex(turned.head));
      await metadata.setRetention(command.folder, { keepVersions: command.keepVersions, keepDays: command.keepDays }, command.atMs);
      this.log(`dsync: folder ${command.folder} was eventual on this node; the log made it strong (its versions are kept as history)`);
      return { applied: true };
    }
    await metadata.ensureFolder(command.folder, command.atMs, { mode: "strong", keepVersions: command.keepVersions, keepDays: command.keepDays });
    return { applied: true };
  }

  private async moveHead(command: Extract<StrongCommand, { op: "moveHead" }>): Promise<ApplyOutcome> {
    const metadata = this.node.metadata;
    const folder = await metadata.getFolder(command.folder);
    if (!folder || folder.mode !== "strong") {
      // Not a folder the log created: a leader's mistake; every member refuses it alike.
      this.log(`dsync: the log moves the head of ${command.folder}, which is not a strong folder here; nothing changed`);
      return { applied: false, reason: "head moved", head: folder ? await this.logHead(folder) : null };
    }
    const current = await this.logHead(folder);
    if (!sameHead(current, command.expected)) {
      // Already at `head`: applied before a crash, before the applied index was stored.
      if (sameHead(current, command.head)) return { applied: true };
      return { applied: false, reason: "head moved", head: current };
    }
    await this.ensureHeld(command.versions);
    try {
      await metadata.commitVersions(command.folder, folder.head, command.head, command.versions, command.atMs);
    } catch (error) {
      if (!(error instanceof HeadMovedError || error instanceof UnknownFolderError)) throw error;
      const now = await metadata.getFolder(command.folder);
      if (now?.head && idEquals(now.head, command.head)) return { applied: true };
      return { applied: false, reason: "head moved", head: now ? await this.logHead(now) : null };
    }
    if (current === null && folder.head !== null) await metadata.setMeta(FOREIGN_HEAD_KEY + command.folder, "");
    this.node.headMovedByLog(command.folder, command.head);
    return { applied: true };
  }

  /** The head as the log set it: a folder turned strong counts as headless until the log moves it. */
  private async logHead(folder: FolderRecord): Promise<ObjectId | null> {
    return headAsTheLogSet(this.node.metadata, folder.name, folder.head);
  }

  /** The state as of now (every strong folder by its log head), for a snapshot. */
  async state(addresses: ReadonlyMap<RaftNodeId, string>): Promise<StrongSnapshotState> {
    const folders: StrongFolderState[] = [];
    for (const folder of await this.node.metadata.listFolders()) {
      if (folder.mode !== "strong") continue;
      folders.push({ name: folder.name, head: await this.logHead(folder), keepVersions: folder.keepVersions, keepDays: folder.keepDays, createdMs: folder.createdMs });
    }
    return { folders, addresses: [...addresses].map(([id, address]) => ({ id, address })).sort((a, b) => (a.id < b.id ? -1 : a.id > b.id ? 1 : 0)) };
  }

  /**
   * Takes a snapshot's state in place of this node's (the leader sent it because this node's log
   * fell behind the compacted part). The caller has already fetched every head with its history
   * (strong-fetch.ts) and hands the records; folders are created or turned strong, retention set,
   * heads moved to the snapshot's.
   */
  async install(state: StrongSnapshotState, histories: ReadonlyMap<string, Parameters<DsyncNode["metadata"]["commitVersions"]>[3]>, nowMs: number): Promise<void> {
    const metadata = this.node.metadata;
    for (const wanted of state.folders) {
      let folder = await metadata.getFolder(wanted.name);
      if (!folder) folder = await metadata.ensureFolder(wanted.name, wanted.createdMs, { mode: "strong", keepVersions: wanted.keepVersions, keepDays: wanted.keepDays });
      if (folder.mode !== "strong") {
        if (folder.head) await metadata.setMeta(FOREIGN_HEAD_KEY + wanted.name, idToHex(folder.head));
        await metadata.setFolderMode(wanted.name, "strong", nowMs);
        // As in createFolder: an eventual move that landed before the mode changed is the head now.
        const turned = (await metadata.getFolder(wanted.name))!;
        if (turned.head && !(folder.head && idEquals(turned.head, folder.head))) await metadata.setMeta(FOREIGN_HEAD_KEY + wanted.name, idToHex(turned.head));
        folder = turned;
      }
      if (folder.keepVersions !== wanted.keepVersions || folder.keepDays !== wanted.keepDays) {
        await metadata.setRetention(wanted.name, { keepVersions: wanted.keepVersions, keepDays: wanted.keepDays }, nowMs);
      }
      if (wanted.head === null || (folder.head && idEquals(folder.head, wanted.head))) continue;
      await metadata.commitVersions(wanted.name, folder.head, wanted.head, histories.get(wanted.name) ?? [], nowMs);
      if (folder.head) await metadata.setMeta(FOREIGN_HEAD_KEY + wanted.name, "");
      this.node.headMovedByLog(wanted.name, wanted.head);
    }
  }
}

function sameHead(a: ObjectId | null, b: ObjectId | null): boolean {
  return a === null || b === null ? a === b : idEquals(a, b);
}

export function encodeSnapshotState(state: StrongSnapshotState): Uint8Array {
  return encodeCanonical([
    STRONG_SNAPSHOT_FORMAT,
    state.folders.map((f) => [f.name, f.head, f.keepVersions, f.keepDays, f.createdMs]),
    state.addresses.map((a) => [a.id, a.address]),
  ]);
}

/** A snapshot's data as a leader sent it, every field checked (a member never trusts the shape). */
export function decodeSnapshotState(bytes: Uint8Array): StrongSnapshotState {
  let value: unknown;
  try {
    value = decodeMsgpack(bytes, SNAPSHOT_VALUES_MAX);
  } catch (error) {
    throw new StrongSnapshotError(`snapshot data is not msgpack: ${(error as Error).message}`);
  }
  if (!Array.isArray(value) || value.length !== 3 || value[0] !== STRONG_SNAPSHOT_FORMAT) throw new StrongSnapshotError(`snapshot data is not of format ${STRONG_SNAPSHOT_FORMAT}`);
  const [, folders, addresses] = value as [unknown, unknown, unknown];
  if (!Array.isArray(folders) || folders.length > SNAPSHOT_FOLDERS_MAX) throw new StrongSnapshotError("snapshot folders are not a bounded list");
  if (!Array.isArray(addresses) || addresses.length > SNAPSHOT_MEMBERS_MAX) throw new StrongSnapshotError("snapshot members are not a bounded list");
  const names = new Set<string>();
  return {
    folders: folders.map((raw, i) => {
      if (!Array.isArray(raw) || raw.length !== 5) throw new StrongSnapshotError(`snapshot folder ${i} is malformed`);
      const [name, head, keepVersions, keepDays, createdMs] = raw as unknown[];
      if (typeof name !== "string" || validateFolderName(name)) throw new StrongSnapshotError(`snapshot folder ${i} has no valid name`);
      if (names.has(name)) throw new StrongSnapshotError(`snapshot names folder ${name} twice`);
      names.add(name);
      if (head !== null && !(head instanceof Uint8Array && head.length === 32)) throw new StrongSnapshotError(`snapshot folder ${name} has a malformed head`);
      return {
        name,
        head: head === null ? null : (new Uint8Array(head) as ObjectId),
        keepVersions: nullableCount(keepVersions, name),
        keepDays: nullableCount(keepDays, name),
        createdMs: nullableCount(createdMs, name) ?? 0,
      };
    }),
    addresses: addresses.map((raw, i) => {
      if (!Array.isArray(raw) || raw.length !== 2) throw new StrongSnapshotError(`snapshot member ${i} is malformed`);
      const [id, address] = raw as unknown[];
      if (typeof id !== "string" || nodeIdProblem(id)) throw new StrongSnapshotError(`snapshot member ${i} has no valid node id`);
      if (typeof address !== "string" || !isMemberAddress(address)) throw new StrongSnapshotError(`snapshot member ${id} has no valid address`);
      return { id, address };
    }),
  };
}

/** A member's address as the transport takes it (a base URL from --peers or `dsync cluster add`): bounded, printable. */
export function isMemberAddress(address: string): boolean {
  return address.length > 0 && address.length <= MEMBER_ADDRESS_CHARS_MAX && !/[\u0000-\u0020\u007f-\u009f]/.test(address);
}

function nullableCount(value: unknown, folder: string): number | null {
  if (value === null) return null;
  if (typeof value !== "number" || !Number.isSafeInteger(value) || value < 0) throw new StrongSnapshotError(`snapshot folder ${folder} has a malformed count`);
  return value;
}
