// What a synced directory remembers about itself, in DIR/.dsync/ (never synced):
//   state.json      the remote, the folder, and the last version and root this directory was in sync with
//   stat-cache.sqlite   sizes, times and inodes of files as last scanned (skip re-reading them)
//   cache/          a local object store holding the file and tree nodes (never chunks) of the
//                   trees this directory pushed or pulled, so diffs against the last sync need no network
//
// The folder is dsync's alone and is never reached through a link: DIR itself may be a link
// (the user named it), but a `.dsync` that is a link, or a link planted inside it at a name
// dsync writes, would carry the write elsewhere. So `.dsync` is opened without following a
// link (a link there is refused, naming it), and state.json is written to a fresh temp name
// created exclusively (O_EXCL never follows a link) and renamed through the folder's handle.
import { randomBytes } from "node:crypto";
import { closeSync, constants, fsyncSync, openSync, readFileSync, realpathSync, renameSync, unlinkSync, writeSync } from "node:fs";
import { join } from "node:path";
import { isIdHex } from "../core/id.ts";
import { parseFingerprint } from "../wire/tls-fingerprint.ts";
import { pinToRemember } from "./tls-settings.ts";
import { SqliteStatCache } from "../fs/stat-cache.ts";
import { handlesResolveNames, openDirectoryInside, pathInHandle, UnsafePathError } from "../fs/directory-handle.ts";
import { PackObjectStore } from "../store/pack-store.ts";

export const STATE_DIR_NAME = ".dsync";

export interface SyncState {
  remote?: string;
  folder?: string;
  /** Hex id of the version this directory last matched on the remote. */
  lastVersion?: string;
  /** Hex id of that version's root tree. */
  lastRoot?: string;
  /**
   * Roots (hex) of pulls that began writing and did not finish, oldest first: the directory
   * may hold their content at some paths (see interrupted-pull.ts). Cleared when a pull completes.
   */
  pulling?: string[];
  /**
   * Paths the last pull could not apply, and the tree whose entries the directory still holds
   * there (see held-back.ts). Replaced by every pull; carried over by a push.
   */
  heldBack?: { root: string; paths: string[] };
  /**
   * The fingerprint (sha256:...) of the https:// remote's certificate, pinned by the first push
   * or pull that named it (--tls-fingerprint) and trusted for that remote from then on.
   */
  tlsFingerprint?: string;
}

export function stateDir(dir: string): string {
  return join(dir, STATE_DIR_NAME);
}

function isMissing(error: unknown): boolean {
  return (error as NodeJS.ErrnoException).code === "ENOENT";
}

/**
 * Runs `use` with DIR/.dsync held open by a no-follow handle and a function naming entries in
 * it through that handle. Returns undefined when DIR or its state folder is missing and
 * `create` is false. A `.dsync` that is a link or not a directory throws UnsafePathError.
 */
function inStateFolder<T>(dir: string, create: boolean, use: (at: (name: string) => string, fd: number) => T): T | undefined {
  let fd: number;
  try {
    // DIR as named may be a link; from there on, nothing is followed.
    const root = realpathSync(dir);
    fd = openDirectoryInside(root, STATE_DIR_NAME, { create });
  } catch (error) {
    if (!create && isMissing(error)) return undefined;
    throw error;
  }
  const folder = stateDir(dir);
  try {
    return use((name) => (handlesResolveNames() ? pathInHandle(fd, name) : join(folder, name)), fd);
  } finally {
    closeSync(fd);
  }
}

/** Reads state.json without following a link at it: {} when there is none. */
function readStateFile(dir: string): string | undefined {
  const path = join(stateDir(dir), "state.json");
  return inStateFolder(dir, false, (at) => {
    let fd: number;
    try {
      fd = openSync(at("state.json"), constants.O_RDONLY | constants.O_NOFOLLOW | constants.O_NONBLOCK);
    } catch (error) {
      const code = (error as NodeJS.ErrnoException).code;
      if (code === "ENOENT") return undefined;
      if (code === "ELOOP") throw new UnsafePathError(`${path} is a symlink; dsync does not read its state through a link (remove it to start over)`);
      throw error;
    }
    try {
      return readFileSync(fd, "utf8");
    } finally {
      closeSync(fd);
    }
  });
}

export function readSyncState(dir: string): SyncState {
  const path = join(stateDir(dir), "state.json");
  const text = readStateFile(dir);
  if (text === undefined) return {};
  let value: unknown;
  try {
    value = JSON.parse(text);
  } catch {
    throw new Error(`${path} is not valid JSON; delete it to start over`);
  }
  const state = (value ?? {}) as Record<string, unknown>;
  const out: SyncState = {};
  if (typeof state.remote === "string") out.remote = state.remote;
  if (typeof state.folder === "string") out.folder = state.folder;
  if (isIdHex(state.lastVersion)) out.lastVersion = state.lastVersion;
  if (isIdHex(state.lastRoot)) out.lastRoot = state.lastRoot;
  if (Array.isArray(state.pulling)) {
    const pulling = state.pulling.filter(isIdHex);
    if (pulling.length > 0) out.pulling = pulling;
  }
  const heldBack = state.heldBack as Record<string, unknown> | null | undefined;
  if (heldBack && isIdHex(heldBack.root) && Array.isArray(heldBack.paths)) {
    const paths = heldBack.paths.filter((path): path is string => typeof path === "string" && path !== "");
    if (paths.length > 0) out.heldBack = { root: heldBack.root, paths };
  }
  if (typeof state.tlsFingerprint === "string") {
    const fingerprint = parseFingerprint(state.tlsFingerprint);
    if (fingerprint === null) throw new Error(`${path} holds a tlsFingerprint that is not one (${JSON.stringify(state.tlsFingerprint.slice(0, 100))}); fix or remove it, then pass --tls-fingerprint`);
    out.tlsFingerprint = fingerprint;
  }
  return out;
}

/** Writes the state atomically and durably: it names the version the directory matches. */
export function writeSyncState(dir: string, given: SyncState): void {
  // The pin this process verified against the remote is remembered with it (tls-settings.ts).
  const pin = given.remote !== undefined ? pinToRemember(given.remote) : undefined;
  const state: SyncState = pin !== undefined ? { ...given, tlsFingerprint: pin } : given;
  const bytes = new TextEncoder().encode(JSON.stringify(state, null, 2) + "\n");
  inStateFolder(dir, true, (at, folderFd) => {
    // A fresh name, created exclusively: whatever sits at an old temp name is never opened.
    const temp = at(`state.json.tmp-${randomBytes(8).toString("hex")}`);
    const fd = openSync(temp, "wx", 0o600);
    try {
      try {
        for (let done = 0; done < bytes.length; ) done += writeSync(fd, bytes, done, bytes.length - done);
        fsyncSync(fd);
      } finally {
        closeSync(fd);
      }
      renameSync(temp, at("state.json"));
    } catch (error) {
      try {
        unlinkSync(temp);
      } catch {}
      throw error;
    }
    fsyncSync(folderFd);
  });
}

export interface LocalCaches {
  objects: PackObjectStore;
  statCache: SqliteStatCache;
  close(): Promise<void>;
}

export async function openLocalCaches(dir: string): Promise<LocalCaches> {
  const folder = stateDir(dir);
  // Creates the folder, and refuses one that is a link, before anything is opened inside it.
  inStateFolder(dir, true, () => {});
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
