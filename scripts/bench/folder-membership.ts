// Folder membership benchmark: what the "no existence oracle" rule costs a node. A node over a
// pack store in a scratch directory, with its token store and folder-objects.sqlite on disk,
// gets a folder of --files files (one chunk each) in --dirs directories; a write token scoped
// to that folder then asks "which do you lack?" through the app (app.request, no socket).
//
//   bun scripts/bench/folder-membership.ts [--files N] [--dirs N] [--rounds N] [--data DIR]
//
// Printed: the first scoped answer (the whole folder recorded), rows and bytes on disk per
// file; then --rounds times, a commit changing one file followed at once by a scoped answer
// (commit-to-answer latency: the new version recorded before the answer); a scoped commit of a
// one-file change against an admin one; and a 1000-id "which do you lack?" scoped against admin.
import { mkdirSync, rmSync, statSync } from "node:fs";
import { join } from "node:path";
import { blake3 } from "../../src/core/blake3.ts";
import { idFromHex, idToHex, type ObjectId } from "../../src/core/id.ts";
import type { TreeEntry } from "../../src/core/objects.ts";
import { sealFile, sealTree } from "../../src/core/tree-builder.ts";
import { systemRandom } from "../../src/node/clock.ts";
import { MEMBERSHIP_FILE_NAME } from "../../src/node/folder-membership.ts";
import { openNode } from "../../src/assemble.ts";
import { SqliteTokenStore } from "../../src/node/token-store.ts";
import { createApp } from "../../src/server/app.ts";
import { openMembership } from "../../src/server/object-visibility.ts";
import type { StoredObject } from "../../src/store/object-store.ts";
import { encodeIdList, encodeObjectBatch } from "../../src/wire/formats.ts";

function flag(name: string, fallback: string): string {
  const at = process.argv.indexOf(`--${name}`);
  return at === -1 ? fallback : process.argv[at + 1] ?? fallback;
}

const files = Number(flag("files", "100000"));
const dirs = Math.max(1, Number(flag("dirs", "100")));
const rounds = Number(flag("rounds", "20"));
const dataDir = join(flag("data", "/tmp/dsync-bench"), "folder-membership");
const ADMIN = "admin-token-for-the-benchmark";

rmSync(dataDir, { recursive: true, force: true });
mkdirSync(dataDir, { recursive: true });
const node = await openNode({ dataDir });
const tokens = SqliteTokenStore.open(dataDir, systemRandom);
const membership = openMembership(node, dataDir);
const app = createApp(node, { token: ADMIN, tokens, membership });
const scoped = (await tokens.create({ role: "write", folders: ["big"], name: "bench", expiresMs: null }, Date.now())).token;

const text = new TextEncoder();
const chunkIds: ObjectId[] = [];
function fileEntry(name: string, content: string, objects: StoredObject[]): TreeEntry {
  const bytes = text.encode(content);
  const chunk = blake3(bytes);
  chunkIds.push(chunk);
  const sealed = sealFile([{ id: chunk, lengthBytes: bytes.length }]);
  objects.push({ id: chunk, bytes }, ...sealed.objects.map((o) => ({ id: o.id, bytes: o.bytes })));
  return { name, kind: "file", mode: 0o644, mtimeMs: 0, sizeBytes: bytes.length, id: sealed.id, target: null };
}

/**
 * The folder's tree with file `changed` (if any) holding other content (`generation`); returns
 * its root. With `uploader`, what the node lacks goes through the upload route as that token
 * (so a scoped token's commit may name it), else straight into the node.
 */
async function storeFolder(changed: number | null, generation: number, uploader?: string, uploadAll = false): Promise<ObjectId> {
  const objects: StoredObject[] = [];
  const perDir = Math.ceil(files / dirs);
  const dirEntries: TreeEntry[] = [];
  for (let d = 0; d < dirs; d++) {
    const entries: TreeEntry[] = [];
    for (let i = d * perDir; i < Math.min(files, (d + 1) * perDir); i++) {
      entries.push(fileEntry(`file-${String(i).padStart(7, "0")}`, i === changed ? `changed ${i} ${generation}` : `content ${i}`, objects));
    }
    const tree = sealTree(entries);
    objects.push(...tree.objects.map((o) => ({ id: o.id, bytes: o.bytes })));
    dirEntries.push({ name: `dir-${String(d).padStart(4, "0")}`, kind: "dir", mode: 0o755, mtimeMs: 0, sizeBytes: 0, id: tree.id, target: null });
  }
  const tree = sealTree(dirEntries);
  objects.push(...tree.objects.map((o) => ({ id: o.id, bytes: o.bytes })));
  if (uploader === undefined) {
    for (let i = 0; i < objects.length; i += 10_000) await node.putObjects(objects.slice(i, i + 10_000));
    return tree.id;
  }
  const present = await node.store.hasMany(objects.map((o) => o.id));
  // As a client does: what the node lacks, or (for a token that may not know of it) everything.
  const lacking = uploadAll ? objects : objects.filter((_, i) => !present[i]);
  for (let i = 0; i < lacking.length; i += 10_000) {
    const body = encodeObjectBatch(lacking.slice(i, i + 10_000)) as Uint8Array<ArrayBuffer>;
    const response = await app.request("/v1/objects/upload", { method: "POST", headers: { authorization: `Bearer ${uploader}` }, body });
    if (response.status !== 200) throw new Error(`upload: ${response.status} ${await response.text()}`);
  }
  return tree.id;
}

async function missing(token: string, ids: ObjectId[]): Promise<number> {
  const started = performance.now();
  const response = await app.request("/v1/objects/missing", { method: "POST", headers: { authorization: `Bearer ${token}` }, body: encodeIdList(ids) as Uint8Array<ArrayBuffer> });
  if (response.status !== 200) throw new Error(`missing: ${response.status} ${await response.text()}`);
  await response.arrayBuffer();
  return performance.now() - started;
}

const median = (values: number[]) => [...values].sort((a, b) => a - b)[Math.floor(values.length / 2)]!;
const fileBytes = (path: string) => {
  try {
    return statSync(path).size;
  } catch {
    return 0;
  }
};

process.stdout.write(`${files} files in ${dirs} directories\n`);
let root = await storeFolder(null, 0);
let head = (await node.commit({ folder: "big", root, parent: null, message: "", chunking: "bench", files, totalBytes: 0 })).version;
const firstMs = await missing(scoped, [root]);
const rows = membership.countMembers("big");
const membershipPath = join(dataDir, MEMBERSHIP_FILE_NAME);
const bytes = fileBytes(membershipPath) + fileBytes(`${membershipPath}-wal`);
process.stdout.write(
  `first scoped answer (whole folder recorded): ${firstMs.toFixed(0)} ms; ${rows} rows, ${(bytes / 1048576).toFixed(1)} MiB on disk (${(bytes / files).toFixed(0)} B per file)\n`,
);

const latencies: number[] = [];
for (let round = 1; round <= rounds; round++) {
  root = await storeFolder(round % files, round);
  head = (await node.commit({ folder: "big", root, parent: head, message: "", chunking: "bench", files, totalBytes: 0 })).version;
  latencies.push(await missing(scoped, [root]));
}
process.stdout.write(`commit of one changed file -> scoped answer: median ${median(latencies).toFixed(1)} ms, max ${Math.max(...latencies).toFixed(1)} ms over ${rounds} rounds\n`);

const commitMs: Record<string, number[]> = { scoped: [], admin: [] };
for (let round = 0; round < Math.max(4, Math.floor(rounds / 2)); round++) {
  for (const [who, token] of [["scoped", scoped], ["admin", ADMIN]] as const) {
    root = await storeFolder((round * 7 + 3) % files, 1000 + round * 2 + (who === "admin" ? 1 : 0), token);
    const started = performance.now();
    const response = await app.request("/v1/folders/big/commit", {
      method: "POST",
      headers: { authorization: `Bearer ${token}`, "content-type": "application/json" },
      body: JSON.stringify({ root: idToHex(root), parent: idToHex(head), files, bytes: 0 }),
    });
    if (response.status !== 200) throw new Error(`commit: ${response.status} ${await response.text()}`);
    head = idFromHex(((await response.json()) as { version: string }).version);
    commitMs[who]!.push(performance.now() - started);
  }
}
process.stdout.write(`commit of one changed file through the API: scoped ${median(commitMs.scoped!).toFixed(1)} ms, admin ${median(commitMs.admin!).toFixed(1)} ms (medians)\n`);

// A first push by a scoped token: every object is its own upload, so the commit's check walks the whole tree.
const freshToken = (await tokens.create({ role: "write", folders: ["fresh"], name: "bench", expiresMs: null }, Date.now())).token;
const freshRoot = await storeFolder(null, 0, freshToken, true);
const freshStarted = performance.now();
const fresh = await app.request("/v1/folders/fresh/commit", {
  method: "POST",
  headers: { authorization: `Bearer ${freshToken}`, "content-type": "application/json" },
  body: JSON.stringify({ root: idToHex(freshRoot), parent: null, files, bytes: 0 }),
});
const freshMs = performance.now() - freshStarted;
// Folder big holds the same objects: the token was told it lacks them all and sent them; the store keeps one copy.
process.stdout.write(`first commit of the whole folder by a scoped token that uploaded it (status ${fresh.status}): ${freshMs.toFixed(0)} ms\n`);

const sample = chunkIds.slice(0, 1000);
const steady: Record<string, number[]> = { scoped: [], admin: [] };
for (let i = 0; i < 20; i++) {
  steady.scoped!.push(await missing(scoped, sample));
  steady.admin!.push(await missing(ADMIN, sample));
}
process.stdout.write(`"which do you lack?" for 1000 ids: scoped ${median(steady.scoped!).toFixed(1)} ms, admin ${median(steady.admin!).toFixed(1)} ms (medians)\n`);

membership.close();
await tokens.close();
await node.close();
rmSync(dataDir, { recursive: true, force: true });
