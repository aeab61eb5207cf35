// What SQLite's quick_check costs at open: on an object index of N objects and on a metadata
// database of N versions (both checked at every start of a node, to find damage before use).
//   bun scripts/bench/quick-check.ts [N=100000]
import { mkdtempSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import type { ObjectId } from "../../src/core/id.ts";
import { SqliteMetadataStore } from "../../src/node/sqlite-metadata-store.ts";
import { metadataDamage } from "../../src/node/metadata-damage.ts";
import { PackIndex, type IndexEntry } from "../../src/store/pack-index.ts";

const count = Number(process.argv[2] ?? 100_000);
const dir = mkdtempSync(join(tmpdir(), "dsync-quick-check-"));
const randomId = () => crypto.getRandomValues(new Uint8Array(32)) as ObjectId;

function timed(label: string, run: () => string): void {
  const timesMs: number[] = [];
  for (let i = 0; i < 3; i++) {
    const startMs = performance.now();
    const result = run();
    timesMs.push(performance.now() - startMs);
    if (result !== "ok") throw new Error(`${label}: ${result}`);
  }
  console.log(`${label}: ${timesMs.map((ms) => ms.toFixed(1)).join(", ")} ms`);
}

try {
  const indexPath = join(dir, "index.sqlite");
  const index = PackIndex.open(indexPath);
  for (let start = 0; start < count; start += 4096) {
    const entries: IndexEntry[] = [];
    for (let i = start; i < Math.min(count, start + 4096); i++) {
      entries.push({ id: randomId(), packNumber: 1 + Math.floor(i / 4000), offsetBytes: 16 + (i % 4000) * 65_584, storedLengthBytes: 65_536, rawLengthBytes: 65_536, flags: 0 });
    }
    index.commitAppends(entries, new Map(), [], Date.now());
  }
  index.close();
  console.log(`index of ${count} objects: ${Bun.file(indexPath).size} bytes`);
  timed("index open + quick_check", () => {
    const opened = PackIndex.open(indexPath);
    try {
      return opened.quickCheck();
    } finally {
      opened.close();
    }
  });

  const metadataPath = join(dir, "metadata.sqlite");
  const metadata = SqliteMetadataStore.open(metadataPath);
  await metadata.ensureFolder("f", 0, { keepVersions: null, keepDays: null });
  for (let start = 0; start < count; start += 5000) {
    const records = [];
    for (let i = start; i < Math.min(count, start + 5000); i++) {
      records.push({ id: randomId(), root: randomId(), parents: [randomId()], author: "n1", hlcWallMs: i, hlcCounter: 0, message: `push ${i}`, origin: "push" as const, files: 10, totalBytes: 1000, createdMs: i });
    }
    await metadata.recordVersions("f", records);
  }
  await metadata.close();
  console.log(`metadata of ${count} versions: ${Bun.file(metadataPath).size} bytes`);
  // What a node's start runs before it opens the metadata (src/node/metadata-damage.ts).
  timed("metadata open + quick_check", () => metadataDamage(metadataPath)?.problem ?? "ok");
} finally {
  rmSync(dir, { recursive: true, force: true });
}
