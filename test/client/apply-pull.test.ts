// The pull's executor on a real directory, over seeded random histories: a base tree written to
// disk, random edits made on disk, random changes on the "node", then applyPull. Whatever the
// plan, the rules a pull has always kept must hold:
//   - nothing unsynced is lost: every file's bytes the directory held before the pull that the
//     last synced version does not hold are still somewhere in the directory afterwards (at
//     their path, or in a conflict copy beside it);
//   - where the directory did not change a path, it holds the node's entry afterwards;
//   - where the node did not change a path, the directory's own entry is left as it was.
import { afterAll, describe, expect, test } from "bun:test";
import { chmodSync, lstatSync, mkdirSync, readdirSync, readFileSync, readlinkSync, rmSync, symlinkSync, unlinkSync, writeFileSync } from "node:fs";
import { join } from "node:path";
import { applyPull, type PullChunks } from "../../src/client/apply-pull.ts";
import type { ObjectId } from "../../src/core/id.ts";
import { readTreeEntries } from "../../src/core/pages.ts";
import { DirectorySyncer } from "../../src/fs/materialize.ts";
import { FileGroupSync } from "../../src/fs/group-sync.ts";
import { scanDirectory } from "../../src/fs/scanner.ts";
import { NoStatCache } from "../../src/fs/stat-cache.ts";
import { silentProgress } from "../../src/client/progress.ts";
import { MemoryObjects, type TreeLiteral } from "../helpers/memory-objects.ts";
import { createPrng, type Prng } from "../helpers/prng.ts";
import { cleanupTempDirs, tempDir } from "../helpers/processes.ts";

afterAll(cleanupTempDirs);

/** Chunks straight from the in-memory objects: the executor is what is tested, not the transfer. */
function memoryChunks(memory: MemoryObjects): PullChunks {
  return {
    hasLocally: () => false,
    prefetch: async () => {},
    noteLocalFile: () => {},
    noteReplacedFile: () => {},
    releasePrefetched: () => {},
    getChunks: async (ids: readonly ObjectId[]) => ids.map((id) => memory.chunk(id)!),
  };
}

const NAMES = ["a", "b", "c", "d.txt", "e"];

function randomTree(prng: Prng, depth: number): TreeLiteral {
  const tree: TreeLiteral = {};
  for (const name of NAMES) {
    const roll = prng.nextInt(10);
    if (roll < 3) continue;
    if (roll < 7 || depth >= 2) tree[name] = `content ${name} ${prng.nextInt(4)}`;
    else if (roll < 9) tree[name] = randomTree(prng, depth + 1);
    else tree[name] = { symlink: `target-${prng.nextInt(3)}` };
  }
  return tree;
}

/** The node's next version: some paths changed, added, removed, retyped. */
function changedTree(prng: Prng, tree: TreeLiteral, depth: number): TreeLiteral {
  const out: TreeLiteral = {};
  for (const name of NAMES) {
    const current = tree[name];
    const roll = prng.nextInt(10);
    if (roll < 5) {
      if (current !== undefined) out[name] = typeof current === "object" && !("symlink" in current) ? changedTree(prng, current as TreeLiteral, depth + 1) : current;
    } else if (roll < 7) {
      out[name] = `remote ${name} ${prng.nextInt(3)}`;
    } else if (roll < 8 && depth < 2) {
      out[name] = randomTree(prng, depth + 1);
    } // else: removed (or never there)
  }
  return out;
}

function writeLiteral(root: string, tree: TreeLiteral): void {
  mkdirSync(root, { recursive: true });
  for (const [name, value] of Object.entries(tree)) {
    const path = join(root, name);
    if (typeof value === "string") writeFileSync(path, value);
    else if (typeof value === "object" && "symlink" in value && typeof value.symlink === "string") symlinkSync(value.symlink, path);
    else writeLiteral(path, value as TreeLiteral);
  }
}

/** Random edits on disk, as a user makes them between two syncs. */
function editDisk(prng: Prng, dir: string, rel = ""): void {
  for (const name of NAMES) {
    const path = join(dir, rel, name);
    let stats;
    try {
      stats = lstatSync(path);
    } catch {
      if (prng.nextInt(6) === 0) writeFileSync(path, `local new ${rel}/${name} ${prng.nextInt(1000)}`);
      continue;
    }
    const roll = prng.nextInt(12);
    if (stats.isDirectory()) {
      if (roll < 8) editDisk(prng, dir, join(rel, name));
      else if (roll === 8) rmSync(path, { recursive: true });
      else if (roll === 9) {
        rmSync(path, { recursive: true });
        writeFileSync(path, `local file over dir ${rel}/${name}`);
      } else if (roll === 10) writeFileSync(join(path, "local-extra"), "never synced");
    } else if (roll < 6) continue;
    else if (roll < 8) writeFileSync(path, `local edit ${rel}/${name} ${prng.nextInt(1000)}`);
    else if (roll === 8) unlinkSync(path);
    else if (roll === 9 && stats.isFile()) chmodSync(path, 0o755);
    else if (roll === 10) {
      unlinkSync(path);
      mkdirSync(path);
      writeFileSync(join(path, "inside"), `local dir over file ${rel}/${name}`);
    }
  }
}

/** Every regular file's bytes under dir, by relative path. */
function filesOnDisk(dir: string, rel = "", out = new Map<string, string>()): Map<string, string> {
  for (const name of readdirSync(join(dir, rel))) {
    if (rel === "" && name === ".dsync") continue;
    const path = join(rel, name);
    const stats = lstatSync(join(dir, path));
    if (stats.isDirectory()) filesOnDisk(dir, path, out);
    else if (stats.isFile()) out.set(path, readFileSync(join(dir, path), "utf8"));
    else if (stats.isSymbolicLink()) out.set(path, `-> ${readlinkSync(join(dir, path))}`);
  }
  return out;
}

/** Every path's entry in a tree, as the text a file or link holds (directories as "dir"). */
async function flatten(memory: MemoryObjects, root: ObjectId | null, prefix = "", out = new Map<string, string>()): Promise<Map<string, string>> {
  if (root === null) return out;
  for (const entry of await readTreeEntries(root, memory.load)) {
    const path = prefix === "" ? entry.name : `${prefix}/${entry.name}`;
    if (entry.kind === "dir") {
      out.set(path, "dir");
      await flatten(memory, entry.id, path, out);
    } else if (entry.kind === "symlink") out.set(path, `-> ${entry.target}`);
    else out.set(path, await memory.fileText(entry));
  }
  return out;
}

async function scan(memory: MemoryObjects, dir: string): Promise<{ root: ObjectId; notRead: unknown[] }> {
  const result = await scanDirectory(dir, {
    sink: { object: (sealed) => memory.putObjects([sealed]), chunk: (_id, bytes) => void memory.putChunk(bytes.slice()) },
    statCache: new NoStatCache(),
    excludeTopLevel: [".dsync"],
  });
  return { root: result.rootId, notRead: result.notRead };
}

async function apply(memory: MemoryObjects, dir: string, base: ObjectId | null, local: ObjectId, remote: ObjectId, newFileGroupSync?: () => FileGroupSync) {
  const scanned = { notRead: [], skipped: [], ignoredAt: () => undefined };
  const syncer = new DirectorySyncer();
  const result = await applyPull({
    dir,
    base,
    local,
    remote,
    load: memory.load,
    scan: scanned,
    source: memoryChunks(memory),
    syncer,
    statCache: { remember: () => {} },
    progress: silentProgress,
    nowMs: () => 1_700_000_000_000,
    newFileGroupSync,
  });
  syncer.flush();
  return result;
}

/** Every name under dir, with what each file holds ("dir" for directories). */
function diskContents(dir: string): Record<string, string> {
  const out: Record<string, string> = {};
  for (const name of readdirSync(dir, { recursive: true }) as string[]) {
    const path = join(dir, name);
    out[name] = lstatSync(path).isDirectory() ? "dir" : readFileSync(path, "utf8");
  }
  return out;
}

describe("a group of file writes is durable before any of it is renamed", () => {
  const baseLiteral: TreeLiteral = { a: "old a", d: { b: "old b" } };
  const remoteLiteral: TreeLiteral = { a: "new a", c: "new c", d: { b: "new b" } };

  test("the group's sync runs once, while every path still holds its old file, and the renames follow", async () => {
    const memory = new MemoryObjects();
    const dir = join(tempDir(), "copy");
    mkdirSync(dir);
    const base = memory.tree(baseLiteral);
    await apply(memory, dir, null, memory.tree({}), base);
    const seenAtSync: Record<string, string>[] = [];
    await apply(memory, dir, base, (await scan(memory, dir)).root, memory.tree(remoteLiteral), () =>
      new FileGroupSync({ syncfs: () => void seenAtSync.push(diskContents(dir)) }),
    );
    expect(seenAtSync.length).toBe(1);
    const atSync = seenAtSync[0]!;
    expect({ a: atSync.a, b: atSync["d/b"], c: "c" in atSync }).toEqual({ a: "old a", b: "old b", c: false });
    // The new bytes were all on disk, under temp names, when the sync ran.
    expect(Object.values(atSync).sort()).toEqual(["dir", "new a", "new b", "new c", "old a", "old b"]);
    expect(diskContents(dir)).toEqual({ a: "new a", c: "new c", d: "dir", "d/b": "new b" });
  });

  test("a failed sync fails the pull: nothing renamed, the old files in place, no temp file left", async () => {
    const memory = new MemoryObjects();
    const dir = join(tempDir(), "copy");
    mkdirSync(dir);
    const base = memory.tree(baseLiteral);
    await apply(memory, dir, null, memory.tree({}), base);
    const failing = () =>
      new FileGroupSync({
        syncfs: () => {
          throw new Error("syncfs failed: EIO");
        },
      });
    await expect(apply(memory, dir, base, (await scan(memory, dir)).root, memory.tree(remoteLiteral), failing)).rejects.toThrow("EIO");
    expect(diskContents(dir)).toEqual({ a: "old a", d: "dir", "d/b": "old b" });
  });
});

describe("applyPull over random histories", () => {
  for (let seed = 1; seed <= 60; seed++) {
    test(`seed ${seed}: nothing unsynced lost, the node's changes applied where the directory kept base`, async () => {
      const prng = createPrng(seed);
      const memory = new MemoryObjects();
      const dir = join(tempDir(), "copy");
      const baseLiteral = randomTree(prng, 0);
      const base = memory.tree(baseLiteral);
      // The first pull writes base from nothing.
      mkdirSync(dir);
      const empty = memory.tree({});
      await apply(memory, dir, null, empty, base);
      const afterFirst = filesOnDisk(dir);
      const baseFiles = new Map([...(await flatten(memory, base))].filter(([, v]) => v !== "dir"));
      expect(afterFirst).toEqual(baseFiles);

      editDisk(prng, dir);
      const before = filesOnDisk(dir);
      const local = (await scan(memory, dir)).root;
      const remote = memory.tree(changedTree(prng, baseLiteral, 0));
      const result = await apply(memory, dir, base, local, remote);
      const after = filesOnDisk(dir);
      const remoteFiles = await flatten(memory, remote);
      const localTree = await flatten(memory, local);
      const baseTree = await flatten(memory, base);

      // Nothing unsynced is lost.
      const everything = new Set(after.values());
      for (const [path, content] of before) {
        if (baseFiles.get(path) === content) continue; // in history
        expect({ path, kept: everything.has(content) }).toEqual({ path, kept: true });
      }
      // Every conflict copy named in the report exists and holds what was there.
      for (const conflict of result.conflicts) if (conflict.keptAs) expect(lstatSync(join(dir, conflict.keptAs))).toBeDefined();

      for (const [path, remoteValue] of remoteFiles) {
        if (remoteValue === "dir") continue;
        const baseValue = baseTree.get(path);
        const localValue = localTree.get(path);
        // Unchanged here (at the path and above it): the node's entry is there now.
        const untouched = localValue === baseValue && ancestors(path).every((a) => localTree.get(a) === baseTree.get(a) || (localTree.get(a) === "dir" && baseTree.get(a) === undefined));
        if (untouched && baseValue !== remoteValue) expect({ path, now: after.get(path) }).toEqual({ path, now: remoteValue });
      }
      for (const [path, localValue] of localTree) {
        if (localValue === "dir") continue;
        // The node did not change this path (nor anything above it): the local entry stays.
        if (baseTree.get(path) === remoteFiles.get(path) && ancestors(path).every((a) => baseTree.get(a) === remoteFiles.get(a))) {
          expect({ path, now: after.get(path) }).toEqual({ path, now: localValue });
        }
      }
    });
  }
});

function ancestors(path: string): string[] {
  const parts = path.split("/");
  return parts.slice(0, -1).map((_, i) => parts.slice(0, i + 1).join("/"));
}

