// A seeded pseudo-random generator (mulberry32), so "random" test data is the same on every run.

export interface Prng {
  /** A uniform 32-bit unsigned integer. */
  nextUint32(): number;
  /** A uniform integer in [0, bound). */
  nextInt(bound: number): number;
  /** lengthBytes uniform bytes. */
  bytes(lengthBytes: number): Uint8Array;
}

export function createPrng(seed: number): Prng {
  let state = seed >>> 0;
  const nextUint32 = (): number => {
    state = (state + 0x6d2b79f5) >>> 0;
    let t = state;
    t = Math.imul(t ^ (t >>> 15), t | 1);
    t ^= t + Math.imul(t ^ (t >>> 7), t | 61);
    return (t ^ (t >>> 14)) >>> 0;
  };
  return {
    nextUint32,
    nextInt: (bound) => Math.floor((nextUint32() / 0x1_0000_0000) * bound),
    bytes: (lengthBytes) => {
      const out = new Uint8Array(lengthBytes);
      for (let i = 0; i < lengthBytes; i += 4) {
        const word = nextUint32();
        for (let k = 0; k < 4 && i + k < lengthBytes; k++) out[i + k] = (word >>> (8 * k)) & 0xff;
      }
      return out;
    },
  };
}
