// Trees of both formats on a real node: a tree of format 2 whose small files are named by their
// one chunk (no file node), and a history of format-1 trees as older versions of dsync wrote
// them; each is committed, pulled, diffed, verified and collected by real dsync processes.
import { describe, expect, test } from "bun:test";
import { readFileSync, statSync, utimesSync, writeFileSync } from "node:fs";
import { join } from "node:path";
import { blake3 } from "../../src/core/blake3.ts";
import { idToHex, type ObjectId } from "../../src/core/id.ts";
import { sealObject, type TreeEntry } from "../../src/core/objects.ts";
import { sealTree } from "../../src/core/tree-builder.ts";
import { encodeObjectBatch } from "../../src/wire/formats.ts";
import { randomBytes } from "../helpers/trees.ts";
import { runCli, sharedNode, tempDir } from "../helpers/processes.ts";
import { sealTreeFormat1 } from "../helpers/tree-format-1.ts";

const node = sharedNode();
const bin = (bytes: Uint8Array) => bytes as unknown as BodyInit;

async function upload(objects: { id: ObjectId; bytes: Uint8Array }[]) {
  const response = await fetch(`${node().url}/v1/objects/upload`, { method: "POST", body: bin(encodeObjectBatch(objects)) });
  expect(response.status).toBe(200);
}

async function commit(folder: string, root: ObjectId, parent: string | null): Promise<string> {
  const response = await fetch(`${node().url}/v1/folders/${folder}/commit`, { method: "POST", body: JSON.stringify({ root: idToHex(root), parent }) });
  const body = await response.json();
  expect({ status: response.status, body }).toMatchObject({ status: 200 });
  return body.version as string;
}

/** Content for a folder's files, and the objects a tree of them needs, in either form. */
class Parts {
  readonly objects: { id: ObjectId; bytes: Uint8Array }[] = [];

  chunk(bytes: Uint8Array): ObjectId {
    const id = blake3(bytes);
    this.objects.push({ id, bytes });
    return id;
  }

  /** A file through its file node (the only form of format 1), its chunks cut where given. */
  fileNode(name: string, bytes: Uint8Array, cuts: number[] = []): TreeEntry {
    const bounds = [0, ...cuts, bytes.length];
    const chunks = bounds.slice(1).map((end, i) => ({ id: this.chunk(bytes.subarray(bounds[i]!, end)), lengthBytes: end - bounds[i]! }));
    const node = sealObject({ kind: "file", level: 0, sizeBytes: bytes.length, chunks: bytes.length === 0 ? [] : chunks });
    this.objects.push(node);
    return { name, kind: "file", mode: 0o644, mtimeMs: 1_700_000_000_000, sizeBytes: bytes.length, id: node.id, target: null };
  }

  /** A file named by its one chunk (tree format 2). */
  chunkFile(name: string, bytes: Uint8Array): TreeEntry {
    return { name, kind: "file", mode: 0o644, mtimeMs: 1_700_000_000_000, sizeBytes: bytes.length, id: this.chunk(bytes), target: null, idNamesChunk: true };
  }

  dir(name: string, id: ObjectId): TreeEntry {
    return { name, kind: "dir", mode: 0o755, mtimeMs: 1_700_000_000_000, sizeBytes: 0, id, target: null };
  }

  tree(entries: TreeEntry[]): ObjectId {
    const sealed = sealTree(entries);
    this.objects.push(...sealed.objects);
    return sealed.id;
  }

  treeFormat1(entries: TreeEntry[]): ObjectId {
    const sealed = sealTreeFormat1(entries);
    this.objects.push(...sealed.objects);
    return sealed.id;
  }
}

const text = (s: string) => new TextEncoder().encode(s);
/** A file's bytes as hex (compared with what was committed). */
const fileAt = (dir: string, path: string) => readFileSync(join(dir, path)).toString("hex");
const hexOf = (bytes: Uint8Array) => Buffer.from(bytes).toString("hex");

describe("a tree whose small files are named by their chunk", () => {
  test("is accepted, pulled byte for byte, diffed against a pinned version, verified and kept whole by gc", async () => {
    const p = new Parts();
    const small = text("a small file\n");
    const other = text("another one\n");
    const big = randomBytes(300_000, 7);
    const sub = p.tree([p.chunkFile("deep.txt", other)]);
    const root = p.tree([p.chunkFile("small.txt", small), p.fileNode("empty", new Uint8Array(0)), p.fileNode("big.bin", big, [100_000, 200_000]), p.dir("sub", sub)]);
    await upload(p.objects);
    const first = await commit("chunk-named", root, null);
    // A second version without sub/deep.txt and with small.txt changed.
    const changed = text("a small file, changed\n");
    const root2 = p.tree([p.chunkFile("small.txt", changed), p.fileNode("empty", new Uint8Array(0)), p.fileNode("big.bin", big, [100_000, 200_000]), p.dir("sub", p.tree([]))]);
    await upload(p.objects);
    const second = await commit("chunk-named", root2, first);

    const dir = join(tempDir(), "pulled");
    expect((await runCli(["pull", dir, "--remote", node().url, "--folder", "chunk-named", "--version", first])).code).toBe(0);
    expect(fileAt(dir, "small.txt")).toBe(hexOf(small));
    expect(fileAt(dir, "sub/deep.txt")).toBe(hexOf(other));
    expect(fileAt(dir, "big.bin")).toBe(hexOf(big));
    expect(statSync(join(dir, "empty")).size).toBe(0);

    const diff = await runCli(["diff", `${node().url}/chunk-named@${first}`, `${node().url}/chunk-named@${second}`, "--json"]);
    expect(diff.code).toBe(1);
    const changes = diff.json();
    expect(JSON.stringify(changes)).toContain("small.txt");
    expect(JSON.stringify(changes)).toContain("sub/deep.txt");
    expect(JSON.stringify(changes)).not.toContain("big.bin");

    // Collected with no grace: what the head names directly (its chunks) stays, and verify is clean.
    expect((await runCli(["gc", "--remote", node().url, "--grace-ms", "0", "--json"])).code).toBe(0);
    const verify = await runCli(["verify", "--remote", node().url, "--json"]);
    expect(verify.json()).toMatchObject({ healthy: true, corrupt: [], missing: [] });
    const head = join(tempDir(), "head");
    expect((await runCli(["pull", head, "--remote", node().url, "--folder", "chunk-named"])).code).toBe(0);
    expect(fileAt(head, "small.txt")).toBe(hexOf(changed));
    expect(fileAt(head, "big.bin")).toBe(hexOf(big));
    // Pushed back unchanged, the scan (served by what the pull remembered) builds the same tree.
    const again = await runCli(["push", head, "--json"]);
    expect(again.code).toBe(0);
    expect(again.json().root).toBe(idToHex(root2));
    const older = join(tempDir(), "older");
    expect((await runCli(["pull", older, "--remote", node().url, "--folder", "chunk-named", "--version", first])).code).toBe(0);
    expect(fileAt(older, "sub/deep.txt")).toBe(hexOf(other));
  });

  test("a commit naming a chunk the node does not hold is refused with that chunk named, and the head stays", async () => {
    const p = new Parts();
    const root = p.tree([p.chunkFile("here.txt", text("stored\n"))]);
    await upload(p.objects);
    const head = await commit("chunk-missing", root, null);
    const absent = text("never uploaded\n");
    const q = new Parts();
    const hostile = q.tree([q.chunkFile("gone.txt", absent)]);
    await upload(q.objects.filter((o) => idToHex(o.id) !== idToHex(blake3(absent))));
    const response = await fetch(`${node().url}/v1/folders/chunk-missing/commit`, { method: "POST", body: JSON.stringify({ root: idToHex(hostile), parent: head }) });
    expect(response.status).toBe(409);
    expect((await response.json()).missing).toEqual([idToHex(blake3(absent))]);
    expect((await (await fetch(`${node().url}/v1/folders/chunk-missing`)).json()).head).toBe(head);
  });
});

describe("a folder whose history was written in format 1", () => {
  test("pulls, takes new pushes beside its old versions, diffs and merges by content across the two forms, and collects", async () => {
    const p = new Parts();
    const big = randomBytes(300_000, 11);
    const sub = p.treeFormat1([p.fileNode("deep.txt", text("deep\n"))]);
    const root1 = p.treeFormat1([
      p.fileNode("big.bin", big, [120_000]),
      p.fileNode("edit.txt", text("to be edited\n")),
      p.fileNode("empty", new Uint8Array(0)),
      p.fileNode("keep.txt", text("kept as it is\n")),
      p.dir("sub", sub),
      p.fileNode("touched.txt", text("touched, not changed\n")),
    ]);
    await upload(p.objects);
    const v1 = await commit("old-format", root1, null);

    const a = join(tempDir(), "a");
    const b = join(tempDir(), "b");
    for (const dir of [a, b]) expect((await runCli(["pull", dir, "--remote", node().url, "--folder", "old-format"])).code).toBe(0);
    expect(fileAt(a, "big.bin")).toBe(hexOf(big));
    expect(fileAt(a, "sub/deep.txt")).toBe(hexOf(text("deep\n")));

    // A: one file edited, one only touched (read again, so named by its chunk from now on).
    writeFileSync(join(a, "edit.txt"), "edited on a\n");
    utimesSync(join(a, "touched.txt"), new Date("2026-03-01T00:00:00Z"), new Date("2026-03-01T00:00:00Z"));
    const pushA = await runCli(["push", a, "--json"]);
    expect(pushA.code).toBe(0);
    const v2 = pushA.json().version as string;

    // Between the two versions only edit.txt changed: touched.txt changed form, not bytes.
    const diff = await runCli(["diff", `${node().url}/old-format@${v1}`, `${node().url}/old-format@${v2}`, "--json"]);
    expect(diff.json()).toMatchObject({ modified: ["edit.txt"], added: [], removed: [], typeChanged: [] });

    // B, still at the format-1 version, changes the touched file's bytes: the node merges its
    // stale push by content, with no conflict (A never changed those bytes).
    writeFileSync(join(b, "touched.txt"), "changed on b\n");
    const pushB = await runCli(["push", b, "--json"]);
    expect(pushB.code).toBe(0);
    expect(pushB.json()).toMatchObject({ merged: true, conflicts: [] });

    const head = join(tempDir(), "head");
    expect((await runCli(["pull", head, "--remote", node().url, "--folder", "old-format"])).code).toBe(0);
    expect(fileAt(head, "touched.txt")).toBe(hexOf(text("changed on b\n")));
    expect(fileAt(head, "edit.txt")).toBe(hexOf(text("edited on a\n")));
    expect(fileAt(head, "keep.txt")).toBe(hexOf(text("kept as it is\n")));
    expect(fileAt(head, "big.bin")).toBe(hexOf(big));
    // A pulls the merge over its own push: the bytes it has are the bytes the node has.
    expect((await runCli(["pull", a])).code).toBe(0);
    expect(fileAt(a, "touched.txt")).toBe(hexOf(text("changed on b\n")));
    const old = join(tempDir(), "old");
    expect((await runCli(["pull", old, "--remote", node().url, "--folder", "old-format", "--version", v1])).code).toBe(0);
    expect(fileAt(old, "edit.txt")).toBe(hexOf(text("to be edited\n")));
    expect(fileAt(old, "touched.txt")).toBe(hexOf(text("touched, not changed\n")));

    // Both formats' versions are whole and keep the rules; then everything but the head goes.
    expect((await runCli(["verify", "--remote", node().url, "--json"])).json()).toMatchObject({ healthy: true, corrupt: [], missing: [], structure: [] });
    writeFileSync(join(head, "late.txt"), "late\n");
    expect((await runCli(["push", head, "--json", "--keep-versions", "1"])).code).toBe(0);
    const collected = (await runCli(["gc", "--remote", node().url, "--grace-ms", "0", "--json"])).json();
    expect(collected.versionsPruned).toBeGreaterThanOrEqual(3);
    expect(collected.objectsDeleted).toBeGreaterThan(0);
    expect((await runCli(["verify", "--remote", node().url, "--json"])).json()).toMatchObject({ healthy: true, corrupt: [], missing: [] });
    const last = join(tempDir(), "last");
    expect((await runCli(["pull", last, "--remote", node().url, "--folder", "old-format"])).code).toBe(0);
    expect(fileAt(last, "touched.txt")).toBe(hexOf(text("changed on b\n")));
    expect(fileAt(last, "keep.txt")).toBe(hexOf(text("kept as it is\n")));
    expect(fileAt(last, "big.bin")).toBe(hexOf(big));
    expect(fileAt(last, "late.txt")).toBe(hexOf(text("late\n")));
  });
});

describe("dsync inspect chunks", () => {
  test("says what the file's tree entry names: its one chunk, or a file node when it has none or many, or when the chunk is an object's bytes", async () => {
    const dir = tempDir();
    const small = text("one chunk\n");
    writeFileSync(join(dir, "small.txt"), small);
    writeFileSync(join(dir, "empty"), "");
    writeFileSync(join(dir, "big.bin"), randomBytes(400_000, 3));
    writeFileSync(join(dir, "tree.bin"), sealObject({ kind: "tree", level: 0, entries: [] }).bytes);
    const entryOf = async (name: string) => (await runCli(["inspect", "chunks", join(dir, name), "--json"])).json().entry;
    expect(await entryOf("small.txt")).toEqual({ names: "chunk", id: idToHex(blake3(small)) });
    expect(await entryOf("empty")).toEqual({ names: "file node", id: idToHex(sealObject({ kind: "file", level: 0, sizeBytes: 0, chunks: [] }).id) });
    expect((await entryOf("big.bin")).names).toBe("file node");
    expect((await entryOf("tree.bin")).names).toBe("file node");
  });
});
