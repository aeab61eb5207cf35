// Raft's safety properties, checked while a strong run goes (strong-cluster.ts feeds this):
//
// - Election safety: at most one leader per term over the whole run. Every node's status is
//   read after every event, so a second leader is seen even if it lasts one event.
// - Terms, commit and applied indexes never go back on a node: within one life of its member by
//   its status; across a crash (or the driver rebuilding its member from what is stored), the
//   new member starts at no less than what its disk held (the hard state and applied index of
//   the last saves that landed; a save lost at the crash was never relied on, if the driver
//   persists before it sends).
// - Log matching for committed entries: once any node's disk holds index i as committed (i at
//   or below the commit of the hard state that landed with it), every node whose disk holds i
//   as committed holds the same term and data there, and no node overwrites an index its disk
//   holds as committed. (A lagging node may store, uncommitted, what a deposed leader sends it
//   at an index committed since: Raft truncates it before that node commits it.)
// - State machine safety, as the application sees it: every landed head move of a strong
//   folder, on every node, follows one history per folder. A node applies the next move after
//   the head it holds, or jumps forward along it (a snapshot installed); a move from a head to
//   a version no node moved to from there, while another node already moved elsewhere, is two
//   members applying different entries at one index.
//
// The mirror of each node's log is built from the saves that landed on its disk
// (durable-metadata.ts's onLanded), with the store's rules (metadata-store.ts, saveRaft).
import { idToHex, type ObjectId } from "../../src/core/id.ts";
import type { Entry, HardState, Snapshot } from "../../src/core/raft/types.ts";
import type { ConsensusStatus } from "../../src/consensus/strong-consensus.ts";
import type { RaftSave } from "../../src/node/metadata-records.ts";

interface EntryKey {
  term: number;
  digest: string;
}

interface NodeDisk {
  /** What the disk holds of the log (after the snapshot), by index. */
  entries: Map<number, EntryKey>;
  snapshotIndex: number;
  snapshotTerm: number;
  hardState: HardState;
  applied: number;
  /** Committed indexes of this disk already compared with the run's committed log. */
  checkedTo: number;
}

interface NodeSeen {
  incarnation: number;
  term: number;
  commit: number;
  applied: number;
}

function entryKey(entry: { term: number; kind?: string; data: Uint8Array }): EntryKey {
  return { term: entry.term, digest: `${entry.kind ?? "normal"}:${Buffer.from(entry.data).toString("base64")}` };
}

export class RaftSafety {
  readonly failures: string[] = [];
  /** term -> the one leader seen in it. */
  readonly leaders = new Map<number, string>();
  /** index -> the entry committed there (by the first disk that held it as committed). */
  private readonly committed = new Map<number, EntryKey & { node: string }>();
  private readonly disks = new Map<string, NodeDisk>();
  private readonly seen = new Map<string, NodeSeen>();
  /** folder -> its history of heads (hex, "" for none) as moved by the log, and each head's place in it. */
  private readonly histories = new Map<string, { heads: string[]; places: Map<string, number> }>();
  /** node -> folder -> its mode on that node's disk, as the landed writes made it. */
  private readonly modes = new Map<string, Map<string, "strong" | "eventual">>();
  /** "node/folder" -> the eventual head a folder kept when the log turned it strong there. */
  private readonly foreignHeads = new Map<string, string>();
  /** node -> folder -> the head its disk holds (hex, "" for none). */
  private readonly nodeHeads = new Map<string, Map<string, string>>();
  /** Status reads (one per node per event). */
  observations = 0;
  /** Head moves of strong folders that landed, over every node. */
  headMoves = 0;
  /** Snapshots a leader sent that landed on a follower's disk, and compactions of a log. */
  snapshotsInstalled = 0;
  compactions = 0;

  constructor(private readonly strongFolders: ReadonlySet<string>) {}

  private fail(message: string): void {
    if (this.failures.length < 20) this.failures.push(message);
  }

  private modesOf(node: string): Map<string, "strong" | "eventual"> {
    let modes = this.modes.get(node);
    if (!modes) this.modes.set(node, (modes = new Map()));
    return modes;
  }

  private disk(node: string): NodeDisk {
    let disk = this.disks.get(node);
    if (!disk) {
      disk = { entries: new Map(), snapshotIndex: 0, snapshotTerm: 0, hardState: { term: 0, vote: null, commit: 0 }, applied: 0, checkedTo: 0 };
      this.disks.set(node, disk);
    }
    return disk;
  }

  /** A node's status, read after an event (incarnation: which life of the node it is). */
  observe(node: string, incarnation: number, status: ConsensusStatus): void {
    this.observations++;
    if (status.role === "leader") {
      const other = this.leaders.get(status.term);
      if (other === undefined) this.leaders.set(status.term, node);
      else if (other !== node) this.fail(`two leaders in term ${status.term}: ${other} and ${node}`);
    }
    const before = this.seen.get(node);
    if (before && before.incarnation === incarnation) {
      if (status.term < before.term) this.fail(`${node}: its term went back from ${before.term} to ${status.term}`);
      if (status.commit < before.commit) this.fail(`${node}: its commit index went back from ${before.commit} to ${status.commit}`);
      if (status.applied < before.applied) this.fail(`${node}: its applied index went back from ${before.applied} to ${status.applied}`);
    } else {
      // A new life: it must start from what its disk held, no less.
      const disk = this.disk(node);
      if (status.term < disk.hardState.term) this.fail(`${node} restarted at term ${status.term}, below the term ${disk.hardState.term} its disk held`);
      if (status.commit < disk.hardState.commit) this.fail(`${node} restarted with commit ${status.commit}, below the ${disk.hardState.commit} its disk held`);
    }
    this.seen.set(node, { incarnation, term: status.term, commit: status.commit, applied: status.applied });
  }

  /** The node's member is being built again from what is stored: its next status starts a new life (judged against its disk). */
  rebuilding(node: string): void {
    this.seen.delete(node);
  }

  /** A write that landed on `node`'s disk (durable-metadata.ts's onLanded). */
  landed(node: string, method: string, args: unknown[]): void {
    if (method === "saveRaft") this.saved(node, args[0] as RaftSave);
    else if (method === "compactRaft") this.compacted(node, args[0] as Snapshot);
    else if (method === "setRaftApplied") {
      const disk = this.disk(node);
      disk.applied = Math.max(disk.applied, args[0] as number);
    } else if (method === "ensureFolder") {
      // Made here only when absent (else it changes nothing), in the mode asked, eventual by default.
      const [folder, , defaults] = args as [string, number, { mode?: "strong" | "eventual" } | undefined];
      const modes = this.modesOf(node);
      if (!modes.has(folder)) modes.set(folder, defaults?.mode ?? "eventual");
    } else if (method === "setFolderMode") {
      const [folder, mode] = args as [string, "strong" | "eventual"];
      this.modesOf(node).set(folder, mode);
      // A folder made eventual here and turned strong by the log keeps its eventual head, which
      // the log counts as no head until it first moves it (strong-state-machine.ts).
      const head = this.nodeHeads.get(node)?.get(folder);
      if (mode === "strong" && head) this.foreignHeads.set(`${node}/${folder}`, head);
    } else if (method === "commitVersions") {
      const [folder, expected, head] = args as [string, ObjectId | null, ObjectId];
      if (!this.strongFolders.has(folder)) return;
      // Only moves of a folder strong on that node are the log's; an eventual folder of the same
      // name (made where the log's creation was not known) is judged by the client histories.
      if (this.modesOf(node).get(folder) === "strong") this.headMoved(node, folder, expected, head);
      else {
        let heads = this.nodeHeads.get(node);
        if (!heads) this.nodeHeads.set(node, (heads = new Map()));
        heads.set(folder, idToHex(head));
      }
    }
  }

  private saved(node: string, save: RaftSave): void {
    const disk = this.disk(node);
    if (save.snapshot) this.installSnapshot(node, disk, save.snapshot);
    if (save.entries && save.entries.length > 0) {
      const first = save.entries[0]!.index;
      for (const index of [...disk.entries.keys()]) if (index >= first) disk.entries.delete(index);
      for (const entry of save.entries as Entry[]) {
        if (entry.index <= disk.snapshotIndex) continue;
        const key = entryKey(entry);
        // A lagging node may store what a deposed leader sends it at an index committed since
        // (legal: it is truncated before this node commits it); overwriting an index its own
        // disk holds as committed is not.
        const committed = this.committed.get(entry.index);
        if (entry.index <= disk.hardState.commit && committed && (committed.term !== key.term || committed.digest !== key.digest)) {
          this.fail(`${node} overwrote index ${entry.index}, committed on its disk, with term ${key.term}; the committed entry there (on ${committed.node}) is of term ${committed.term}${committed.term === key.term ? " with other data" : ""}`);
        }
        disk.entries.set(entry.index, key);
      }
      // Entries replaced below what this disk held as committed: it lost a committed entry.
      if (first <= disk.hardState.commit && first > disk.snapshotIndex) disk.checkedTo = Math.min(disk.checkedTo, first - 1);
    }
    if (save.hardState) {
      if (save.hardState.term < disk.hardState.term) this.fail(`${node} saved term ${save.hardState.term} over ${disk.hardState.term}`);
      disk.hardState = { ...save.hardState };
    }
    this.checkCommitted(node, disk);
  }

  private installSnapshot(node: string, disk: NodeDisk, snapshot: Snapshot): void {
    this.snapshotsInstalled++;
    const { index, term } = snapshot.meta;
    const committed = this.committed.get(index);
    if (committed && committed.term !== term) this.fail(`${node} stored a snapshot at index ${index} of term ${term}, where the committed entry is of term ${committed.term}`);
    const held = disk.entries.get(index);
    if (held && held.term === term) {
      for (const i of [...disk.entries.keys()]) if (i <= index) disk.entries.delete(i);
    } else disk.entries.clear();
    disk.snapshotIndex = index;
    disk.snapshotTerm = term;
    disk.checkedTo = Math.max(disk.checkedTo, index);
  }

  private compacted(node: string, snapshot: Snapshot): void {
    this.compactions++;
    const disk = this.disk(node);
    for (const i of [...disk.entries.keys()]) if (i <= snapshot.meta.index) disk.entries.delete(i);
    disk.snapshotIndex = Math.max(disk.snapshotIndex, snapshot.meta.index);
    disk.snapshotTerm = snapshot.meta.term;
    disk.applied = Math.max(disk.applied, snapshot.meta.index);
    disk.checkedTo = Math.max(disk.checkedTo, snapshot.meta.index);
  }

  /** Compares what this disk now holds as committed with the run's committed log (and adds to it). */
  private checkCommitted(node: string, disk: NodeDisk): void {
    const commit = disk.hardState.commit;
    for (let index = Math.max(disk.checkedTo, disk.snapshotIndex) + 1; index <= commit; index++) {
      const key = disk.entries.get(index);
      if (!key) {
        this.fail(`${node}: its hard state says index ${index} is committed, but its log ends before it (last ${Math.max(disk.snapshotIndex, ...disk.entries.keys())})`);
        break;
      }
      const committed = this.committed.get(index);
      if (!committed) this.committed.set(index, { ...key, node });
      else if (committed.term !== key.term || committed.digest !== key.digest) {
        this.fail(`index ${index} is committed as term ${committed.term} on ${committed.node} but as term ${key.term}${committed.term === key.term ? " with other data" : ""} on ${node}`);
      }
    }
    disk.checkedTo = Math.max(disk.checkedTo, commit);
  }

  /** The head of a strong folder moved on `node` (a landed commitVersions): it must follow the folder's one history. */
  private headMoved(node: string, folder: string, expected: ObjectId | null, head: ObjectId): void {
    this.headMoves++;
    let history = this.histories.get(folder);
    if (!history) {
      history = { heads: [""], places: new Map([["", 0]]) };
      this.histories.set(folder, history);
    }
    let from = expected ? idToHex(expected) : "";
    const to = idToHex(head);
    const foreign = this.foreignHeads.get(`${node}/${folder}`);
    if (foreign !== undefined) {
      this.foreignHeads.delete(`${node}/${folder}`);
      if (from === foreign) from = "";
    }
    let heads = this.nodeHeads.get(node);
    if (!heads) this.nodeHeads.set(node, (heads = new Map()));
    heads.set(folder, to);
    const fromPlace = history.places.get(from);
    const toPlace = history.places.get(to);
    if (fromPlace === undefined) {
      this.fail(`${node} moved the head of ${folder} from ${from.slice(0, 12) || "(none)"}, which is not in the history the log made, to ${to.slice(0, 12)}`);
      return;
    }
    if (toPlace !== undefined) {
      // Forward by one move, or by several (a snapshot installed in place of the entries between).
      if (toPlace <= fromPlace) this.fail(`${node} moved the head of ${folder} back along its history, from ${from.slice(0, 12) || "(none)"} (#${fromPlace}) to ${to.slice(0, 12)} (#${toPlace})`);
      return;
    }
    if (fromPlace !== history.heads.length - 1) {
      this.fail(
        `${node} moved the head of ${folder} from ${from.slice(0, 12) || "(none)"} (#${fromPlace}) to ${to.slice(0, 12)}, but ${history.heads[fromPlace + 1]!.slice(0, 12)} followed it already: two members applied different entries`,
      );
      return;
    }
    history.places.set(to, history.heads.length);
    history.heads.push(to);
  }

  /** The history of heads of a strong folder the log made (hex ids, oldest first, without the empty start). */
  history(folder: string): string[] {
    return (this.histories.get(folder)?.heads ?? [""]).slice(1);
  }

  /** The highest index any disk held as committed. */
  committedIndex(): number {
    let highest = 0;
    for (const index of this.committed.keys()) highest = Math.max(highest, index);
    return highest;
  }

  terms(): number {
    return this.leaders.size;
  }
}
