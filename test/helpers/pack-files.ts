// Finding an object's record in a store's pack files, for tests that damage one as a failing
// disk would. The id is searched as bytes and accepted only 16 bytes into a record header
// (after the record magic), so an id that also appears inside some payload is not mistaken for it.
import { readdirSync, readFileSync } from "node:fs";
import { join } from "node:path";
import { idToHex } from "../../src/core/id.ts";
import { RECORD_MAGIC } from "../../src/store/pack-format.ts";
import { PACKS_DIR_NAME } from "../../src/store/pack-store.ts";

/** Where a record's id sits in its header. */
const RECORD_ID_OFFSET_BYTES = 16;

/** The pack files of the store in `storeDir` (a node's `<data>/objects`), sorted by name. */
export function packPaths(storeDir: string): string[] {
  const packsDir = join(storeDir, PACKS_DIR_NAME);
  return readdirSync(packsDir)
    .filter((name) => name.endsWith(".pack"))
    .sort()
    .map((name) => join(packsDir, name));
}

/** The pack file and offset of the first record holding `id`, or undefined when no pack has one. */
export function recordOf(storeDir: string, id: Uint8Array): { path: string; offsetBytes: number } | undefined {
  const magic = Buffer.from(RECORD_MAGIC);
  for (const path of packPaths(storeDir)) {
    const bytes = readFileSync(path);
    for (let at = bytes.indexOf(id); at >= 0; at = bytes.indexOf(id, at + 1)) {
      const start = at - RECORD_ID_OFFSET_BYTES;
      if (start >= 0 && bytes.subarray(start, start + magic.length).equals(magic)) return { path, offsetBytes: start };
    }
  }
  return undefined;
}

/** The pack file and offset of the record holding `id`; an error naming the id when none does. */
export function findRecord(storeDir: string, id: Uint8Array): { path: string; offsetBytes: number } {
  const record = recordOf(storeDir, id);
  if (record === undefined) throw new Error(`no record for ${idToHex(id)} in ${join(storeDir, PACKS_DIR_NAME)}`);
  return record;
}
