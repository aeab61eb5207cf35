// The corruption sweep: with a seed, flip one bit in each of a random choice of the objects a
// replica stores (chunks, file nodes, tree nodes, version objects, found through the pack
// index), then check that `dsync verify` finds every one, that `verify --repair` brings every one
// back from the peer, that the replica then verifies clean and pulls every version byte for byte;
// and that a flipped byte in a page of either SQLite database (the metadata, the object index) is
// caught by verify. Prints the figures (injected, found, repaired, by kind) for docs/reliability.md.
//
//   CORRUPTION_SWEEP_SEEDS=1-20 npx bun test test/e2e/corruption-sweep.test.ts   (default: seed 1)
import { afterAll, expect, test } from "bun:test";
import { Database } from "bun:sqlite";
import { closeSync, cpSync, openSync, readdirSync, readFileSync, readSync, writeFileSync, writeSync } from "node:fs";
import { join } from "node:path";
import { blake3 } from "../../src/core/blake3.ts";
import { idToHex } from "../../src/core/id.ts";
import { decodeObject, peekKind } from "../../src/core/objects.ts";
import { packFileName, RECORD_HEADER_LENGTH_BYTES } from "../../src/store/pack-format.ts";
import { decodePayload } from "../../src/store/pack-compression.ts";
import { cleanupTempDirs, freePort, runCli, startNode, tempDir, type NodeProcess } from "../helpers/processes.ts";
import { headOf } from "../helpers/wait-for.ts";
import { createPrng, type Prng } from "../helpers/prng.ts";
import { describeTree, randomBytes, writeTree, type DiskTree } from "../helpers/trees.ts";

const CLUSTER_TOKEN = "test-cluster-token-sweep";
const KINDS = ["chunk", "file", "tree", "version"] as const;
type Kind = (typeof KINDS)[number];
/** Objects damaged per kind and seed (fewer when the replica holds fewer). */
const INJECT_PER_KIND: Record<Kind, number> = { chunk: 6, file: 4, tree: 3, version: 1 };

const running: NodeProcess[] = [];
afterAll(async () => {
  for (const node of running) await node.stop().catch(() => {});
  cleanupTempDirs();
});

function seedsFromEnv(): number[] {
  const text = process.env.CORRUPTION_SWEEP_SEEDS ?? "1";
  const range = /^(\d+)-(\d+)$/.exec(text);
  if (range) return Array.from({ length: Number(range[2]) - Number(range[1]) + 1 }, (_, i) => Number(range[1]) + i);
  return text.split(",").map(Number);
}

interface StoredRecord {
  idHex: string;
  kind: Kind;
  path: string;
  offsetBytes: number;
  storedLengthBytes: number;
}

/** Every object of a stopped node's store, with its kind and where its record lies (from the pack index). */
function storedRecords(dataDir: string): StoredRecord[] {
  const db = new Database(join(dataDir, "objects", "index.sqlite"), { readonly: true });
  try {
    const rows = db.query(`SELECT id, pack, "offset", stored_length, flags FROM objects ORDER BY id`).all() as {
      id: Uint8Array;
      pack: number;
      offset: number;
      stored_length: number;
      flags: number;
    }[];
    return rows.map((row) => {
      const path = join(dataDir, "objects", "packs", packFileName(row.pack));
      const payload = new Uint8Array(row.stored_length);
      const fd = openSync(path, "r");
      try {
        readSync(fd, payload, 0, payload.length, row.offset + RECORD_HEADER_LENGTH_BYTES);
      } finally {
        closeSync(fd);
      }
      const bytes = decodePayload(row.flags, payload);
      let kind: Kind = "chunk";
      if (peekKind(bytes) !== undefined) {
        try {
          kind = decodeObject(bytes).kind;
        } catch {}
      }
      return { idHex: idToHex(row.id as never), kind, path, offsetBytes: row.offset, storedLengthBytes: row.stored_length };
    });
  } finally {
    db.close();
  }
}

function flipBit(path: string, atBytes: number, bit: number): void {
  const fd = openSync(path, "r+");
  try {
    const one = Buffer.alloc(1);
    readSync(fd, one, 0, 1, atBytes);
    one[0] = one[0]! ^ (1 << bit);
    writeSync(fd, one, 0, 1, atBytes);
  } finally {
    closeSync(fd);
  }
}

function pick<T>(prng: Prng, items: readonly T[], count: number): T[] {
  const pool = [...items];
  const out: T[] = [];
  while (out.length < count && pool.length > 0) out.push(pool.splice(prng.nextInt(pool.length), 1)[0]!);
  return out;
}

/**
 * Flips the top bit of the cell count in one seeded B-tree page of a SQLite file (not page 1,
 * which holds the schema); returns the page number. No page can hold 32768 cells, so SQLite's
 * integrity_check always catches it. (A flip that leaves the page well-formed, such as one inside
 * a row's value or one that shrinks a WITHOUT ROWID table's page to a smaller valid count, is
 * beyond what integrity_check can see: it checks structure, not content.)
 */
function corruptSqlitePage(path: string, prng: Prng): number {
  const bytes = readFileSync(path);
  const pageSize = bytes.readUInt16BE(16) === 1 ? 65536 : bytes.readUInt16BE(16);
  // Pages on the freelist keep stale bytes that may look like a B-tree page; SQLite never reads
  // them, so damage there is harmless and not what this checks. The header names the freelist.
  const free = new Set<number>();
  for (let trunk = bytes.readUInt32BE(32); trunk !== 0 && !free.has(trunk); trunk = bytes.readUInt32BE((trunk - 1) * pageSize)) {
    free.add(trunk);
    const at = (trunk - 1) * pageSize;
    for (let i = 0; i < bytes.readUInt32BE(at + 4); i++) free.add(bytes.readUInt32BE(at + 8 + 4 * i));
  }
  const btreePages: number[] = [];
  for (let page = 1; page * pageSize < bytes.length; page++) {
    if (!free.has(page + 1) && [2, 5, 10, 13].includes(bytes[page * pageSize]!)) btreePages.push(page);
  }
  expect(btreePages.length).toBeGreaterThan(0);
  const page = btreePages[prng.nextInt(btreePages.length)]!;
  bytes[page * pageSize + 3] = bytes[page * pageSize + 3]! ^ 0x80;
  writeFileSync(path, bytes);
  return page + 1; // SQLite numbers pages from 1
}

/** A seeded folder: a few directories of small files, some files of several chunks. */
function seededTree(prng: Prng): DiskTree {
  const tree: DiskTree = {};
  for (let d = 0; d < 4; d++) {
    const dir: DiskTree = {};
    for (let f = 0; f < 6 + prng.nextInt(10); f++) dir[`f${f}.txt`] = `seed file ${d}/${f}: ${prng.nextUint32()}\n`;
    dir[`blob${d}.bin`] = randomBytes(20_000 + prng.nextInt(200_000), prng.nextUint32());
    tree[`dir${d}`] = d === 3 ? { nested: dir } : dir;
  }
  tree["large.bin"] = randomBytes(600_000 + prng.nextInt(400_000), prng.nextUint32());
  return tree;
}

async function waitForSameHead(urls: string[], folder: string, capMs = 30_000): Promise<string> {
  const deadline = Date.now() + capMs;
  for (;;) {
    const heads = await Promise.all(urls.map((url) => headOf(url, folder)));
    if (heads[0] && heads.every((h) => h === heads[0])) return heads[0];
    if (Date.now() > deadline) throw new Error(`nodes did not converge: ${JSON.stringify(heads)}`);
    await Bun.sleep(50);
  }
}

function byKind(records: readonly { kind: Kind }[]): Record<Kind, number> {
  const counts = { chunk: 0, file: 0, tree: 0, version: 0 };
  for (const record of records) counts[record.kind]++;
  return counts;
}

async function sweep(seed: number): Promise<void> {
  const prng = createPrng(seed);
  const ports = [await freePort(), await freePort()];
  const urls = ports.map((p) => `http://127.0.0.1:${p}`) as [string, string];
  const dataDirs = ["a", "b"].map((name) => join(tempDir("dsync-sweep-"), name));
  // The replica's scrub stays off, so what finds the damage is verify.
  const start = (i: number) =>
    startNode({
      dataDir: dataDirs[i],
      listen: `127.0.0.1:${ports[i]}`,
      args: ["--node-id", `sweep-${"ab"[i]}`, "--peers", urls[1 - i]!, "--cluster-token", CLUSTER_TOKEN, "--sync-interval-ms", "300", "--scrub-bytes-per-second", "0"],
    });
  const a = await start(0);
  let b = await start(1);
  running.push(a, b);
  const [urlA, urlB] = urls;

  // Three versions, each changing a little, so old versions hold objects the head does not.
  const source = join(tempDir("dsync-sweep-"), "folder");
  const versions: { id: string; tree: Record<string, unknown> }[] = [];
  const tree = seededTree(prng);
  for (let v = 0; v < 3; v++) {
    if (v > 0) (tree.dir0 as DiskTree)[`added${v}.txt`] = `version ${v}: ${prng.nextUint32()}\n`;
    if (v > 0) tree["large.bin"] = randomBytes(600_000 + prng.nextInt(400_000), prng.nextUint32());
    writeTree(source, tree);
    const pushed = await runCli(["push", source, "--remote", urlA, "--folder", "sweep", "--json"]);
    expect(pushed.code).toBe(0);
    versions.push({ id: pushed.json().version, tree: describeTree(source) });
  }
  const head = await waitForSameHead(urls, "sweep");
  expect(head).toBe(versions.at(-1)!.id);

  // Damage the replica while it is stopped: one bit in each chosen record's payload.
  await b.stop();
  const records = storedRecords(b.dataDir);
  // The head version is read by every listing a peer asks for; the older ones only by verify.
  const candidates = records.filter((r) => !(r.kind === "version" && r.idHex === head));
  const injected = KINDS.flatMap((kind) => pick(prng, candidates.filter((r) => r.kind === kind), INJECT_PER_KIND[kind]));
  for (const record of injected) flipBit(record.path, record.offsetBytes + RECORD_HEADER_LENGTH_BYTES + prng.nextInt(record.storedLengthBytes), prng.nextInt(8));
  const injectedIds = injected.map((r) => r.idHex).sort();
  const kindOf = new Map(records.map((r) => [r.idHex, r.kind]));

  // A copy of the damaged replica for the database checks, which must not disturb the repair.
  const scratch = (name: string) => {
    const dir = join(tempDir("dsync-sweep-"), name);
    cpSync(b.dataDir, dir, { recursive: true });
    return dir;
  };
  const metadataCopy = scratch("metadata-damaged");
  const metadataPage = corruptSqlitePage(join(metadataCopy, "metadata.sqlite"), prng);
  const indexCopy = scratch("index-damaged");
  const indexPage = corruptSqlitePage(join(indexCopy, "objects", "index.sqlite"), prng);

  b = await start(1);
  running.push(b);
  const found = await runCli(["verify", "--remote", urlB, "--json"]);
  expect(found.code).toBe(1);
  const foundIds: string[] = found.json().corrupt;
  expect([...foundIds].sort()).toEqual(injectedIds);

  const repairRun = await runCli(["verify", "--remote", urlB, "--repair", "--json"]);
  const repair = repairRun.json();
  expect(repair.unrepairable).toEqual([]);
  expect(repairRun.code).toBe(0);
  const objects = (await runCli(["status", "--remote", urlB, "--json"])).json().objects;
  // Repaired by the background repairer as verify quarantined them, or by verify --repair: all of them.
  expect(objects).toMatchObject({ quarantined: 0, repaired: injected.length, unrepairable: 0 });

  const clean = await runCli(["verify", "--remote", urlB, "--json"]);
  expect(clean.code).toBe(0);
  expect(clean.json()).toMatchObject({ corrupt: [], missing: [], unrepairable: [], quarantined: 0 });
  for (const version of versions) {
    const target = join(tempDir("dsync-sweep-"), `pull-${version.id.slice(0, 8)}`);
    const pulled = await runCli(["pull", target, "--remote", urlB, "--folder", "sweep", "--version", version.id]);
    expect(pulled.code).toBe(0);
    expect(describeTree(target)).toEqual(version.tree);
  }

  // A flipped byte in a page of metadata.sqlite: verify names it (its integrity check, or the
  // error that kept the node from opening it) and exits 1.
  const databaseResults: string[] = [];
  {
    const result = await runCli(["verify", "--data", metadataCopy, "--json"]);
    expect(result.code).toBe(1);
    const report = result.json();
    expect(report.metadataIntegrity).not.toBe("ok");
    expect(report.healthy).toBe(false);
    databaseResults.push(`metadata.sqlite page ${metadataPage}: detected${report.error ? " (the node could not open it)" : ""}`);
  }
  // In index.sqlite (derived data): the open moves it aside and rebuilds it from the packs,
  // which finds the damaged records again and quarantines them, so verify still exits 1.
  {
    const result = await runCli(["verify", "--data", indexCopy, "--json"]);
    expect(result.code).toBe(1);
    const report = result.json();
    expect(report.indexIntegrity).toBe("ok");
    expect(report.healthy).toBe(false);
    const detected = /the object index was damaged/.test(result.stderr);
    if (detected) {
      expect(readdirSync(join(indexCopy, "objects")).some((name) => name.startsWith("index.sqlite.damaged-"))).toBe(true);
      expect(result.stderr).toContain(`${injected.length} damaged record(s) found by the rebuild are quarantined`);
    }
    databaseResults.push(`index.sqlite page ${indexPage}: ${detected ? "moved aside and rebuilt" : "NOT DETECTED"}`);
    expect(detected).toBe(true);
  }

  // Each damaged object, read back from the replica, hashes to its id again.
  const repairedIds: string[] = [];
  for (const id of injectedIds) {
    const response = await fetch(`${urlB}/v1/objects/${id}`);
    if (response.status === 200 && idToHex(blake3(new Uint8Array(await response.arrayBuffer()))) === id) repairedIds.push(id);
  }
  expect(repairedIds).toEqual(injectedIds);
  console.log(
    `corruption sweep seed ${seed}: ${records.length} objects stored; injected ${injected.length} ${JSON.stringify(byKind(injected))}, ` +
      `found ${foundIds.length} ${JSON.stringify(byKind(foundIds.map((id) => ({ kind: kindOf.get(id)! }))))}, ` +
      `repaired ${repairedIds.length} ${JSON.stringify(byKind(repairedIds.map((id) => ({ kind: kindOf.get(id)! }))))}; ${databaseResults.join(", ")}`,
  );
  await a.stop();
  await b.stop();
}

for (const seed of seedsFromEnv()) {
  test(`corruption sweep, seed ${seed}: verify finds every flipped bit, the peer repairs every one, every version pulls intact`, () => sweep(seed), 180_000);
}
