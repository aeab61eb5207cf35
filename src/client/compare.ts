// dsync diff: compare two sides, each a local directory or a folder on a node
// (URL/FOLDER, optionally @VERSION), by Merkle descent: only subtrees whose ids differ are
// loaded, so comparing two replicas that differ in one file costs O(depth) requests.
import { existsSync, statSync } from "node:fs";
import { join } from "node:path";
import { diffTrees, type DiffEntry } from "../core/diff.ts";
import { idFromHex, idToHex, type ObjectId } from "../core/id.ts";
import { validateFolderName } from "../core/names.ts";
import { decodeObject, type StructuredObject } from "../core/objects.ts";
import { scanDirectory } from "../fs/scanner.ts";
import { MemoryObjectStore } from "../store/memory-store.ts";
import { openLocalCaches, STATE_DIR_NAME, type LocalCaches } from "./local-state.ts";
import { silentProgress } from "./progress.ts";
import { scanIntoCache } from "./scan-local.ts";
import { RemoteError, RemoteNode } from "./remote.ts";
import { clientToken, UsageError } from "./sync-target.ts";

export type Side = { kind: "local"; dir: string } | { kind: "remote"; url: string; folder: string; version?: string };

export function parseSide(spec: string): Side {
  if (/^https?:\/\//.test(spec)) {
    const url = new URL(spec);
    const parts = url.pathname.split("/").filter((p) => p !== "");
    const last = parts.pop();
    if (!last) throw new UsageError(`${spec}: name a folder, as in http://127.0.0.1:7700/FOLDER[@VERSION]`);
    const at = last.indexOf("@");
    const folder = decodeURIComponent(at === -1 ? last : last.slice(0, at));
    const version = at === -1 ? undefined : last.slice(at + 1);
    const problem = validateFolderName(folder);
    if (problem) throw new UsageError(`${spec}: ${problem}`);
    if (version !== undefined && !/^[0-9a-f]{4,64}$/.test(version)) throw new UsageError(`${spec}: a version is 4 to 64 hex digits`);
    const base = `${url.protocol}//${url.host}${parts.length ? "/" + parts.join("/") : ""}`;
    return { kind: "remote", url: base, folder, version };
  }
  if (!existsSync(spec) || !statSync(spec).isDirectory()) throw new UsageError(`${spec} is neither a directory nor a URL/FOLDER`);
  return { kind: "local", dir: spec };
}

export interface CompareReport {
  identical: boolean;
  a: { spec: string; root: string };
  b: { spec: string; root: string };
  added: string[];
  removed: string[];
  modified: string[];
  typeChanged: string[];
  /** Requests made to nodes, and objects loaded during the descent. */
  requests: number;
  objectsLoaded: number;
}

export async function compare(specA: string, specB: string): Promise<CompareReport> {
  const sides = [parseSide(specA), parseSide(specB)];
  const local = new MemoryObjectStore();
  const remotes = new Map<string, RemoteNode>();
  const roots: ObjectId[] = [];
  const openCaches: LocalCaches[] = [];
  try {
    for (const side of sides) {
      if (side.kind === "local" && existsSync(join(side.dir, STATE_DIR_NAME, "state.json"))) {
        // A synced directory: its stat cache spares reading unchanged files.
        const caches = await openLocalCaches(side.dir);
        openCaches.push(caches);
        roots.push((await scanIntoCache(side.dir, caches, silentProgress)).rootId);
      } else if (side.kind === "local") {
        const scan = await scanDirectory(side.dir, {
          excludeTopLevel: [STATE_DIR_NAME],
          sink: { object: (sealed) => local.put(sealed.id, sealed.bytes) },
        });
        roots.push(scan.rootId);
      } else {
        let remote = remotes.get(side.url);
        if (!remote) remotes.set(side.url, (remote = new RemoteNode(side.url, clientToken())));
        const folder = await remote.getFolder(side.folder);
        if (!folder) throw new RemoteError("not-found", `${side.url} has no folder named ${JSON.stringify(side.folder)}`);
        const versionRef = side.version ?? folder.head;
        if (!versionRef) throw new RemoteError("not-found", `folder ${side.folder} on ${side.url} has no versions yet`);
        const version = await remote.getVersion(side.folder, versionRef);
        roots.push(idFromHex(version.root));
      }
    }
    let objectsLoaded = 0;
    const load = async (id: ObjectId): Promise<StructuredObject> => {
      objectsLoaded++;
      let bytes = await local.get(id);
      for (const caches of openCaches) bytes ??= await caches.objects.get(id);
      for (const remote of remotes.values()) {
        if (bytes) break;
        bytes = await remote.getObject(id);
        if (bytes) await local.put(id, bytes); // verifies the id
      }
      if (!bytes) throw new Error(`object ${idToHex(id)} was found on neither side`);
      return decodeObject(bytes);
    };
    const diff = await diffTrees(roots[0]!, roots[1]!, load);
    const paths = (list: DiffEntry[]) => list.map((d) => d.path);
    const report: CompareReport = {
      identical: diff.added.length + diff.removed.length + diff.modified.length + diff.typeChanged.length === 0,
      a: { spec: specA, root: idToHex(roots[0]!) },
      b: { spec: specB, root: idToHex(roots[1]!) },
      added: paths(diff.added),
      removed: paths(diff.removed),
      modified: paths(diff.modified),
      typeChanged: paths(diff.typeChanged),
      requests: [...remotes.values()].reduce((sum, r) => sum + r.counters.requests, 0),
      objectsLoaded,
    };
    return report;
  } finally {
    for (const caches of openCaches) await caches.close();
  }
}
