// Works out which remote and folder a command talks to, the same way for every command:
// the flag, else the environment, else what the directory remembers, else the default. A
// command that syncs the directory may change what it remembers only when asked (--rebind).
import { basename, join, resolve } from "node:path";
import { validateFolderName } from "../core/names.ts";
import type { SyncState } from "./local-state.ts";
import { noteRememberedPin } from "./tls-settings.ts";

export const DEFAULT_REMOTE = "http://127.0.0.1:7700";

export class UsageError extends Error {
  override name = "UsageError";
}

export function resolveRemote(flag: string | undefined, state: SyncState): string {
  const remote = flag ?? process.env.DSYNC_REMOTE ?? state.remote ?? DEFAULT_REMOTE;
  let url: URL;
  try {
    url = new URL(remote);
  } catch {
    throw new UsageError(`not a URL: ${JSON.stringify(remote)} (expected e.g. ${DEFAULT_REMOTE})`);
  }
  if (url.protocol !== "http:" && url.protocol !== "https:") throw new UsageError(`the remote must be an http:// or https:// URL, got ${remote}`);
  const base = remote.replace(/\/+$/, "");
  // The certificate this directory pinned for that node is trusted for it (tls-settings.ts).
  if (state.remote !== undefined && state.remote.replace(/\/+$/, "") === base) noteRememberedPin(base, state.tlsFingerprint);
  return base;
}

export function resolveFolder(flag: string | undefined, state: SyncState, dir: string): string {
  const folder = flag ?? state.folder ?? basename(resolve(dir));
  const problem = validateFolderName(folder);
  if (problem) throw new UsageError(`folder name ${JSON.stringify(folder)}: ${problem} (choose one with --folder)`);
  return folder;
}

export interface SyncTargetChoice {
  remote?: string;
  folder?: string;
  /** The remote or folder may differ from what the directory remembers: it syncs with them from now on. */
  rebind?: boolean;
}

export interface SyncTarget {
  remote: string;
  folder: string;
  /** The directory remembered another remote or folder (a --rebind): its last sync says nothing about this one. */
  rebound: boolean;
}

/**
 * The remote and folder a command that syncs DIR (push, pull, restore) works with. A directory
 * syncs with one folder on one node, remembered in DIR/.dsync/state.json; a --remote,
 * DSYNC_REMOTE or --folder that names another is refused unless `rebind` is asked for, so a
 * one-off flag never silently moves the directory to another folder (creating it there) or
 * rewrites what it remembers.
 */
export function resolveSyncTarget(dir: string, state: SyncState, choice: SyncTargetChoice): SyncTarget {
  const remote = resolveRemote(choice.remote, state);
  const folder = resolveFolder(choice.folder, state, dir);
  if (state.remote === undefined || state.folder === undefined) return { remote, folder, rebound: false };
  const remembered = { remote: state.remote.replace(/\/+$/, ""), folder: state.folder };
  if (remote === remembered.remote && folder === remembered.folder) return { remote, folder, rebound: false };
  if (choice.rebind) return { remote, folder, rebound: true };
  const asked: string[] = [];
  if (folder !== remembered.folder) asked.push(`--folder ${JSON.stringify(folder)}`);
  if (remote !== remembered.remote) asked.push(choice.remote !== undefined ? `--remote ${remote}` : `DSYNC_REMOTE=${remote}`);
  throw new UsageError(
    `${dir} syncs with folder ${JSON.stringify(remembered.folder)} on ${remembered.remote} (remembered in ${join(dir, ".dsync", "state.json")}), ` +
      `not ${asked.join(" and ")}: add --rebind to sync it with folder ${JSON.stringify(folder)} on ${remote} from now on, ` +
      `or leave ${asked.length > 1 ? "them" : "it"} out to keep syncing as before`,
  );
}

/** The token read from --token-file by the command line, which wins over DSYNC_TOKEN. */
let tokenFromFile: string | undefined;

export function chooseClientToken(token: string): void {
  tokenFromFile = token;
}

export function clientToken(): string | undefined {
  if (tokenFromFile !== undefined) return tokenFromFile;
  const token = process.env.DSYNC_TOKEN;
  return token && token.length > 0 ? token : undefined;
}
