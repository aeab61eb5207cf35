// A one-line progress bar on stderr: bytes done, rate, time left. Silent unless stderr is a
// terminal and the command is not in --json mode, so scripts never see it.
import { terminalLines, terminalRedraw } from "../core/terminal-text.ts";

export interface Progress {
  phase(label: string, totalBytes: number): void;
  advance(bytes: number): void;
  done(): void;
}

export const silentProgress: Progress = { phase() {}, advance() {}, done() {} };

function formatBytes(bytes: number): string {
  const units = ["B", "KiB", "MiB", "GiB", "TiB"];
  let value = bytes;
  let unit = 0;
  while (value >= 1024 && unit < units.length - 1) {
    value /= 1024;
    unit++;
  }
  return `${value.toFixed(unit === 0 ? 0 : 1)} ${units[unit]}`;
}

export { formatBytes };

export function createProgress(enabled: boolean, nowMs: () => number = () => Date.now()): Progress {
  if (!enabled || !process.stderr.isTTY) return silentProgress;
  let label = "";
  let total = 0;
  let doneBytes = 0;
  let startMs = 0;
  let lastDrawMs = 0;
  const draw = (force = false) => {
    const now = nowMs();
    if (!force && now - lastDrawMs < 100) return;
    lastDrawMs = now;
    const elapsedS = Math.max(0.001, (now - startMs) / 1000);
    const rate = doneBytes / elapsedS;
    const fraction = total > 0 ? Math.min(1, doneBytes / total) : 1;
    const width = 24;
    const filled = Math.round(fraction * width);
    const leftS = rate > 0 && total > doneBytes ? (total - doneBytes) / rate : 0;
    // Without a known total (a scan) there is no bar and no time left, only what was done and how fast.
    const line =
      total > 0
        ? `${label} [${"#".repeat(filled)}${"-".repeat(width - filled)}] ${formatBytes(doneBytes)}/${formatBytes(total)} ${formatBytes(rate)}/s ${leftS.toFixed(0)}s left`
        : `${label} ${formatBytes(doneBytes)} ${formatBytes(rate)}/s`;
    process.stderr.write(terminalRedraw(line.padEnd(process.stderr.columns ? process.stderr.columns - 1 : 80)));
  };
  return {
    phase(nextLabel, totalBytes) {
      label = nextLabel;
      total = totalBytes;
      doneBytes = 0;
      startMs = nowMs();
      draw(true);
    },
    advance(bytes) {
      doneBytes += bytes;
      draw();
    },
    done() {
      draw(true);
      process.stderr.write(terminalLines([""]));
    },
  };
}
