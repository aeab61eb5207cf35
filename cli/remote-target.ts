// Shared by commands that talk to a folder on a node: which node, which folder, with what token.
import { readSyncState } from "../src/client/local-state.ts";
import { RemoteNode } from "../src/client/remote.ts";
import { clientToken, resolveFolder, resolveRemote } from "../src/client/sync-target.ts";

export function targetFor(dir: string | undefined, flags: { remote?: string; folder?: string }, options: { stale?: boolean } = {}): { remote: RemoteNode; folder: string } {
  const directory = dir ?? ".";
  const state = readSyncState(directory);
  const remote = new RemoteNode(resolveRemote(flags.remote, state), clientToken(), { stale: options.stale === true });
  return { remote, folder: resolveFolder(flags.folder, state, directory) };
}

export function remoteFor(flags: { remote?: string }): RemoteNode {
  return new RemoteNode(resolveRemote(flags.remote, readSyncState(".")), clientToken());
}
