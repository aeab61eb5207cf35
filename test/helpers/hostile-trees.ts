// Hand-built trees that break a structural rule across objects while every object on its own
// decodes: what a hostile client or peer could upload. Each case also names "earlier" roots:
// valid directories made of the same parts (the pages, the file nodes), which a node accepts
// and marks as checked first, so a check that trusted those marks blindly would let the
// hostile tree through.
import { blake3 } from "../../src/core/blake3.ts";
import type { ObjectId } from "../../src/core/id.ts";
import { encodeObject, type StructuredObject, type TreeEntry } from "../../src/core/objects.ts";

export interface StoredBytes {
  id: ObjectId;
  bytes: Uint8Array;
}

export interface HostileCase {
  name: string;
  /** What the rejection must say. */
  rule: RegExp;
  /** The hostile directory. */
  root: ObjectId;
  /** Valid directories sharing its parts, committed before it. */
  earlier: ObjectId[];
  /** Every object and chunk both need. */
  objects: StoredBytes[];
}

class Parts {
  readonly objects: StoredBytes[] = [];

  private seal(object: StructuredObject): ObjectId {
    const bytes = encodeObject(object);
    const id = blake3(bytes);
    this.objects.push({ id, bytes });
    return id;
  }

  /** A one-chunk file node of `text`. */
  file(text: string): { id: ObjectId; sizeBytes: number } {
    const bytes = new TextEncoder().encode(text);
    const chunk = blake3(bytes);
    this.objects.push({ id: chunk, bytes });
    return { id: this.seal({ kind: "file", level: 0, sizeBytes: bytes.length, chunks: [{ id: chunk, lengthBytes: bytes.length }] }), sizeBytes: bytes.length };
  }

  /** A chunk of `text`, stored raw (a file that is its one chunk names it directly). */
  chunk(text: string): { id: ObjectId; sizeBytes: number } {
    const bytes = new TextEncoder().encode(text);
    const id = blake3(bytes);
    this.objects.push({ id, bytes });
    return { id, sizeBytes: bytes.length };
  }

  /** The stored length of an object already sealed here. */
  lengthOf(id: ObjectId): number {
    return this.objects.find((o) => Buffer.from(o.id).equals(Buffer.from(id)))!.bytes.length;
  }

  fileInner(level: number, pages: { id: ObjectId; sizeBytes: number }[]): { id: ObjectId; sizeBytes: number } {
    const sizeBytes = pages.reduce((sum, p) => sum + p.sizeBytes, 0);
    return { id: this.seal({ kind: "file", level, sizeBytes, pages }), sizeBytes };
  }

  leaf(entries: TreeEntry[]): ObjectId {
    return this.seal({ kind: "tree", level: 0, entries });
  }

  inner(level: number, pages: [ObjectId, string][]): ObjectId {
    return this.seal({ kind: "tree", level, pages: pages.map(([id, firstName]) => ({ id, firstName })) });
  }
}

export function fileEntry(name: string, file: { id: ObjectId; sizeBytes: number }, sizeBytes = file.sizeBytes): TreeEntry {
  return { name, kind: "file", mode: 0o644, mtimeMs: 0, sizeBytes, id: file.id, target: null };
}
/** A file entry naming its one chunk ("c", tree format 2). */
export function chunkFileEntry(name: string, chunk: { id: ObjectId; sizeBytes: number }, sizeBytes = chunk.sizeBytes): TreeEntry {
  return { name, kind: "file", mode: 0o644, mtimeMs: 0, sizeBytes, id: chunk.id, target: null, idNamesChunk: true };
}
export function dirEntry(name: string, id: ObjectId): TreeEntry {
  return { name, kind: "dir", mode: 0o755, mtimeMs: 0, sizeBytes: 0, id, target: null };
}
export function symlinkEntry(name: string, target: string): TreeEntry {
  return { name, kind: "symlink", mode: 0o777, mtimeMs: 0, sizeBytes: 0, id: null, target };
}

function build(name: string, rule: RegExp, make: (parts: Parts) => { root: ObjectId; earlier: ObjectId[] }): HostileCase {
  const parts = new Parts();
  const { root, earlier } = make(parts);
  return { name, rule, root, earlier, objects: parts.objects };
}

export function hostileTrees(): HostileCase[] {
  return [
    build("a name twice, in two pages", /unique and sorted across pages.*"b" in this page, "b" in the next/, (p) => {
      const one = p.leaf([fileEntry("a", p.file("1")), fileEntry("b", p.file("2"))]);
      const two = p.leaf([fileEntry("b", p.file("3")), fileEntry("c", p.file("4"))]);
      return { root: p.inner(1, [[one, "a"], [two, "b"]]), earlier: [one, two] };
    }),
    build("a directory in one page, a symlink of the same name in the next", /unique and sorted across pages.*"x" in this page, "x" in the next/, (p) => {
      const one = p.leaf([fileEntry("a", p.file("1")), dirEntry("x", p.leaf([]))]);
      const two = p.leaf([symlinkEntry("x", "/etc"), fileEntry("z", p.file("2"))]);
      return { root: p.inner(1, [[one, "a"], [two, "x"]]), earlier: [one, two] };
    }),
    build("names out of order across pages", /unique and sorted across pages.*"q" in this page, "m" in the next/, (p) => {
      const one = p.leaf([fileEntry("a", p.file("1")), fileEntry("q", p.file("2"))]);
      const two = p.leaf([fileEntry("m", p.file("3")), fileEntry("z", p.file("4"))]);
      return { root: p.inner(1, [[one, "a"], [two, "m"]]), earlier: [one, two] };
    }),
    build("a page that does not start with the name its parent records", /parent says this page starts with "c", it starts with "m"/, (p) => {
      const one = p.leaf([fileEntry("a", p.file("1")), fileEntry("b", p.file("2"))]);
      const two = p.leaf([fileEntry("m", p.file("3")), fileEntry("n", p.file("4"))]);
      return { root: p.inner(1, [[one, "a"], [two, "c"]]), earlier: [one, two] };
    }),
    build("an empty page", /starts with nothing \(it is empty\)/, (p) => {
      const one = p.leaf([fileEntry("a", p.file("1"))]);
      const empty = p.leaf([]);
      return { root: p.inner(1, [[one, "a"], [empty, "b"]]), earlier: [one, empty] };
    }),
    build("a page at the wrong level", /must be at level 1, this node is at level 0/, (p) => {
      const one = p.leaf([fileEntry("a", p.file("1"))]);
      return { root: p.inner(2, [[one, "a"]]), earlier: [one] };
    }),
    build("a directory entry naming a file node", /"d".*must be a tree node, this is a file node/, (p) => {
      const node = p.file("content");
      return { root: p.leaf([{ ...dirEntry("d", node.id) }]), earlier: [p.leaf([fileEntry("d", node)])] };
    }),
    build("a file entry naming a tree node", /"f".*must be a file node, this is a tree node/, (p) => {
      const tree = p.leaf([fileEntry("a", p.file("1"))]);
      return { root: p.leaf([fileEntry("f", { id: tree, sizeBytes: 0 })]), earlier: [tree] };
    }),
    build("a file entry whose size is not its node's", /entry says the file holds 8 bytes, its node holds 7/, (p) => {
      const node = p.file("content");
      return { root: p.leaf([fileEntry("f", node, 8)]), earlier: [p.leaf([fileEntry("f", node)])] };
    }),
    build("a file page whose size is not what its parent records", /parent says this page holds 5 bytes, it holds 6/, (p) => {
      const six = p.file("sixsix");
      const five = p.file("fivef");
      const big = p.fileInner(1, [{ id: six.id, sizeBytes: 5 }, { id: five.id, sizeBytes: 6 }]);
      return { root: p.leaf([fileEntry("big", big)]), earlier: [p.leaf([fileEntry("a", six), fileEntry("b", five)])] };
    }),
    build("a file named by its chunk whose size is not the chunk's", /entry says the file holds 8 bytes, its chunk holds 7/, (p) => {
      const chunk = p.chunk("content");
      return { root: p.leaf([chunkFileEntry("f", chunk, 8)]), earlier: [p.leaf([chunkFileEntry("f", chunk)])] };
    }),
    build("a file named by its chunk that names a file node", /named by its chunk must name a chunk, this is a/, (p) => {
      const node = p.file("content");
      return { root: p.leaf([chunkFileEntry("f", { id: node.id, sizeBytes: p.lengthOf(node.id) })]), earlier: [p.leaf([fileEntry("f", node)])] };
    }),
    build("a file named by its chunk that names a tree node", /named by its chunk must name a chunk, this is a/, (p) => {
      const tree = p.leaf([chunkFileEntry("a", p.chunk("1"))]);
      return { root: p.leaf([chunkFileEntry("f", { id: tree, sizeBytes: p.lengthOf(tree) })]), earlier: [tree] };
    }),
    build("a file page at the wrong level", /page of a file must be at level 1, this node is at level 0/, (p) => {
      const leaf = p.file("content");
      const big = p.fileInner(2, [leaf]);
      return { root: p.leaf([fileEntry("big", big)]), earlier: [p.leaf([fileEntry("a", leaf)])] };
    }),
  ];
}
