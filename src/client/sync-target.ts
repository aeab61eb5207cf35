// Works out which remote and folder a command talks to, the same way for every command:
// the flag, else the environment, else what the directory remembers, else the default.
import { basename, resolve } from "node:path";
import { validateFolderName } from "../core/names.ts";
import type { SyncState } from "./local-state.ts";

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
  return remote.replace(/\/+$/, "");
}

export function resolveFolder(flag: string | undefined, state: SyncState, dir: string): string {
  const folder = flag ?? state.folder ?? basename(resolve(dir));
  const problem = validateFolderName(folder);
  if (problem) throw new UsageError(`folder name ${JSON.stringify(folder)}: ${problem} (choose one with --folder)`);
  return folder;
}

export function clientToken(): string | undefined {
  const token = process.env.DSYNC_TOKEN;
  return token && token.length > 0 ? token : undefined;
}
