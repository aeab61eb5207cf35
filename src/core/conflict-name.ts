// The name a conflict's losing side is kept under, beside the winner:
//   "report.txt" -> "report.sync-conflict-20261125-120000-<who>.txt"
// <who> is the node that wrote the losing content (or "local" for a pull's local copy) and the
// time is that write's (UTC, to the second). Pure: the time is an argument.
import { LIMITS } from "./limits.ts";

const pad = (n: number, width = 2) => String(n).padStart(width, "0");

/** "YYYYMMDD-HHMMSS" in UTC, by calendar arithmetic (days to civil date), so no Date object is needed. */
export function utcStampText(wallMs: number): string {
  const days = Math.floor(wallMs / 86_400_000);
  const secondsOfDay = Math.floor((wallMs - days * 86_400_000) / 1000);
  const z = days + 719_468;
  const era = Math.floor(z / 146_097);
  const dayOfEra = z - era * 146_097;
  const yearOfEra = Math.floor((dayOfEra - Math.floor(dayOfEra / 1460) + Math.floor(dayOfEra / 36_524) - Math.floor(dayOfEra / 146_096)) / 365);
  const dayOfYear = dayOfEra - (365 * yearOfEra + Math.floor(yearOfEra / 4) - Math.floor(yearOfEra / 100));
  const monthIndex = Math.floor((5 * dayOfYear + 2) / 153);
  const day = dayOfYear - Math.floor((153 * monthIndex + 2) / 5) + 1;
  const month = monthIndex < 10 ? monthIndex + 3 : monthIndex - 9;
  const year = yearOfEra + era * 400 + (month <= 2 ? 1 : 0);
  const hours = Math.floor(secondsOfDay / 3600);
  const minutes = Math.floor((secondsOfDay % 3600) / 60);
  return `${pad(year, 4)}${pad(month)}${pad(day)}-${pad(hours)}${pad(minutes)}${pad(secondsOfDay % 60)}`;
}

export function conflictCopyName(name: string, wallMs: number, who: string): string {
  const dot = name.lastIndexOf(".");
  const [stem, extension] = dot > 0 ? [name.slice(0, dot), name.slice(dot)] : [name, ""];
  const tail = `.sync-conflict-${utcStampText(wallMs)}-${who}${extension}`;
  // Shorten the stem (never the marker) so the name stays within the filesystem's limit.
  let kept = stem;
  while (kept.length > 1 && Buffer.byteLength(kept + tail) > LIMITS.nameLengthBytesMax) kept = Array.from(kept).slice(0, -1).join("");
  return kept + tail;
}

const CONFLICT_COPY = /^(.+?)\.sync-conflict-\d{8}-\d{6}-[^.]*(\.[^]*)?$/;

/**
 * The name a conflict copy was made from ("report.sync-conflict-20261125-120000-local.txt" ->
 * "report.txt"), or undefined for a name that is not one. Best effort: a stem shortened to fit
 * the length limit, or a writer name with a dot in it, gives another name back.
 */
export function conflictCopyOriginal(name: string): string | undefined {
  if (!name.includes(".sync-conflict-")) return undefined;
  const match = CONFLICT_COPY.exec(name);
  return match ? match[1]! + (match[2] ?? "") : undefined;
}
