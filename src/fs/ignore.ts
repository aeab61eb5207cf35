// .dsyncignore: gitignore syntax, one file per directory, applying to that directory's subtree.
//
// The patterns are matched by the `ignore` package (pinned), whose matching is git's own:
// blank lines and '#' comments, '!' negation (the last matching rule wins), a trailing '/'
// (directories only), a leading or inner '/' (anchored to the .dsyncignore's directory), '*',
// '?', bracket classes with ranges and POSIX classes ('[[:digit:]]'), '**' across directories,
// '\' escapes and trailing spaces. What this file adds is how several files combine, as in git:
// the rules of the deepest file that has a matching rule decide, and a file's rules never apply
// to the directory holding it. As in git, a file inside an ignored directory cannot be
// re-included. Matching is case-sensitive, as git's on Linux. The verdicts are checked against `git check-ignore` (test/fs/ignore-git.test.ts).
import ignore, { type Ignore } from "ignore";
import { conflictCopyOriginal } from "../core/conflict-name.ts";

export const IGNORE_FILE_NAME = ".dsyncignore";

/** What one file's rules say of one path by themselves, parent directories aside. */
interface PathVerdict {
  ignored: boolean;
  unignored: boolean;
}

/**
 * The library's public `test` also reports a path ignored when its file's rules ignore a
 * directory above it. Combining files needs each file's verdict on the path itself: git lets a
 * deeper file re-include a directory an outer one ignores ("sub/a/" at the top, "!a/" in sub),
 * and then the outer rule says nothing about sub/a/x. That per-path test is the library's rule
 * list (`_rules.test`, the step `test` makes at each level), reached here and checked once, at
 * load, so a change of the pinned version fails loudly instead of matching differently.
 */
type PathMatcher = Ignore & { _rules: { test(path: string, mode: "regex"): PathVerdict } };

function pathMatcher(text: string): PathMatcher {
  // Case-sensitive, as git on Linux (the library's default folds case).
  const matcher = ignore({ ignorecase: false }).add(text) as PathMatcher;
  if (typeof matcher._rules?.test !== "function") throw new Error("the ignore package changed: its per-path rule test is gone (see src/fs/ignore.ts)");
  return matcher;
}
pathMatcher("");

export interface IgnoreRules {
  /** Path of the directory the rules came from, relative to the scan root ("" for the root). */
  base: string;
  /** The compiled patterns of that one file, matched against paths relative to `base`. */
  matcher: PathMatcher;
}

/** Parses the text of one .dsyncignore file; `base` is its directory relative to the scan root. */
export function parseIgnoreFile(text: string, base: string): IgnoreRules {
  return { base, matcher: pathMatcher(text) };
}

/**
 * Decides whether a path is ignored, given the rule sets that apply to it (outermost first).
 * `relativePath` is relative to the scan root. As in git, a path below an ignored directory is
 * ignored; the rules of the deepest file with a rule matching the path itself decide the rest.
 */
export function isIgnored(ruleSets: readonly IgnoreRules[], relativePath: string, isDirectory: boolean): boolean {
  for (let slash = relativePath.indexOf("/"); slash !== -1; slash = relativePath.indexOf("/", slash + 1)) {
    if (ignoredItself(ruleSets, relativePath.slice(0, slash), true)) return true;
  }
  return ignoredItself(ruleSets, relativePath, isDirectory);
}

/**
 * The verdict on the path itself, its directories aside: the deepest file with a matching rule
 * decides. For a walk that never goes below an ignored directory, this is `isIgnored` without
 * asking again about every directory above.
 */
export function ignoredItself(ruleSets: readonly IgnoreRules[], relativePath: string, isDirectory: boolean): boolean {
  for (let i = ruleSets.length - 1; i >= 0; i--) {
    const set = ruleSets[i]!;
    let local: string;
    if (set.base === "") local = relativePath;
    else if (relativePath.startsWith(set.base + "/")) local = relativePath.slice(set.base.length + 1);
    else continue;
    // The library tells a directory by its trailing '/', which is what 'dir/' patterns need.
    const verdict = set.matcher._rules.test(isDirectory ? `${local}/` : local, "regex");
    if (verdict.ignored) return true;
    if (verdict.unignored) return false;
  }
  return false;
}

/**
 * What the scanner's walk asks of each entry (nothing above it is ignored): `ignoredItself`,
 * and a conflict copy, with everything in it, is ignored wherever its original would be. A
 * directory moved aside by a pull (d -> d.sync-conflict-<time>-local) keeps the ignored files
 * it held, and rules naming them through the old path ("/d/.env") must keep them private: the
 * path is also asked with each conflict copy's name put back ("d/.env").
 */
export function ignoredInWalk(ruleSets: readonly IgnoreRules[], relativePath: string, isDirectory: boolean): boolean {
  if (ignoredItself(ruleSets, relativePath, isDirectory)) return true;
  if (!relativePath.includes(".sync-conflict-")) return false;
  const original = relativePath
    .split("/")
    .map((part) => conflictCopyOriginal(part) ?? part)
    .join("/");
  return original !== relativePath && isIgnored(ruleSets, original, isDirectory);
}
