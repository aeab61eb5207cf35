// Commit-check benchmark: what a node's closure and structure check reads when a commit changes
// one file of a big folder. A node over a pack store in a scratch directory gets a folder of
// --files files (one chunk each) spread over --dirs directories (1: one paged directory), commits
// it, then commits the same tree with one file changed. Printed per commit: structured objects
// the check read from the store, chunks it asked about, the commit's wall time and the peak
// RSS of the process (the node) while it ran (VmHWM, reset before it; Linux). The folder is stored one
// directory at a time, so what the bench holds itself stays small beside the node.
//
//   bun scripts/bench/commit-check.ts [--files N] [--dirs N] [--data DIR] [--format 1|2] [--ingest upload|store]
//   bun scripts/bench/commit-check.ts --files 1000000 --dirs 1000   (the 1 000 000-file push's tree)
//
// --format 2 (default): each file named by its one chunk in its directory's entry, as clients
// write trees now; 1: a file node per file. --ingest upload (default): the folder is stored the
// way the upload route stores a push (DsyncNode.putUploaded: marked complete as it lands, groups
// of 10 000 objects, children first); store: stored without marks (putObjects), so the commit's
// check reads the whole tree, as every commit did before marks were made at ingest. The time to
// store the folder is printed too: what ingest marking costs moves there.
//
// The first commit reads everything; the second should read only the new nodes (the changed
// file's node, its leaf page and the pages above it), whatever the size of the folder.
import { mkdirSync, readFileSync, rmSync, writeFileSync } from "node:fs";
import { join } from "node:path";
import { blake3 } from "../../src/core/blake3.ts";
import type { ObjectId } from "../../src/core/id.ts";
import type { TreeEntry } from "../../src/core/objects.ts";
import { sealFile, sealTree } from "../../src/core/tree-builder.ts";
import { openNode } from "../../src/assemble.ts";
import type { StoredObject } from "../../src/store/object-store.ts";

function flag(name: string, fallback: string): string {
  const at = process.argv.indexOf(`--${name}`);
  return at === -1 ? fallback : process.argv[at + 1] ?? fallback;
}

const files = Number(flag("files", "100000"));
const dirs = Math.max(1, Number(flag("dirs", "1")));
const dataDir = join(flag("data", "/tmp/dsync-bench"), "commit-check");
const format = Number(flag("format", "2"));
const ingest = flag("ingest", "upload");
if (format !== 1 && format !== 2) throw new Error("--format is 1 or 2");
if (ingest !== "upload" && ingest !== "store") throw new Error("--ingest is upload or store");

rmSync(dataDir, { recursive: true, force: true });
mkdirSync(dataDir, { recursive: true });
const node = await openNode({ dataDir });
const counts = { objectsRead: 0, chunksAsked: 0 };
const getMany = node.store.getMany.bind(node.store);
const hasMany = node.store.hasMany.bind(node.store);
node.store.getMany = (ids) => {
  counts.objectsRead += ids.length;
  return getMany(ids);
};
node.store.hasMany = (ids) => {
  counts.chunksAsked += ids.length;
  return hasMany(ids);
};

const text = new TextEncoder();
function fileEntry(name: string, content: string, objects: StoredObject[]): TreeEntry {
  const bytes = text.encode(content);
  const chunk = blake3(bytes);
  if (format === 2) {
    objects.push({ id: chunk, bytes });
    return { name, kind: "file", mode: 0o644, mtimeMs: 0, sizeBytes: bytes.length, id: chunk, target: null, idNamesChunk: true };
  }
  const sealed = sealFile([{ id: chunk, lengthBytes: bytes.length }]);
  objects.push({ id: chunk, bytes }, ...sealed.objects.map((o) => ({ id: o.id, bytes: o.bytes })));
  return { name, kind: "file", mode: 0o644, mtimeMs: 0, sizeBytes: bytes.length, id: sealed.id, target: null };
}

/** The folder's tree with file `changed` (if any) holding other content; returns its root. */
let storeMs = 0;
async function storeFolder(changed: number | null): Promise<ObjectId> {
  storeMs = 0;
  let objects: StoredObject[] = [];
  const flush = async () => {
    for (let i = 0; i < objects.length; i += 10_000) {
      const group = objects.slice(i, i + 10_000);
      const started = performance.now();
      if (ingest === "upload") await node.putUploaded(group);
      else await node.putObjects(group);
      storeMs += performance.now() - started;
    }
    objects = [];
  };
  const perDir = Math.ceil(files / dirs);
  const dirEntries: TreeEntry[] = [];
  for (let d = 0; d < dirs; d++) {
    const entries: TreeEntry[] = [];
    for (let i = d * perDir; i < Math.min(files, (d + 1) * perDir); i++) {
      entries.push(fileEntry(`file-${String(i).padStart(7, "0")}`, i === changed ? `changed ${i}` : `content ${i}`, objects));
    }
    const tree = sealTree(entries);
    objects.push(...tree.objects.map((o) => ({ id: o.id, bytes: o.bytes })));
    dirEntries.push({ name: `dir-${String(d).padStart(4, "0")}`, kind: "dir", mode: 0o755, mtimeMs: 0, sizeBytes: 0, id: tree.id, target: null });
    if (objects.length >= 10_000) await flush();
  }
  let root: ObjectId;
  if (dirs === 1) root = dirEntries[0]!.id!;
  else {
    const tree = sealTree(dirEntries);
    objects.push(...tree.objects.map((o) => ({ id: o.id, bytes: o.bytes })));
    root = tree.id;
  }
  await flush();
  return root;
}

async function timedCommit(label: string, root: ObjectId, parent: ObjectId | null): Promise<ObjectId> {
  counts.objectsRead = 0;
  counts.chunksAsked = 0;
  Bun.gc(true);
  const rssBeforeBytes = process.memoryUsage.rss();
  // Resets the kernel's high-water mark (VmHWM) to the current RSS, so what is read after is the commit's peak.
  writeFileSync("/proc/self/clear_refs", "5");
  const started = performance.now();
  const result = await node.commit({ folder: "big", root, parent, message: "", chunking: "bench", files, totalBytes: 0 });
  const ms = performance.now() - started;
  const rssPeakBytes = Number(/VmHWM:\s+(\d+) kB/.exec(readFileSync("/proc/self/status", "utf8"))![1]) * 1024;
  const mb = (bytes: number) => (bytes / 1e6).toFixed(0);
  process.stdout.write(
    `${label}: stored in ${storeMs.toFixed(0)} ms (${node.ingestMarks.totals.marked} marked as they landed so far); commit: ${counts.objectsRead} objects read, ${counts.chunksAsked} chunks asked about, ${ms.toFixed(1)} ms, RSS ${mb(rssBeforeBytes)} MB before, peak ${mb(rssPeakBytes)} MB\n`,
  );
  return result.version;
}

process.stdout.write(`${files} files in ${dirs} director${dirs === 1 ? "y" : "ies"}, tree format ${format}, ingest by ${ingest}\n`);
const first = await timedCommit("first commit (everything new)", await storeFolder(null), null);
await timedCommit("one file changed", await storeFolder(Math.floor(files / 2)), first);
await node.close();
rmSync(dataDir, { recursive: true, force: true });
