// When the kill sweep pulls the trigger. Each point draws, from the seed, a fraction of the
// operation (0 to 1.3: the last part lands after the operation, on an idle process, which is a
// valid point too) and how the fraction is measured: in time (a delay, as a fraction of the
// operation's calibrated duration) or in traffic (bytes seen by the TCP proxy in front of the
// node, as a fraction of the operation's calibrated bytes). Traffic spreads points over the
// transfer itself whatever the machine's speed; time also reaches the parts with no traffic
// (scanning, hashing, committing, repacking).
import type { Prng } from "../../test/helpers/prng.ts";
import type { TcpProxy } from "../bench/tcp-proxy.ts";

/** How far past the operation's calibrated end a kill may land. */
export const FRACTION_MAX = 1.3;
const POLL_MS = 1;

export interface Calibration {
  durationMs: number;
  /** Bytes through the proxy, both ways. */
  bytes: number;
}

export interface Trigger {
  kind: "delay" | "bytes";
  fraction: number;
}

export function drawTrigger(prng: Prng, bytesAllowed: boolean): Trigger {
  const kind = bytesAllowed && prng.nextInt(2) === 0 ? "bytes" : "delay";
  const fraction = (prng.nextUint32() / 0x1_0000_0000) * FRACTION_MAX;
  return { kind, fraction };
}

export function describeTrigger(trigger: Trigger, calibration: Calibration): string {
  return trigger.kind === "delay"
    ? `at ${Math.round(trigger.fraction * calibration.durationMs)} ms (${trigger.fraction.toFixed(2)} of ${Math.round(calibration.durationMs)} ms)`
    : `at ${Math.round(trigger.fraction * calibration.bytes)} B (${trigger.fraction.toFixed(2)} of ${calibration.bytes} B)`;
}

/**
 * Waits until the trigger's moment, counted from startedMs (performance.now()) and from the proxy's
 * counters as they were at the start; returns early once `finished()` says the operation ended
 * (the kill then lands after it). A traffic trigger whose bytes never come falls back to time:
 * it fires at FRACTION_MAX times the calibrated duration at the latest.
 */
export async function waitForTrigger(
  trigger: Trigger,
  calibration: Calibration,
  options: { startedMs: number; proxy: TcpProxy; bytesAtStart: number; finished: () => boolean },
): Promise<void> {
  const deadlineMs =
    options.startedMs + (trigger.kind === "delay" ? trigger.fraction * calibration.durationMs : FRACTION_MAX * calibration.durationMs + 1000);
  const bytesTarget = trigger.fraction * calibration.bytes;
  for (;;) {
    if (options.finished()) return;
    if (performance.now() >= deadlineMs) return;
    if (trigger.kind === "bytes") {
      const { up, down } = options.proxy.counters();
      if (up + down - options.bytesAtStart >= bytesTarget) return;
    }
    await Bun.sleep(POLL_MS);
  }
}

export function proxyBytes(proxy: TcpProxy): number {
  const { up, down } = proxy.counters();
  return up + down;
}
