// The child process of the Raft storage crash test, and the script of saves it runs: saveRaft in
// a loop until it is killed, each save appending entries (some truncating a suffix first, some
// with a snapshot, some with large entries) and replacing the hard state. After each save
// resolves it prints "saved N", so the test knows what was acknowledged when it killed the
// process; the test replays the same script on a fresh database to know what each save left.
//
//   bun test/helpers/raft-save-loop.ts sqlite|postgres LOCATION
import type { Entry } from "../../src/core/raft/types.ts";
import type { RaftSave } from "../../src/node/metadata-records.ts";
import { openStoreOn, type MetadataBackendName } from "./metadata-backends.ts";

function bytesFor(n: number, index: number): Uint8Array {
  // Mostly small commands; every 17th save carries a large one, so a kill often lands mid-write.
  const length = n % 17 === 0 ? 256 * 1024 : (n * 37 + index * 11) % 3000;
  const out = new Uint8Array(length);
  for (let i = 0; i < length; i++) out[i] = (n * 31 + index * 7 + i) & 0xff;
  return out;
}

/** The saves of the loop, the same on every run: save n is next() called the n-th time. */
export class RaftSaveScript {
  private n = 0;
  private last = 0;
  private snapshotIndex = 0;
  private readonly terms = new Map<number, number>();

  next(): RaftSave {
    const n = ++this.n;
    const term = 1 + Math.floor(n / 5);
    const save: RaftSave = {};
    // A snapshot inside the log (an index it holds, with its term): the entries after it stay.
    if (n % 11 === 0 && this.last - 3 > this.snapshotIndex) {
      const index = this.last - 3;
      save.snapshot = { meta: { index, term: this.terms.get(index)!, config: { voters: ["a", "b", "c"] } }, data: bytesFor(n, 0) };
      this.snapshotIndex = index;
    }
    // Every 7th save replaces the last two entries (a conflicting suffix) and adds one.
    const truncate = n % 7 === 0 && this.last - 1 > this.snapshotIndex;
    const from = truncate ? this.last - 1 : this.last + 1;
    const count = truncate ? 3 : 1 + (n % 3);
    const entries: Entry[] = [];
    for (let i = 0; i < count; i++) {
      const index = from + i;
      entries.push({ term, index, kind: n % 13 === 0 && i === 0 ? "config" : "normal", data: bytesFor(n, index) });
      this.terms.set(index, term);
    }
    this.last = from + count - 1;
    save.entries = entries;
    save.hardState = { term, vote: `node-${n % 3}`, commit: Math.max(this.snapshotIndex, this.last - 3) };
    if (n === 1) save.bootstrapConfig = { voters: ["a", "b", "c"] };
    return save;
  }
}

if (import.meta.main) {
  const [backend, location] = process.argv.slice(2) as [MetadataBackendName, string];
  const store = await openStoreOn(backend, location);
  const script = new RaftSaveScript();
  for (let n = 1; ; n++) {
    await store.saveRaft(script.next());
    process.stdout.write(`saved ${n}\n`);
  }
}
