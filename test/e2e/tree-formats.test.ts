// Trees of both formats on a real node: a tree of format 2 whose small files are named by their
// one chunk (no file node), and a history of format-1 trees as older versions of dsync wrote
// them; each is committed, pulled, diffed, verified and collected by real dsync processes.
import { describe, expect, test } from "bun:test";
import { readFileSync, statSync } from "node:fs";
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
