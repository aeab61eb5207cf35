// What a scan is about to do, counted before it starts, so its progress bar has totals: how
// many files it will visit and how many bytes it will read (files the stat cache serves are
// visited, not read). One lstat per entry and no file opened, except the .dsyncignore files,
// whose rules it applies as the scan does (scanner.ts); it only ever estimates, so a path that
// changes between this walk and the scan makes the bar's total a little off, never the scan.
import { lstatSync, type BigIntStats } from "node:fs";
import { join } from "node:path";
import { validateName } from "../core/names.ts";
import { readDirectoryNames } from "./directory-names.ts";
import { IGNORE_FILE_NAME, ignoredInWalk, parseIgnoreFile, type IgnoreRules } from "./ignore.ts";
import { readIgnoreFile, TEMP_FILE_PREFIX } from "./scanner.ts";
import type { StatCache } from "./stat-cache.ts";

export interface ScanEstimate {
  /** Regular files the scan will visit. */
  files: number;
  /** Sum of their sizes. */
  totalBytes: number;
  /** Bytes of the files the stat cache does not vouch for: what the scan will read. */
  bytesToRead: number;
}

export interface EstimateOptions {
  excludeTopLevel?: readonly string[];
  statCache?: StatCache;
}

export function estimateScan(rootPath: string, options: EstimateOptions = {}): ScanEstimate {
  const estimate: ScanEstimate = { files: 0, totalBytes: 0, bytesToRead: 0 };
  const walk = (relativePath: string, absolutePath: string, inherited: IgnoreRules[]) => {
    let names: string[];
    try {
      names = readDirectoryNames(absolutePath).names;
    } catch {
      return; // the scan will report it unreadable
    }
    let rules = inherited;
    if (names.includes(IGNORE_FILE_NAME)) {
      let text: string | undefined;
      try {
        text = readIgnoreFile(join(absolutePath, IGNORE_FILE_NAME));
      } catch {
        return; // rules that cannot be read: the scan leaves the whole directory out
      }
      if (text !== undefined) rules = [...inherited, parseIgnoreFile(text, relativePath)];
    }
    for (const name of names) {
      if (relativePath === "" && options.excludeTopLevel?.includes(name)) continue;
      if (name.startsWith(TEMP_FILE_PREFIX) || validateName(name)) continue;
      const childRelative = relativePath === "" ? name : `${relativePath}/${name}`;
      const childAbsolute = join(absolutePath, name);
      let stats: BigIntStats;
      try {
        stats = lstatSync(childAbsolute, { bigint: true });
      } catch {
        continue;
      }
      if (ignoredInWalk(rules, childRelative, stats.isDirectory())) continue;
      if (stats.isDirectory()) walk(childRelative, childAbsolute, rules);
      else if (stats.isFile()) {
        const size = Number(stats.size);
        estimate.files++;
        estimate.totalBytes += size;
        const cached = options.statCache?.get(childRelative);
        const unchanged = cached !== undefined && cached.sizeBytes === size && cached.mtimeNs === stats.mtimeNs && cached.ctimeNs === stats.ctimeNs && cached.inode === stats.ino;
        if (!unchanged) estimate.bytesToRead += size;
      }
    }
  };
  walk("", rootPath, []);
  return estimate;
}
