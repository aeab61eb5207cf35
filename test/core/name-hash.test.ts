// The boundary hash of tree entry names is part of the format (it decides directory page cuts):
// FNV-1a over the UTF-8 bytes, then the murmur3 finalizer. Pinned here, ASCII and not.
import { expect, test } from "bun:test";
import { nameBoundaryHash } from "../../src/core/pages.ts";

function reference(name: string): number {
  let h = 0x811c9dc5 | 0;
  for (const byte of new TextEncoder().encode(name)) {
    h ^= byte;
    h = Math.imul(h, 0x01000193);
  }
  h ^= h >>> 16;
  h = Math.imul(h, 0x85ebca6b);
  h ^= h >>> 13;
  h = Math.imul(h, 0xc2b2ae35);
  h ^= h >>> 16;
  return h >>> 0;
}

test.each(["", "a", "README.md", "file with spaces.txt", "ünïcødé-名前.txt", "emoji-😀", "x".repeat(255)])("%p", (name) => {
  expect(nameBoundaryHash(name)).toBe(reference(name));
});

test("pinned values", () => {
  expect(nameBoundaryHash("a")).toBe(0x1a80b1b3);
  expect(nameBoundaryHash("README.md")).toBe(0xd5025d41);
  expect(nameBoundaryHash("名前")).toBe(0x52f71a8b);
});
