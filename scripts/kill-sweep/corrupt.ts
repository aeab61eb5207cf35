// Bit rot for the kill sweep's repair phase: one byte flipped inside one stored object's payload,
// in a pack file of a stopped node, chosen among the objects a replica also holds (so a peer has
// a good copy and a kept version needs it). Layout: docs/format.md, "Pack file".
import { Database } from "bun:sqlite";
import { closeSync, openSync, readSync, writeSync, fsyncSync } from "node:fs";
import { join } from "node:path";
import type { Prng } from "../../test/helpers/prng.ts";

const RECORD_HEADER_BYTES = 48;

interface IndexRow {
  id: Uint8Array;
  pack: number;
  offset: number;
  stored_length: number;
}

function indexPath(dataDir: string): string {
  return join(dataDir, "objects", "index.sqlite");
}

function readIndex(dataDir: string): IndexRow[] {
  const db = new Database(indexPath(dataDir), { readonly: true });
  try {
    return db.query(`SELECT id, pack, "offset", stored_length FROM objects WHERE stored_length > 0 ORDER BY id`).all() as IndexRow[];
  } finally {
    db.close();
  }
}

export interface Corruption {
  idHex: string;
  pack: string;
  offset: number;
}

/**
 * Flips one byte in the middle of the payload of an object both data folders hold (both nodes
 * stopped: each index is held exclusively while its node runs). Returns what was flipped, or
 * null when the folders share no object.
 */
export function corruptSharedObject(dataDir: string, replicaDataDir: string, prng: Prng): Corruption | null {
  const replicated = new Set(readIndex(replicaDataDir).map((row) => Buffer.from(row.id).toString("hex")));
  const candidates = readIndex(dataDir).filter((row) => replicated.has(Buffer.from(row.id).toString("hex")));
  if (candidates.length === 0) return null;
  const row = candidates[prng.nextInt(candidates.length)]!;
  const pack = join(dataDir, "objects", "packs", `${String(row.pack).padStart(8, "0")}.pack`);
  const offset = row.offset + RECORD_HEADER_BYTES + Math.floor(row.stored_length / 2);
  const fd = openSync(pack, "r+");
  try {
    const byte = Buffer.alloc(1);
    if (readSync(fd, byte, 0, 1, offset) !== 1) throw new Error(`${pack} is shorter than its index says (offset ${offset})`);
    byte[0] = byte[0]! ^ 0x01;
    writeSync(fd, byte, 0, 1, offset);
    fsyncSync(fd);
  } finally {
    closeSync(fd);
  }
  return { idHex: Buffer.from(row.id).toString("hex"), pack, offset };
}
