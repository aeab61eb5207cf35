// What a synced directory remembers about itself, in DIR/.dsync/ (never synced):
//   state.json      the remote, the folder, and the last version and root this directory was in sync with
//   stat-cache.sqlite   sizes, times and inodes of files as last scanned (skip re-reading them)
//   cache/          a local object store holding the file and tree nodes (never chunks) of the
//                   trees this directory pushed or pulled, so diffs against the last sync need no network
import { existsSync, mkdirSync, readFileSync, renameSync, writeFileSync, openSync, fsyncSync, closeSync } from "node:fs";
import { join } from "node:path";
import { isIdHex } from "../core/id.ts";
import { SqliteStatCache } from "../fs/stat-cache.ts";
import { fsyncDirectory } from "../fs/materialize.ts";
import { PackObjectStore } from "../store/pack-store.ts";

export const STATE_DIR_NAME = ".dsync";

export interface SyncState {
  remote?: string;
  folder?: string;
  /** Hex id of the version this directory last matched on the remote. */
  lastVersion?: string;
  /** Hex id of that version's root tree. */
  lastRoot?: string;
}

export function stateDir(dir: string): string {
  return join(dir, STATE_DIR_NAME);
}

export function readSyncState(dir: string): SyncState {
  const path = join(stateDir(dir), "state.json");
  if (!existsSync(path)) return {};
  let value: unknown;
  try {
    value = JSON.parse(readFileSync(path, "utf8"));
  } catch {
    throw new Error(`${path} is not valid JSON; delete it to start over`);
  }
  const state = (value ?? {}) as Record<string, unknown>;
  const out: SyncState = {};
  if (typeof state.remote === "string") out.remote = state.remote;
  if (typeof state.folder === "string") out.folder = state.folder;
  if (isIdHex(state.lastVersion)) out.lastVersion = state.lastVersion;
  if (isIdHex(state.lastRoot)) out.lastRoot = state.lastRoot;
  return out;
}

/** Writes the state atomically and durably: it names the version the directory matches. */
export function writeSyncState(dir: string, state: SyncState): void {
  const folder = stateDir(dir);
  mkdirSync(folder, { recursive: true });
  const temp = join(folder, "state.json.tmp");
  writeFileSync(temp, JSON.stringify(state, null, 2) + "\n");
  const fd = openSync(temp, "r");
  try {
    fsyncSync(fd);
  } finally {
    closeSync(fd);
  }
  renameSync(temp, join(folder, "state.json"));
  fsyncDirectory(folder);
}

export interface LocalCaches {
  objects: PackObjectStore;
  statCache: SqliteStatCache;
  close(): Promise<void>;
}

export async function openLocalCaches(dir: string): Promise<LocalCaches> {
  const folder = stateDir(dir);
  mkdirSync(folder, { recursive: true });
  const objects = await PackObjectStore.open(join(folder, "cache"), { packSizeBytesMax: 64 * 1024 * 1024 });
  const statCache = new SqliteStatCache(join(folder, "stat-cache.sqlite"));
  // The stat cache names file nodes in this object cache, which only ever grows; if the cache
  // was deleted, the names would dangle, so start over.
  if ((await objects.stats()).objects === 0) statCache.clear();
  return {
    objects,
    statCache,
    close: async () => {
      statCache.close();
      await objects.close();
    },
  };
}
