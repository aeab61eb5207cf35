// Many-versions data set: a data folder whose folder "big" holds --versions N versions (default
// 200 000), made by committing straight into a node opened in this process (no HTTP, no CLI),
// each version a push of a one-file tree whose content changes every --distinct-every versions.
// Used to measure what listing a long history costs (docs/benchmarks.md, "Long histories").
//
//   bun scripts/bench/many-versions.ts [--versions N] [--data DIR]
//
// Then serve DIR and time `dsync log --limit 20` and `dsync log > /dev/null` against it.
import { mkdirSync, rmSync } from "node:fs";
import { blake3 } from "../../src/core/blake3.ts";
import type { ObjectId } from "../../src/core/id.ts";
import { sealFile, sealTree } from "../../src/core/tree-builder.ts";
import { openNode } from "../../src/assemble.ts";

function flag(name: string, fallback: string): string {
  const at = process.argv.indexOf(`--${name}`);
  return at === -1 ? fallback : process.argv[at + 1] ?? fallback;
}

const versions = Number(flag("versions", "200000"));
const dataDir = flag("data", "/tmp/dsync-bench/many-versions");
const distinctEvery = Number(flag("distinct-every", "1000"));

rmSync(dataDir, { recursive: true, force: true });
mkdirSync(dataDir, { recursive: true });
const node = await openNode({ dataDir });

/** A one-file tree; its objects stored. */
async function storeRoot(n: number): Promise<ObjectId> {
  const bytes = new TextEncoder().encode(`content ${n}\n`);
  const chunk = blake3(bytes);
  const file = sealFile([{ id: chunk, lengthBytes: bytes.length }]);
  const tree = sealTree([{ name: "notes.txt", kind: "file", mode: 0o644, mtimeMs: 0, sizeBytes: bytes.length, id: file.id, target: null }]);
  await node.putObjects([{ id: chunk, bytes }, ...file.objects, ...tree.objects].map((o) => ({ id: o.id, bytes: o.bytes })));
  return tree.id;
}

const started = performance.now();
let parent: ObjectId | null = null;
let root = await storeRoot(0);
for (let i = 0; i < versions; i++) {
  if (i > 0 && i % distinctEvery === 0) root = await storeRoot(i);
  const result = await node.commit({ folder: "big", root, parent, message: `version ${i}`, chunking: "bench", files: 1, totalBytes: 12 });
  parent = result.version;
  if ((i + 1) % 10_000 === 0) process.stderr.write(`${i + 1} versions, ${((performance.now() - started) / 1000).toFixed(1)} s\n`);
}
await node.close();
process.stdout.write(`${versions} versions of folder big in ${dataDir}, ${((performance.now() - started) / 1000).toFixed(1)} s\n`);
