// The dictionary a delta is compressed with, built the same on both sides: the blocks of old
// chunks the sender found in its new chunk (src/core/block-signatures.ts), in the order found.
// The sender takes their bytes from its new chunk (it never held the old one); the receiver
// takes them from the old chunks it holds, by the runs the delta names. Equal strong hashes make
// the two the same bytes; the rebuilt object's id check catches the rare case they are not.
// Pure.
import type { BlockMatch } from "./block-signatures.ts";

/** `blocks` consecutive blocks of base number `base` (in the delta's base list), from `firstBlock`. */
export interface BlockRun {
  base: number;
  firstBlock: number;
  blocks: number;
}

/** Where a global block number (BlockIndex's numbering) lies: which old chunk, which block in it. */
export interface BlockPlace {
  chunk: number;
  block: number;
}

/**
 * The runs for `matches` (in order), with bases numbered by first use: `bases` gets the old
 * chunks' numbers (as `place` gives them) in that order. Consecutive blocks of one base
 * matched one after the other make one run.
 */
export function runsFromMatches(matches: readonly BlockMatch[], place: (block: number) => BlockPlace): { runs: BlockRun[]; bases: number[] } {
  const runs: BlockRun[] = [];
  const bases: number[] = [];
  const baseOf = new Map<number, number>();
  for (const match of matches) {
    const { chunk, block } = place(match.block);
    let base = baseOf.get(chunk);
    if (base === undefined) {
      base = bases.length;
      bases.push(chunk);
      baseOf.set(chunk, base);
    }
    const last = runs[runs.length - 1];
    if (last && last.base === base && last.firstBlock + last.blocks === block) last.blocks++;
    else runs.push({ base, firstBlock: block, blocks: 1 });
  }
  return { runs, bases };
}

/** The sender's dictionary: the matched windows of `fresh`, in order. */
export function dictionaryFromFresh(fresh: Uint8Array, matches: readonly BlockMatch[], blockBytes: number): Uint8Array {
  const dictionary = new Uint8Array(matches.length * blockBytes);
  matches.forEach((match, i) => {
    if (match.offset < 0 || match.offset + blockBytes > fresh.length) throw new RangeError(`a match at ${match.offset} runs past the new bytes`);
    dictionary.set(fresh.subarray(match.offset, match.offset + blockBytes), i * blockBytes);
  });
  return dictionary;
}

export class DeltaBaseError extends Error {
  override name = "DeltaBaseError";
}

/** Bytes of the dictionary `runs` make. */
export function dictionaryBytes(runs: readonly BlockRun[], blockBytes: number): number {
  return runs.reduce((sum, run) => sum + run.blocks * blockBytes, 0);
}

/**
 * The receiver's dictionary: each run's blocks of its base, in order. Refuses a run that names
 * a base not given, or blocks past its base's last full block, and a dictionary past
 * `dictionaryBytesMax`, before building anything.
 */
export function dictionaryFromBases(bases: readonly Uint8Array[], runs: readonly BlockRun[], blockBytes: number, dictionaryBytesMax: number): Uint8Array {
  let total = 0;
  for (const [i, run] of runs.entries()) {
    const base = bases[run.base];
    if (!base) throw new DeltaBaseError(`run ${i} names base ${run.base} of ${bases.length}`);
    if (run.blocks < 1 || (run.firstBlock + run.blocks) * blockBytes > base.length) throw new DeltaBaseError(`run ${i} names blocks ${run.firstBlock}..${run.firstBlock + run.blocks - 1} of a base of ${Math.floor(base.length / blockBytes)} blocks`);
    total += run.blocks * blockBytes;
    if (total > dictionaryBytesMax) throw new DeltaBaseError(`the delta's dictionary would exceed ${dictionaryBytesMax} bytes`);
  }
  const dictionary = new Uint8Array(total);
  let at = 0;
  for (const run of runs) {
    const start = run.firstBlock * blockBytes;
    const length = run.blocks * blockBytes;
    dictionary.set(bases[run.base]!.subarray(start, start + length), at);
    at += length;
  }
  return dictionary;
}
