// .dsyncignore: gitignore syntax, one file per directory, applying to that directory's subtree.
//
// Supported: blank lines and '#' comments, '!' negation (the last matching rule wins), a
// trailing '/' (directories only), a leading or inner '/' (anchored to the .dsyncignore's
// directory), '*', '?', '[...]' classes, and '**' across directories. A '\' escapes the next
// character. As in git, a file inside an ignored directory cannot be re-included.

export const IGNORE_FILE_NAME = ".dsyncignore";

interface IgnoreRule {
  regex: RegExp;
  negated: boolean;
  directoryOnly: boolean;
}

export interface IgnoreRules {
  /** Path of the directory the rules came from, relative to the scan root ("" for the root). */
  base: string;
  rules: IgnoreRule[];
}

function globToRegexSource(glob: string): string {
  let out = "";
  for (let i = 0; i < glob.length; i++) {
    const c = glob[i]!;
    if (c === "\\" && i + 1 < glob.length) {
      out += escapeRegex(glob[++i]!);
    } else if (c === "*") {
      if (glob[i + 1] === "*") {
        const atStart = i === 0 || glob[i - 1] === "/";
        const atEnd = i + 2 === glob.length || glob[i + 2] === "/";
        if (atStart && atEnd) {
          // "**/" matches zero or more directories; a trailing "**" matches everything below.
          if (i + 2 === glob.length) out += ".*";
          else {
            out += "(?:.*/)?";
            i++; // also consume the '/'
          }
          i++;
          continue;
        }
      }
      out += "[^/]*";
    } else if (c === "?") {
      out += "[^/]";
    } else if (c === "[") {
      const close = glob.indexOf("]", i + 2);
      if (close === -1) out += "\\[";
      else {
        let body = glob.slice(i + 1, close);
        if (body.startsWith("!")) body = "^" + body.slice(1);
        // Like '?' and '*', a class never matches the '/' between path components.
        out += "(?!/)[" + body.replace(/\\/g, "\\\\") + "]";
        i = close;
      }
    } else {
      out += escapeRegex(c);
    }
  }
  return out;
}

function escapeRegex(c: string): string {
  return /[.*+?^${}()|[\]\\/]/.test(c) ? "\\" + c : c;
}

/** Parses the text of one .dsyncignore file; `base` is its directory relative to the scan root. */
export function parseIgnoreFile(text: string, base: string): IgnoreRules {
  const rules: IgnoreRule[] = [];
  for (let line of text.split(/\r?\n/)) {
    // Trailing spaces are ignored unless escaped (spaces only, as in git: a tab is part of the name).
    line = line.replace(/(?<!\\) +$/, "");
    if (line === "" || line.startsWith("#")) continue;
    let negated = false;
    if (line.startsWith("!")) {
      negated = true;
      line = line.slice(1);
    } else if (line.startsWith("\\!") || line.startsWith("\\#")) {
      line = line.slice(1);
    }
    let directoryOnly = false;
    if (line.endsWith("/")) {
      directoryOnly = true;
      line = line.slice(0, -1);
    }
    if (line === "") continue;
    const anchored = line.includes("/");
    if (line.startsWith("/")) line = line.slice(1);
    const source = globToRegexSource(line);
    let regex: RegExp;
    try {
      regex = new RegExp(anchored ? `^${source}$` : `^(?:.*/)?${source}$`);
    } catch {
      // A malformed pattern (a class like [z-a]) matches nothing, as in git; it must not take
      // the file's other rules down with it.
      continue;
    }
    rules.push({ regex, negated, directoryOnly });
  }
  return { base, rules };
}

/**
 * Decides whether a path is ignored, given the rule sets that apply to it (outermost first).
 * `relativePath` is relative to the scan root.
 */
export function isIgnored(ruleSets: readonly IgnoreRules[], relativePath: string, isDirectory: boolean): boolean {
  let ignored = false;
  for (const set of ruleSets) {
    let local: string;
    if (set.base === "") local = relativePath;
    else if (relativePath.startsWith(set.base + "/")) local = relativePath.slice(set.base.length + 1);
    else continue;
    for (const rule of set.rules) {
      if (rule.directoryOnly && !isDirectory) continue;
      if (rule.regex.test(local)) ignored = !rule.negated;
    }
  }
  return ignored;
}
