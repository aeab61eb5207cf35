// What a write to a folder's history (a commit, a replica taken in) works with: the node's
// stores, clock and identity, its version writer, and its readers of versions. The node hands
// one to commit.ts and integrate-replica.ts, which run under the node's write lock.
import type { ObjectId } from "../core/id.ts";
import type { Version } from "../core/objects.ts";
import type { VersionLookup } from "../core/concurrent-merge.ts";
import type { ObjectLoader } from "../core/pages.ts";
import type { VersionVector } from "../core/version-vector.ts";
import type { ObjectStore } from "../store/object-store.ts";
import type { Clock } from "./clock.ts";
import type { FolderDefaults } from "./metadata-records.ts";
import type { MetadataStore } from "./metadata-store.ts";
import type { HeadMover } from "./strong-heads.ts";
import type { VersionWriter } from "./version-writer.ts";

export interface WriteContext {
  store: ObjectStore;
  metadata: MetadataStore;
  clock: Clock;
  nodeId: string;
  /** Retention for folders created on this node. */
  folderDefaults: FolderDefaults;
  writer: VersionWriter;
  load: ObjectLoader;
  decodeVersion(id: ObjectId): Promise<Version>;
  vectorOf(id: ObjectId | null): Promise<VersionVector>;
  versionLookup(folder: string): VersionLookup;
  /** The closure and structure check of a tree (closure.ts), marking what it checked complete; throws when it fails. */
  checkClosure(root: ObjectId): Promise<void>;
  /**
   * How a commit's head moves (commit.ts): metadata.commitVersions for an eventual folder, the
   * cluster's log for a strong one (strong-heads.ts). Throws HeadMovedError when the head was
   * not `expected`; then nothing changed.
   */
  moveHead: HeadMover;
}
