// A folder's consistency mode, chosen by the client: `dsync folder create NAME --consistency`,
// and `dsync push --consistency` before a first push (the folder is made in that mode before
// anything is sent; one that exists in the other mode stops the push with nothing sent).
import { existsSync, statSync } from "node:fs";
import { readSyncState } from "./local-state.ts";
import { RemoteError, RemoteNode, type FolderInfo } from "./remote.ts";
import { clientToken, resolveSyncTarget, UsageError } from "./sync-target.ts";

export type ConsistencyChoice = "strong" | "eventual";

/** The --consistency value, checked. */
export function parseConsistency(value: string | undefined, flag = "--consistency"): ConsistencyChoice | undefined {
  if (value === undefined) return undefined;
  if (value === "strong" || value === "eventual") return value;
  throw new UsageError(`${flag} takes strong or eventual, got ${JSON.stringify(value)}`);
}

export interface FolderModeSpec {
  consistency: ConsistencyChoice;
  keepVersions?: number;
  keepDays?: number;
}

/**
 * Makes `folder` on `remote` in the mode asked, or finds it there in that mode already. One
 * that exists in the other mode is an error that names both modes and changes nothing.
 */
export async function ensureFolderMode(remote: RemoteNode, folder: string, spec: FolderModeSpec): Promise<FolderInfo & { created: boolean }> {
  try {
    return await remote.createFolder(folder, spec);
  } catch (error) {
    if (error instanceof RemoteError && error.kind === "conflict" && (error.body?.mode === "strong" || error.body?.mode === "eventual")) {
      const article = error.body.mode === "strong" ? "a" : "an";
      throw new Error(`folder ${folder} on ${remote.baseUrl} is ${article} ${error.body.mode} folder, not ${spec.consistency}: a folder's mode is chosen when it is made and is not changed (nothing was pushed)`);
    }
    throw error;
  }
}

/**
 * Before a push with --consistency: the folder DIR pushes to (as push resolves it) made in that
 * mode, or found in it. Throws, with nothing sent, when it exists in the other mode.
 */
export async function ensureFolderModeFor(dir: string, options: { remote?: string; folder?: string; rebind?: boolean } & FolderModeSpec): Promise<FolderInfo & { created: boolean }> {
  if (!existsSync(dir) || !statSync(dir).isDirectory()) throw new Error(`${dir} is not a directory: push sends a directory`);
  const { remote, folder } = resolveSyncTarget(dir, readSyncState(dir), options);
  return ensureFolderMode(new RemoteNode(remote, clientToken()), folder, options);
}
