// Hybrid logical clock: wall time plus a counter, so timestamps stay monotonic and causally
// ordered even when wall clocks jump backwards or two events share a millisecond.
// Pure: the wall time is an argument, never read here.

export interface HlcTimestamp {
  wallMs: number;
  counter: number;
}

/** The timestamp for a local event at physical time nowMs, given the last one issued. */
export function hlcTick(last: HlcTimestamp, nowMs: number): HlcTimestamp {
  if (nowMs > last.wallMs) return { wallMs: nowMs, counter: 0 };
  return { wallMs: last.wallMs, counter: last.counter + 1 };
}

/** Merges a timestamp seen from elsewhere, so later local events order after it. */
export function hlcReceive(last: HlcTimestamp, remote: HlcTimestamp, nowMs: number): HlcTimestamp {
  const wallMs = Math.max(last.wallMs, remote.wallMs, nowMs);
  let counter: number;
  if (wallMs === last.wallMs && wallMs === remote.wallMs) counter = Math.max(last.counter, remote.counter) + 1;
  else if (wallMs === last.wallMs) counter = last.counter + 1;
  else if (wallMs === remote.wallMs) counter = remote.counter + 1;
  else counter = 0;
  return { wallMs, counter };
}

export function hlcCompare(a: HlcTimestamp, b: HlcTimestamp): number {
  return a.wallMs !== b.wallMs ? a.wallMs - b.wallMs : a.counter - b.counter;
}

export const HLC_ZERO: HlcTimestamp = { wallMs: 0, counter: 0 };
