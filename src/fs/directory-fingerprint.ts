// A directory's fingerprint: one digest of everything that fixes its tree node, taken from what
// a scan sees before it reads a single file, so an unchanged directory's tree id can be taken
// from the stat cache's record instead of rebuilt (scanner.ts).
//
// Per entry, in the scan's (tree) order: the name, its kind, and
//   - a file: mode, inode, size, mtime and ctime, the stat a stat cache hit is decided on (its
//     content, hence its id, is trusted for that stat by the same rule);
//   - a directory: the mode and mtime its entry takes, and its tree id (scanned first);
//   - a symlink: the mode and mtime its entry takes, and its target.
// The chunker's parameters lead (they decide every file's id). Names are length-prefixed, so
// no two listings write the same bytes.
import { blake3 } from "../core/blake3.ts";
import type { ObjectId } from "../core/id.ts";
import { ENTRY_IDENTITY_BYTES, type EntryStat } from "./entry-calls.ts";

const FILE = 1;
const DIRECTORY = 2;
const SYMLINK = 3;
/** The longest entry: a u16 name length, a name of 255 bytes, a kind, a u16 target length and a target of at most 4096 bytes. */
const ENTRY_BYTES_MAX = 2 + 255 * 3 + 1 + 2 + 4096 * 3 + ENTRY_IDENTITY_BYTES;

export class DirectoryFingerprint {
  private bytes = new Uint8Array(16 * 1024);
  private view = new DataView(this.bytes.buffer);
  private length = 0;
  private readonly encoder = new TextEncoder();

  constructor(chunking: string) {
    this.addText(chunking);
  }

  private room(): void {
    if (this.length + ENTRY_BYTES_MAX <= this.bytes.length) return;
    const grown = new Uint8Array(this.bytes.length * 2);
    grown.set(this.bytes.subarray(0, this.length));
    this.bytes = grown;
    this.view = new DataView(grown.buffer);
  }

  private addText(text: string): void {
    this.room();
    const bytes = this.bytes;
    const start = this.length + 2;
    let at = start;
    // ASCII by hand (most names), anything else through the encoder.
    for (let i = 0; i < text.length; i++) {
      const code = text.charCodeAt(i);
      if (code >= 0x80) {
        at = start + this.encoder.encodeInto(text, bytes.subarray(start)).written;
        break;
      }
      bytes[at++] = code;
    }
    this.view.setUint16(this.length, at - start, true);
    this.length = at;
  }

  private addKind(name: string, kind: number): void {
    this.addText(name);
    this.bytes[this.length++] = kind;
  }

  file(name: string, stat: EntryStat): void {
    this.addKind(name, FILE);
    stat.writeIdentity(this.view, this.length);
    this.length += ENTRY_IDENTITY_BYTES;
  }

  directory(name: string, mode: number, mtimeMs: number, id: ObjectId): void {
    this.addKind(name, DIRECTORY);
    this.view.setUint32(this.length, mode, true);
    this.view.setFloat64(this.length + 4, mtimeMs, true);
    this.bytes.set(id, this.length + 12);
    this.length += 12 + id.length;
  }

  symlink(name: string, mode: number, mtimeMs: number, target: string): void {
    this.addKind(name, SYMLINK);
    this.view.setUint32(this.length, mode, true);
    this.view.setFloat64(this.length + 4, mtimeMs, true);
    this.length += 12;
    this.addText(target);
  }

  digest(): Uint8Array {
    return blake3(this.bytes.subarray(0, this.length));
  }
}
