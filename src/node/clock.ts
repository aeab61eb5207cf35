// Time and randomness as inputs: the node asks these interfaces, so tests and simulations can
// run it on a controlled clock and a seeded random source.
import { randomBytes } from "node:crypto";

export interface Clock {
  nowMs(): number;
}

export const systemClock: Clock = { nowMs: () => Date.now() };

export interface RandomSource {
  bytes(length: number): Uint8Array;
}

export const systemRandom: RandomSource = { bytes: (length) => new Uint8Array(randomBytes(length)) };
