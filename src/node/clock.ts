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

/** Timers as an input, so a test or a simulation can run background work on its own schedule. */
export interface Timers {
  setTimeout(callback: () => void, delayMs: number): unknown;
  clearTimeout(handle: unknown): void;
}

export const systemTimers: Timers = {
  setTimeout: (callback, delayMs) => setTimeout(callback, delayMs),
  clearTimeout: (handle) => clearTimeout(handle as ReturnType<typeof setTimeout>),
};
