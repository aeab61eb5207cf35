// A dsync node: the object store, the metadata, and the operations the API exposes.
//
// Write ordering (each step durable before the next): objects (chunks, then the file and tree
// nodes that name them, as the client uploads them bottom-up), then the closure check, then the
// version object, then the head moves by compare-and-set in one synchronous=FULL transaction.
// A crash at any point leaves at most unreferenced objects (garbage), never a head that names
// something missing.
import { existsSync, mkdirSync } from "node:fs";
import { join } from "node:path";
import { hlcCompare, hlcTick, HLC_ZERO, type HlcTimestamp } from "../core/hlc.ts";
import { idEquals, idToHex, type ObjectId } from "../core/id.ts";
import { decodeObject, sealObject, type StructuredObject, type Version } from "../core/objects.ts";
import { mergeTrees, type MergeConflict } from "../core/merge.ts";
import type { ObjectLoader } from "../core/pages.ts";
import { validateFolderName } from "../core/names.ts";
import { PackObjectStore } from "../store/pack-store.ts";
import type { StoredObject } from "../store/object-store.ts";
import { systemClock, systemRandom, type Clock, type RandomSource } from "./clock.ts";
import { IncompleteTreeError, verifyTreeClosure } from "./closure.ts";
import { walkClosure } from "./walk.ts";
import { Metadata, type FolderRecord, type VersionOrigin, type VersionRecord } from "./metadata.ts";
import { Mutex } from "./mutex.ts";
import { collectGarbage, type GcOptions, type GcReport } from "./gc.ts";

export interface NodeOptions {
  dataDir: string;
  clock?: Clock;
  /** Source of the node id made on first start. */
  random?: RandomSource;
  /** Retention for folders created on this node, unless a push sets its own. */
  defaultKeepVersions?: number | null;
  defaultKeepDays?: number | null;
  /** Overrides the stored node id (it is then stored). */
  nodeId?: string;
}

export interface CommitRequest {
  folder: string;
  root: ObjectId;
  /** The head the client last saw; null for a first push. */
  parent: ObjectId | null;
  message: string;
  chunking: string;
  files: number;
  totalBytes: number;
  origin?: VersionOrigin;
}

export interface CommitResult {
  /** The folder's new head. */
  version: ObjectId;
  /** The version made from the pushed tree (equal to `version` unless a merge happened). */
  pushed: ObjectId;
  parent: ObjectId | null;
  /** The head that was current when the push arrived, if it had moved since `parent`. */
  mergedWith: ObjectId | null;
  root: ObjectId;
  conflicts: MergeConflict[];
}

export class UserError extends Error {
  override name = "UserError";
  constructor(message: string, readonly status: 400 | 404 | 409 | 422 = 400) {
    super(message);
  }
}

export class DsyncNode {
  private readonly writeLock = new Mutex();
  private hlc: HlcTimestamp = HLC_ZERO;

  private constructor(
    readonly dataDir: string,
    readonly store: PackObjectStore,
    readonly metadata: Metadata,
    readonly nodeId: string,
    readonly clock: Clock,
    private readonly options: NodeOptions,
  ) {
    for (const version of metadata.allVersions()) {
      const stamp = { wallMs: version.hlcWallMs, counter: version.hlcCounter };
      if (hlcCompare(stamp, this.hlc) > 0) this.hlc = stamp;
    }
  }

  static async open(options: NodeOptions): Promise<DsyncNode> {
    const clock = options.clock ?? systemClock;
    mkdirSync(options.dataDir, { recursive: true });
    const store = await PackObjectStore.open(join(options.dataDir, "objects"), { nowMs: () => clock.nowMs() });
    const metadata = new Metadata(join(options.dataDir, "metadata.sqlite"));
    let nodeId = metadata.getMeta("node_id");
    if (options.nodeId && options.nodeId !== nodeId) {
      nodeId = options.nodeId;
      metadata.setMeta("node_id", nodeId);
    } else if (!nodeId) {
      nodeId = Buffer.from((options.random ?? systemRandom).bytes(8)).toString("hex");
      metadata.setMeta("node_id", nodeId);
    }
    return new DsyncNode(options.dataDir, store, metadata, nodeId, clock, options);
  }

  static exists(dataDir: string): boolean {
    return existsSync(join(dataDir, "metadata.sqlite"));
  }

  async close(): Promise<void> {
    await this.writeLock.run(async () => {
      await this.store.close();
      this.metadata.close();
    });
  }

  /** Loads and decodes a structured object from the local store. */
  readonly load: ObjectLoader = async (id) => {
    const bytes = await this.store.get(id);
    if (!bytes) throw new UserError(`object ${idToHex(id)} is not stored on this node`, 404);
    return decodeObject(bytes);
  };

  private nextTimestamp(): HlcTimestamp {
    this.hlc = hlcTick(this.hlc, this.clock.nowMs());
    return this.hlc;
  }

  // ---------- objects ----------

  /** The ids this node lacks. Present ones are marked as in use, so a running GC keeps them. */
  async missing(ids: readonly ObjectId[]): Promise<ObjectId[]> {
    // One pass: touch marks the present ones as in use and says which they are.
    const present = await this.store.touch(ids, this.clock.nowMs());
    return ids.filter((_, i) => !present[i]);
  }

  /** Stores objects after verifying each id; durable when it resolves. */
  async putObjects(objects: readonly StoredObject[]): Promise<void> {
    await this.store.putMany(objects);
  }

  async getObjects(ids: readonly ObjectId[]): Promise<(Uint8Array | undefined)[]> {
    return this.store.getMany(ids);
  }

  // ---------- folders and versions ----------

  listFolders(): FolderRecord[] {
    return this.metadata.listFolders();
  }

  getFolder(name: string): FolderRecord {
    const folder = this.metadata.getFolder(name);
    if (!folder) throw new UserError(`no folder named ${JSON.stringify(name)}`, 404);
    return folder;
  }

  listVersions(folder: string, limit?: number): VersionRecord[] {
    this.getFolder(folder);
    return this.metadata.listVersions(folder, limit);
  }

  /** Finds a version of a folder by full or abbreviated (≥ 4 hex digits) id. */
  resolveVersion(folder: string, idOrPrefix: string): VersionRecord {
    this.getFolder(folder);
    const text = idOrPrefix.toLowerCase();
    if (!/^[0-9a-f]{4,64}$/.test(text)) throw new UserError(`not a version id: ${JSON.stringify(idOrPrefix)}`);
    const matches = this.metadata.findVersionsByPrefix(folder, text);
    if (matches.length === 0) throw new UserError(`folder ${folder} has no version ${idOrPrefix}`, 404);
    if (matches.length > 1) throw new UserError(`version prefix ${idOrPrefix} is ambiguous in ${folder}`);
    return matches[0]!;
  }

  setRetention(folder: string, retention: { keepVersions?: number | null; keepDays?: number | null }): FolderRecord {
    this.metadata.ensureFolder(folder, this.clock.nowMs());
    this.metadata.setRetention(folder, retention, this.clock.nowMs());
    return this.getFolder(folder);
  }

  /**
   * Records a pushed tree as a new version and moves the folder's head to it. When the head
   * moved since the client's parent, the pushed tree is merged three ways with the head
   * against their common ancestor; the pushed side is the later writer and wins conflicts, and
   * the overwritten content stays reachable through the merge's first parent.
   */
  async commit(request: CommitRequest): Promise<CommitResult> {
    const nameProblem = validateFolderName(request.folder);
    if (nameProblem) throw new UserError(nameProblem);
    return this.writeLock.run(async () => {
      const folder = this.metadata.ensureFolder(request.folder, this.clock.nowMs(), {
        keepVersions: this.options.defaultKeepVersions ?? null,
        keepDays: this.options.defaultKeepDays ?? null,
      });
      // A parent this node does not know (pruned by retention, or never seen) gives no merge
      // base: the push is then merged without one, which keeps every path of both sides.
      const newlyComplete = await verifyTreeClosure(request.root, this.store, this.metadata);
      this.metadata.markComplete(newlyComplete);

      const pushed = await this.storeVersion({
        root: request.root,
        parents: request.parent ? [request.parent] : [],
        message: request.message,
        chunking: request.chunking,
      });
      const pushedRecord = this.versionRecord(pushed.id, pushed.version, request.origin ?? "push", request.files, request.totalBytes);
      const head = folder.head;
      const headMatches = head === null ? request.parent === null : request.parent !== null && idEquals(head, request.parent);
      if (headMatches || (head !== null && idEquals(head, pushed.id))) {
        this.metadata.commitVersions(folder.name, head, pushed.id, [pushedRecord], this.clock.nowMs());
        return { version: pushed.id, pushed: pushed.id, parent: request.parent, mergedWith: null, root: request.root, conflicts: [] };
      }

      // The head moved: merge the pushed tree onto it.
      const headRecord = this.metadata.getVersion(folder.name, head!)!;
      const baseVersion = request.parent ? this.findMergeBase(folder.name, head!, request.parent) : null;
      const baseRoot = baseVersion ? this.metadata.getVersion(folder.name, baseVersion)?.root ?? null : null;
      const merged = await mergeTrees({ base: baseRoot, ours: headRecord.root, theirs: request.root, load: this.load });
      await this.store.putMany(merged.newObjects.map((o) => ({ id: o.id, bytes: o.bytes })));
      this.metadata.markComplete(merged.newObjects.map((o) => o.id));
      const mergeVersion = await this.storeVersion({
        root: merged.root,
        parents: [head!, pushed.id],
        message: `merge ${idToHex(pushed.id).slice(0, 12)} into ${idToHex(head!).slice(0, 12)}`,
        chunking: request.chunking,
      });
      const mergeRecord = this.versionRecord(mergeVersion.id, mergeVersion.version, "merge", request.files, request.totalBytes);
      this.metadata.commitVersions(folder.name, head, mergeVersion.id, [pushedRecord, mergeRecord], this.clock.nowMs());
      return {
        version: mergeVersion.id,
        pushed: pushed.id,
        parent: request.parent,
        mergedWith: head,
        root: merged.root,
        conflicts: merged.conflicts,
      };
    });
  }

  /** Makes a new head whose content is that of an earlier version (history is kept). */
  async restore(folder: string, versionIdOrPrefix: string, message?: string): Promise<CommitResult> {
    const target = this.resolveVersion(folder, versionIdOrPrefix);
    const head = this.getFolder(folder).head;
    const version = await this.decodeVersion(target.id);
    return this.commit({
      folder,
      root: target.root,
      parent: head,
      message: message ?? `restore ${idToHex(target.id).slice(0, 12)}`,
      chunking: version.chunking,
      files: target.files,
      totalBytes: target.totalBytes,
      origin: "restore",
    });
  }

  async decodeVersion(id: ObjectId): Promise<Version> {
    const object: StructuredObject = await this.load(id);
    if (object.kind !== "version") throw new UserError(`object ${idToHex(id)} is not a version`);
    return object;
  }

  private async storeVersion(fields: { root: ObjectId; parents: ObjectId[]; message: string; chunking: string }) {
    const stamp = this.nextTimestamp();
    const version: Version = {
      kind: "version",
      root: fields.root,
      parents: fields.parents,
      author: this.nodeId,
      hlcWallMs: stamp.wallMs,
      hlcCounter: stamp.counter,
      message: fields.message,
      versionVector: [],
      chunking: fields.chunking,
    };
    const sealed = sealObject(version);
    await this.store.putMany([{ id: sealed.id, bytes: sealed.bytes }]);
    return { id: sealed.id, version };
  }

  private versionRecord(id: ObjectId, version: Version, origin: VersionOrigin, files: number, totalBytes: number): Omit<VersionRecord, "sequence" | "folder"> {
    return {
      id,
      root: version.root,
      parents: version.parents,
      author: version.author,
      hlcWallMs: version.hlcWallMs,
      hlcCounter: version.hlcCounter,
      message: version.message,
      origin,
      files,
      totalBytes,
      createdMs: this.clock.nowMs(),
    };
  }

  /** The nearest common ancestor of two versions of a folder (breadth-first over parents). */
  findMergeBase(folder: string, a: ObjectId, b: ObjectId): ObjectId | null {
    const ancestorsOfA = new Set<string>();
    let frontier: ObjectId[] = [a];
    while (frontier.length > 0) {
      const next: ObjectId[] = [];
      for (const id of frontier) {
        const key = idToHex(id);
        if (ancestorsOfA.has(key)) continue;
        ancestorsOfA.add(key);
        next.push(...(this.metadata.getVersion(folder, id)?.parents ?? []));
      }
      frontier = next;
    }
    const seen = new Set<string>();
    frontier = [b];
    while (frontier.length > 0) {
      const next: ObjectId[] = [];
      for (const id of frontier) {
        const key = idToHex(id);
        if (ancestorsOfA.has(key)) return id;
        if (seen.has(key)) continue;
        seen.add(key);
        next.push(...(this.metadata.getVersion(folder, id)?.parents ?? []));
      }
      frontier = next;
    }
    return null;
  }

  // ---------- maintenance ----------

  /** Applies retention, then deletes what no kept version (and no push in flight) reaches. */
  async gc(options: GcOptions = {}): Promise<GcReport> {
    return this.writeLock.run(() => collectGarbage(this, options));
  }

  /** Re-hashes every stored object and checks every head's closure and the metadata database. */
  async verify(): Promise<{ objectsChecked: number; corrupt: string[]; missing: string[]; metadataIntegrity: string }> {
    const problems = await this.store.verifyAll();
    const { objects } = await this.store.stats();
    const missing: string[] = [];
    for (const folder of this.metadata.listFolders()) {
      if (!folder.head) continue;
      const version = this.metadata.getVersion(folder.name, folder.head);
      if (!version) {
        missing.push(idToHex(folder.head));
        continue;
      }
      try {
        await verifyTreeClosureFully(version.root, this);
      } catch (error) {
        const ids = (error as { missing?: ObjectId[] }).missing;
        if (ids) missing.push(...ids.map(idToHex));
        else throw error;
      }
    }
    return { objectsChecked: objects, corrupt: problems.map((p) => idToHex(p.id)), missing, metadataIntegrity: this.metadata.integrityCheck() };
  }
}

/** A closure check that ignores the completeness cache (for verify). */
async function verifyTreeClosureFully(root: ObjectId, node: DsyncNode): Promise<void> {
  const missing: ObjectId[] = [];
  await walkClosure([{ id: root, kind: "structured" }], node.store, { onMissing: (id) => missing.push(id) });
  if (missing.length > 0) throw new IncompleteTreeError(missing);
}
