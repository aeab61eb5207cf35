// A one-line progress bar on stderr: bytes done and total, rate, time left, files done and
// total. Shown on a terminal unless the command is in --json mode, so scripts never see it;
// --progress forces it on (a log file then gets the redrawn lines), --no-progress off.
import { terminalLines, terminalRedraw } from "../core/terminal-text.ts";

export interface Progress {
  /** Whether anything is drawn: totals that cost work to count (a pre-walk) are only counted then. */
  readonly shown: boolean;
  /** A new phase; a total of 0 bytes is unknown (no bar). `totalFiles`, when known, adds "files done/total". */
  phase(label: string, totalBytes: number, totalFiles?: number): void;
  /** `bytes` more done; `filesDone`, when given, is the phase's count of files done so far. */
  advance(bytes: number, filesDone?: number): void;
  done(): void;
}

export const silentProgress: Progress = { shown: false, phase() {}, advance() {}, done() {} };

/** What --progress / --no-progress ask for, else: a terminal and no --json. */
export function progressWanted(flags: { progress?: boolean; json?: boolean }, stderrIsTerminal = process.stderr.isTTY === true): boolean {
  if (flags.progress !== undefined) return flags.progress;
  return stderrIsTerminal && !flags.json;
}

/** Where the bar is drawn: stderr, or a test's recorder. */
export interface ProgressOutput {
  write(text: string): void;
  columns?: number;
}

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

/** Seconds as "42s", "3m05s" or "2h03m". */
function formatSeconds(totalS: number): string {
  const s = Math.round(totalS);
  if (s < 60) return `${s}s`;
  if (s < 3600) return `${Math.floor(s / 60)}m${String(s % 60).padStart(2, "0")}s`;
  return `${Math.floor(s / 3600)}h${String(Math.floor((s % 3600) / 60)).padStart(2, "0")}m`;
}

/** The bar's text at one moment (no terminal codes): what `createProgress` draws. */
export function progressLine(state: { label: string; totalBytes: number; doneBytes: number; elapsedMs: number; totalFiles?: number; filesDone?: number }): string {
  const elapsedS = Math.max(0.001, state.elapsedMs / 1000);
  const rate = state.doneBytes / elapsedS;
  // A total counted before (or remembered from the last scan) grows with what was done.
  const totalFiles = state.totalFiles === undefined ? undefined : Math.max(state.totalFiles, state.filesDone ?? 0);
  const files = totalFiles !== undefined ? `, ${state.filesDone ?? 0}/${totalFiles} files` : state.filesDone !== undefined ? `, ${state.filesDone} files` : "";
  // No bytes to go but files to visit (the stat cache serves them): the bar counts files.
  if (state.totalBytes <= 0 && totalFiles !== undefined && totalFiles > 0) {
    const filled = Math.round(((state.filesDone ?? 0) / totalFiles) * 24);
    return `${state.label} [${"#".repeat(filled)}${"-".repeat(24 - filled)}] ${state.filesDone ?? 0}/${totalFiles} files, ${formatBytes(state.doneBytes)} read`;
  }
  if (state.totalBytes <= 0 && state.doneBytes === 0 && state.filesDone === undefined) return state.label;
  // Without a known total there is no bar and no time left, only what was done and how fast.
  if (state.totalBytes <= 0) return `${state.label} ${formatBytes(state.doneBytes)} ${formatBytes(rate)}/s${files}`;
  // A total counted before the work can be passed (a file grew meanwhile): the total grows with it.
  const total = Math.max(state.totalBytes, state.doneBytes);
  const width = 24;
  const filled = Math.round((state.doneBytes / total) * width);
  const left = rate > 0 && total > state.doneBytes ? `${formatSeconds((total - state.doneBytes) / rate)} left` : state.doneBytes >= total ? "done" : "";
  return `${state.label} [${"#".repeat(filled)}${"-".repeat(width - filled)}] ${formatBytes(state.doneBytes)}/${formatBytes(total)} ${formatBytes(rate)}/s ${left}${files}`.replace(/ +,/, ",").trimEnd();
}

/** The bar, drawn when `enabled` (see progressWanted), at most every 100 ms, on stderr unless told otherwise. */
export function createProgress(enabled: boolean, nowMs: () => number = () => Date.now(), output: ProgressOutput = process.stderr): Progress {
  if (!enabled) return silentProgress;
  let label = "";
  let totalBytes = 0;
  let totalFiles: number | undefined;
  let filesDone: number | undefined;
  let doneBytes = 0;
  let startMs = 0;
  let lastDrawMs = 0;
  let drawn = false;
  /** Whether the last update is not on screen yet (the 100 ms limit held it back). */
  let behind = false;
  const draw = (force = false) => {
    const now = nowMs();
    behind = !force && now - lastDrawMs < 100;
    if (behind) return;
    lastDrawMs = now;
    drawn = true;
    const line = progressLine({ label, totalBytes, doneBytes, elapsedMs: now - startMs, totalFiles, filesDone });
    output.write(terminalRedraw(line.padEnd(output.columns ? output.columns - 1 : 80)));
  };
  return {
    shown: true,
    phase(nextLabel, nextTotalBytes, nextTotalFiles) {
      // A phase ends on screen as it ended (all files counted), not as last drawn.
      if (behind) draw(true);
      label = nextLabel;
      totalBytes = nextTotalBytes;
      totalFiles = nextTotalFiles;
      filesDone = nextTotalFiles === undefined ? undefined : 0;
      doneBytes = 0;
      startMs = nowMs();
      draw(true);
    },
    advance(bytes, nextFilesDone) {
      doneBytes += bytes;
      if (nextFilesDone !== undefined) filesDone = nextFilesDone;
      draw();
    },
    done() {
      if (!drawn) return;
      draw(true);
      output.write(terminalLines([""]));
    },
  };
}
