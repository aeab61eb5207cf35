// Pull: bring a directory to a version of a folder, changing only what differs and moving only
// the chunks the directory cannot find locally.
//
// Three trees are compared: the version the directory last synced (base), the directory as it
// is now (local), and the version being pulled (remote). Remote changes are applied where the
// directory still matches base. Where the directory changed a path too, the local content is
// never overwritten silently: it is renamed to a conflict copy and reported. A path deleted
// remotely but changed locally is kept. This file finds the three trees and records the result;
// what to do at each path is core/plan-pull.ts, doing it (with every check on disk) apply-pull.ts.
import { existsSync, mkdirSync, realpathSync, statSync } from "node:fs";
import { idFromHex, idToHex } from "../core/id.ts";
import type { ObjectLoader } from "../core/pages.ts";
import { DirectorySyncer, removeInside } from "../fs/materialize.ts";
import { applyPull, countPlannedWrites, type PullConflict } from "./apply-pull.ts";
import { INTERRUPTED_TARGETS_MAX, resumedBase } from "./interrupted-pull.ts";
import { HELD_BACK_PATHS_MAX, stillHeldBack, storedEmptyTree, withEntriesOf } from "./held-back.ts";
import { openLocalCaches, readSyncState, writeSyncState } from "./local-state.ts";
import { silentProgress, type Progress } from "./progress.ts";
import { PullChunkSource } from "./pull-chunk-source.ts";
import { MemoryBudget } from "./memory-budget.ts";
import { RemoteError, RemoteNode } from "./remote.ts";
import { cachedRemoteLoader, fetchNodeClosure } from "./remote-objects.ts";
import { scanIntoCache } from "./scan-local.ts";
import { clientToken, resolveSyncTarget } from "./sync-target.ts";

export interface PullOptions {
  remote?: string;
  folder?: string;
  /** A version id (or unique prefix); the folder's head when absent. */
  version?: string;
  progress?: Progress;
  /** Sync DIR with this remote and folder although it remembers others (sync-target.ts). */
  rebind?: boolean;
  /** Read a strong folder without the linearizable barrier: what the node has applied, maybe behind the leader (RemoteOptions.stale). */
  stale?: boolean;
  /** Time for conflict copy names; injected for tests. */
  nowMs?: () => number;
}

export type { PullConflict };

export interface PullReport {
  remote: string;
  folder: string;
  version: string;
  root: string;
  /** The version the directory was in sync with before (null on a first pull). */
  previous: string | null;
  files_written: number;
  paths_removed: number;
  bytes_written: number;
  chunks_fetched: number;
  /** Chunk bytes fetched from the node (before wire compression). */
  bytes_fetched: number;
  chunks_reused: number;
  nodes_fetched: number;
  wire_bytes_sent: number;
  wire_bytes_received: number;
  requests: number;
  conflicts: PullConflict[];
  skipped: { path: string; reason: string }[];
  /** Changes on the node not applied because this copy does not read their paths (ignored, unreadable); grouped in skipped. */
  not_applied: number;
  /** Paths in skipped this pull could not apply: the next pull retries them, and a push keeps the node's entry there (held-back.ts). */
  held_back: number;
  /** False when more than HELD_BACK_PATHS_MAX paths were held back: the version is then not recorded as synced (the next pull finishes it). */
  recorded: boolean;
  elapsed_ms: number;
}

/** Bytes fetched between two looks at the process's size within a large file (a look reads the resident set: cheap, not free). */
const MEMORY_CHECK_EVERY_BYTES = 8 * 1024 * 1024;
/**
 * The growth that triggers a collection during a pull, looked at after each group of files and
 * every MEMORY_CHECK_EVERY_BYTES fetched. 200 000 small files: 168 MiB peak with 23 collections
 * (1.2 s) at 12 MiB, 189 MiB with 11 at 24 MiB (in-process, load ~7); small files make little
 * to fetch, so looking only every 8 MiB fetched let their garbage grow for thousands of files.
 */
const PULL_GROWTH_BYTES = 12 * 1024 * 1024;

export async function pull(dir: string, options: PullOptions = {}): Promise<PullReport> {
  const startMs = Date.now();
  const nowMs = options.nowMs ?? (() => Date.now());
  const progress = options.progress ?? silentProgress;
  if (existsSync(dir) && !statSync(dir).isDirectory()) throw new Error(`${dir} exists and is not a directory: pull into a directory (it is created if missing)`);
  // Nothing is created before the folder and version are found: a failed first pull leaves no
  // empty directory behind.
  const state = readSyncState(dir);
  const { remote: remoteUrl, folder, rebound } = resolveSyncTarget(dir, state, options);
  const remote = new RemoteNode(remoteUrl, clientToken(), { stale: options.stale === true });

  const folderInfo = await remote.getFolder(folder);
  if (!folderInfo) {
    throw new RemoteError("not-found", `the node at ${remoteUrl} has no folder named ${JSON.stringify(folder)} (dsync ls --remote ${remoteUrl} lists its folders)`);
  }
  let versionId: string;
  let rootHex: string;
  if (options.version) {
    const version = await remote.getVersion(folder, options.version);
    versionId = version.id;
    rootHex = version.root;
  } else {
    if (!folderInfo.head) throw new RemoteError("not-found", `folder ${folder} on ${remoteUrl} has no versions yet (push to it first)`);
    const version = await remote.getVersion(folder, folderInfo.head);
    versionId = version.id;
    rootHex = version.root;
  }
  const root = idFromHex(rootHex);
  const sameTarget = !rebound && state.remote === remoteUrl && state.folder === folder;
  mkdirSync(dir, { recursive: true });
  // A directory named through a link is the directory it names (as for push): everything
  // below it is reached without following any link.
  dir = realpathSync(dir);
  // The directory is bound to the folder from here on (with no last version until the pull
  // completes), so a pull interrupted midway is resumed by a bare `dsync pull DIR`.
  if (!sameTarget) writeSyncState(dir, { remote: remoteUrl, folder });
  const syncedBase = sameTarget && state.lastRoot ? idFromHex(state.lastRoot) : null;
  // Roots earlier pulls of this directory were moving to when they were cut short.
  const interruptedTargets = sameTarget ? state.pulling ?? [] : [];

  const caches = await openLocalCaches(dir);
  // Downloaded batches are freed as they are written (pull-chunk-source.ts); what else a pull
  // throws away (a stat, a path, a job per file) is collected each time the process has grown by
  // MemoryBudget's step (asked after each group and every few MiB fetched).
  const budget = new MemoryBudget(PULL_GROWTH_BYTES);
  let fetchedSinceCheckBytes = 0;
  const source = new PullChunkSource(remote, (bytes) => {
    progress.advance(bytes);
    fetchedSinceCheckBytes += bytes;
    if (fetchedSinceCheckBytes < MEMORY_CHECK_EVERY_BYTES) return;
    fetchedSinceCheckBytes = 0;
    budget.check();
  });
  const syncer = new DirectorySyncer();
  try {
    const nodesFetched = await fetchNodeClosure(remote, root, caches.objects);
    const load: ObjectLoader = cachedRemoteLoader(remote, caches.objects);
    // Paths this copy does not read stand as last synced (ignored is not deleted), and the node's
    // changes there are set aside below (changes-not-read.ts).
    const scan = await scanIntoCache(dir, caches, progress, undefined, syncedBase ? { root: syncedBase, load } : undefined);
    const localRoot = scan.rootId;
    // What an interrupted pull already wrote is what its target holds, not a local edit.
    const resumed = await resumedBase(syncedBase, interruptedTargets.map(idFromHex), localRoot, load, caches.objects);
    // Where the last pull could not apply the node's change and the directory still holds what
    // it held then, the old entry is the base: the change is retried, not taken for a local edit.
    const heldBefore = sameTarget ? state.heldBack : undefined;
    const base = resumed === null ? null : await withEntriesOf(resumed, idFromHex(heldBefore?.root ?? rootHex), await stillHeldBack(localRoot, heldBefore, load, { whereUnreachable: true }), load, caches.objects);
    // Before the first write: remember where this pull goes, until the directory gets there.
    const pulling = [...interruptedTargets.filter((hex) => hex !== rootHex), rootHex].slice(-INTERRUPTED_TARGETS_MAX);
    writeSyncState(dir, { ...(sameTarget ? state : { remote: remoteUrl, folder }), pulling });
    // Temp files of an interrupted earlier write are ours and never synced: clear them away.
    for (const leftover of scan.tempLeftovers) {
      try {
        removeInside(dir, leftover, syncer);
      } catch {}
    }

    if (progress.shown) {
      const planned = await countPlannedWrites(base, localRoot, root, load);
      progress.phase("pulling", planned.bytes, planned.files);
    } else progress.phase("pulling", 0);
    // Directory by directory: what to do at each path (core/plan-pull.ts), done as it is decided.
    const applied = await applyPull({ dir, base, local: localRoot, remote: root, load, scan, source, syncer, statCache: caches.statCache, progress, nowMs, afterGroup: () => budget.check() });
    const heldBack = applied.heldBack;
    syncer.flush();
    progress.done();
    const recorded = heldBack.length <= HELD_BACK_PATHS_MAX;
    if (recorded) {
      let heldRoot = base;
      // A first pull: what the directory holds at those paths is its own, against nothing synced.
      if (heldRoot === null && heldBack.length > 0) heldRoot = await storedEmptyTree(caches.objects);
      writeSyncState(dir, {
        remote: remoteUrl,
        folder,
        lastVersion: versionId,
        lastRoot: rootHex,
        ...(heldBack.length > 0 ? { heldBack: { root: idToHex(heldRoot!), paths: heldBack } } : {}),
      });
    }
    // Beyond the bound, state.json keeps this pull as one that did not finish (`pulling`): the
    // next pull compares with the last synced version and this target, and a push waits for it.
    return {
      remote: remoteUrl,
      folder,
      version: versionId,
      root: rootHex,
      previous: sameTarget ? state.lastVersion ?? null : null,
      files_written: applied.filesWritten,
      paths_removed: applied.pathsRemoved,
      bytes_written: applied.bytesWritten,
      chunks_fetched: source.chunksFetched,
      bytes_fetched: source.bytesFetched,
      chunks_reused: source.chunksReused,
      nodes_fetched: nodesFetched,
      wire_bytes_sent: remote.counters.wireBytesSent,
      wire_bytes_received: remote.counters.wireBytesReceived,
      requests: remote.counters.requests,
      conflicts: applied.conflicts,
      skipped: [...applied.skipped, ...scan.skipped],
      not_applied: applied.notApplied,
      held_back: heldBack.length,
      recorded,
      elapsed_ms: Date.now() - startMs,
    };
  } finally {
    source.reader.closeAll();
    await caches.close();
  }
}


