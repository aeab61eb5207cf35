// .dsyncignore rules: gitignore syntax, checked path by path. Each table row is one pattern file,
// one path (relative to the scan root), whether that path is a directory, and the verdict.
// The scanner's use of these rules (not descending into ignored directories, nested files)
// is covered again on real directories in scanner.test.ts.
import { describe, expect, test } from "bun:test";
import { ignoredInWalk, isIgnored, parseIgnoreFile, type IgnoreRules } from "../../src/fs/ignore.ts";

const FILE = false;
const DIR = true;

type Row = [pattern: string, path: string, isDirectory: boolean, ignored: boolean];

function verdict(text: string, path: string, isDirectory: boolean, base = ""): boolean {
  return isIgnored([parseIgnoreFile(text, base)], path, isDirectory);
}

function runTable(rows: Row[]): void {
  test.each(rows)("%j: %s (dir %p) -> ignored %p", (pattern, path, isDirectory, ignored) => {
    expect(verdict(pattern, path, isDirectory)).toBe(ignored);
  });
}

describe("comments and blank lines", () => {
  runTable([
    ["# a comment", "# a comment", FILE, false],
    ["# a comment", "a comment", FILE, false],
    ["#secret", "#secret", FILE, false],
    ["\n\n   \n\t\n", "anything", FILE, false],
    ["# only comments\n\n# and blanks\n", "x", FILE, false],
    ["\\#secret", "#secret", FILE, true],
    ["\\#secret", "secret", FILE, false],
    ["\\!important", "!important", FILE, true],
    ["\\!important", "important", FILE, false],
    ["a\r\nb\r\n", "a", FILE, true],
    ["a\r\nb\r\n", "b", FILE, true],
    ["a\r\nb\r\n", "c", FILE, false],
  ]);

  test("a file of only comments and blanks ignores nothing", () => {
    const rules = parseIgnoreFile("# one\n\n   \n#two\n", "");
    for (const path of ["one", "two", "# one", "#two"]) expect(isIgnored([rules], path, FILE)).toBe(false);
  });

  test("a lone '!' or '/' is not a rule", () => {
    const rules = parseIgnoreFile("!\n/\n!/\n", "");
    for (const path of ["a", "!", "x/y"]) {
      expect(isIgnored([rules], path, FILE)).toBe(false);
      expect(isIgnored([rules], path, DIR)).toBe(false);
    }
  });
});

describe("trailing spaces", () => {
  runTable([
    ["foo   ", "foo", FILE, true],
    ["foo   ", "foo   ", FILE, false],
    ["foo\\ ", "foo ", FILE, true],
    ["foo\\ ", "foo", FILE, false],
    ["foo\\  ", "foo ", FILE, true],
    ["foo\\  ", "foo  ", FILE, false],
    // Only spaces are trimmed, as in git: a tab is part of the pattern.
    ["foo\t", "foo\t", FILE, true],
    ["foo\t", "foo", FILE, false],
    ["*.log  \n", "a.log", FILE, true],
  ]);
});

describe("plain names and '*'", () => {
  runTable([
    ["*.log", "a.log", FILE, true],
    ["*.log", "deep/er/a.log", FILE, true],
    ["*.log", ".log", FILE, true],
    ["*.log", "a.log.txt", FILE, false],
    ["*.log", "a.logx", FILE, false],
    ["*.log", "log", FILE, false],
    ["*.log", "a.log", DIR, true],
    // Below an ignored directory everything is ignored (git check-ignore says so too).
    ["*.log", "x.log/inner.txt", FILE, true],
    ["target", "target", FILE, true],
    ["target", "target", DIR, true],
    ["target", "src/target", DIR, true],
    ["target", "targets", FILE, false],
    ["target", "my-target", FILE, false],
    ["*", "anything", FILE, true],
    ["*", "a/b/c", FILE, true],
    ["*", ".hidden", FILE, true],
    ["a*b", "ab", FILE, true],
    ["a*b", "axxb", FILE, true],
    ["a*b", "a/b", FILE, false],
    ["a*b", "a/x/b", FILE, false],
    ["\\*x", "*x", FILE, true],
    ["\\*x", "ax", FILE, false],
    ["a.b", "a.b", FILE, true],
    ["a.b", "axb", FILE, false],
    ["a+b(c)", "a+b(c)", FILE, true],
    ["a+b(c)", "aab(c)", FILE, false],
  ]);
});

describe("anchoring with '/'", () => {
  runTable([
    ["/anchored", "anchored", FILE, true],
    ["/anchored", "anchored", DIR, true],
    ["/anchored", "sub/anchored", FILE, false],
    ["/anchored", "anchoredx", FILE, false],
    // A slash in the middle anchors too.
    ["doc/*.txt", "doc/a.txt", FILE, true],
    ["doc/*.txt", "x/doc/a.txt", FILE, false],
    ["doc/*.txt", "doc/sub/a.txt", FILE, false],
    ["a/b", "a/b", FILE, true],
    ["a/b", "z/a/b", FILE, false],
    ["/a/b", "a/b", FILE, true],
    ["/*.txt", "top.txt", FILE, true],
    ["/*.txt", "sub/deep.txt", FILE, false],
  ]);
});

describe("'dir/' matches directories only", () => {
  runTable([
    ["build/", "build", DIR, true],
    ["build/", "build", FILE, false],
    ["build/", "src/build", DIR, true],
    ["build/", "src/build", FILE, false],
    ["build/", "builds", DIR, false],
    ["/build/", "build", DIR, true],
    ["/build/", "src/build", DIR, false],
    ["a/build/", "a/build", DIR, true],
    ["a/build/", "x/a/build", DIR, false],
    ["*/", "any", DIR, true],
    ["*/", "any", FILE, false],
  ]);
});

describe("'**'", () => {
  runTable([
    ["**/x", "x", FILE, true],
    ["**/x", "a/x", FILE, true],
    ["**/x", "a/b/c/x", DIR, true],
    ["**/x", "xa", FILE, false],
    ["**/x", "a/xb", FILE, false],
    ["**/x", "a/x/b", FILE, true], // inside the ignored directory a/x
    ["**/a/b", "a/b", FILE, true],
    ["**/a/b", "z/y/a/b", FILE, true],
    ["**/a/b", "a/z/b", FILE, false],
    ["a/**/b", "a/b", FILE, true],
    ["a/**/b", "a/x/b", FILE, true],
    ["a/**/b", "a/x/y/z/b", FILE, true],
    ["a/**/b", "b", FILE, false],
    ["a/**/b", "x/a/b", FILE, false],
    ["a/**/b", "a/xb", FILE, false],
    ["a/**/b", "ab", FILE, false],
    ["x/**", "x/a", FILE, true],
    ["x/**", "x/a/b/c", FILE, true],
    ["x/**", "x", DIR, false],
    ["x/**", "y/x/a", FILE, false],
    ["x/**", "xx/a", FILE, false],
    ["**", "a", FILE, true],
    ["**", "a/b/c", FILE, true],
    ["**/", "a/b", DIR, true],
    ["**/", "a/b", FILE, true], // inside the ignored directory a
    // Any other run of stars is an ordinary '*': it does not cross a '/'.
    ["a**b", "axxb", FILE, true],
    ["a**b", "a/b", FILE, false],
    ["a/**b", "a/xb", FILE, true],
    ["a/**b", "a/x/b", FILE, false],
  ]);
});

describe("'?' and character classes", () => {
  runTable([
    ["?.txt", "a.txt", FILE, true],
    ["?.txt", "sub/b.txt", FILE, true],
    ["?.txt", "ab.txt", FILE, false],
    ["?.txt", ".txt", FILE, false],
    ["a?b", "axb", FILE, true],
    ["a?b", "a/b", FILE, false],
    ["[abc].txt", "a.txt", FILE, true],
    ["[abc].txt", "c.txt", FILE, true],
    ["[abc].txt", "d.txt", FILE, false],
    ["[abc].txt", "ab.txt", FILE, false],
    ["[!abc].txt", "d.txt", FILE, true],
    ["[!abc].txt", "a.txt", FILE, false],
    ["[!abc].txt", "b.txt", FILE, false],
    ["[!abc].txt", ".txt", FILE, false],
    ["[a-c]x", "bx", FILE, true],
    ["[a-c]x", "dx", FILE, false],
    ["[0-9][0-9].log", "42.log", FILE, true],
    ["[0-9][0-9].log", "4a.log", FILE, false],
    // A class, even a negated one, never matches the separator: "x[!y]z" is one name.
    ["x[!y]z", "xaz", FILE, true],
    ["x[!y]z", "x/z", FILE, false],
    ["x[!y]z", "x/z", DIR, false],
    ["x[/]z", "x/z", FILE, false],
    // An unclosed '[' makes the pattern match nothing, as in git.
    ["a[b", "a[b", FILE, false],
    ["a[b", "ab", FILE, false],
  ]);

  test("a reversed range is read as git reads it and leaves the other rules working", () => {
    // git 2.39 ignores "z" for "[z-a]" (checked with git check-ignore), and so do these rules.
    const rules = parseIgnoreFile("[z-a]\n*.log\n", "");
    expect(isIgnored([rules], "a.log", FILE)).toBe(true);
    expect(isIgnored([rules], "z", FILE)).toBe(true);
    expect(isIgnored([rules], "a", FILE)).toBe(false);
  });
});

describe("negation: the last matching rule wins", () => {
  runTable([
    ["*.log\n!keep.log", "a.log", FILE, true],
    ["*.log\n!keep.log", "keep.log", FILE, false],
    ["*.log\n!keep.log", "sub/keep.log", FILE, false],
    ["*.log\n!keep.log", "sub/other.log", FILE, true],
    ["!keep.log\n*.log", "keep.log", FILE, true],
    ["*.log\n!keep.log\nkeep.log", "keep.log", FILE, true],
    ["*.log\n!/keep.log", "keep.log", FILE, false],
    ["*.log\n!/keep.log", "sub/keep.log", FILE, true],
    ["*\n!*.md", "readme.md", FILE, false],
    ["*\n!*.md", "main.ts", FILE, true],
    ["*\n!dir/", "dir", DIR, false],
    ["*\n!dir/", "dir", FILE, true],
    ["!never-ignored", "never-ignored", FILE, false],
    ["!never-ignored", "other", FILE, false],
  ]);
});

describe("nested .dsyncignore files", () => {
  const root = parseIgnoreFile("*.tmp\n/top-only\nshared\n", "");
  const sub = parseIgnoreFile("/local\n!keep.tmp\n*.bak\n!shared\n", "sub");
  const deep = parseIgnoreFile("*\n", "sub/deep");
  const sets: IgnoreRules[] = [root, sub, deep];

  const rows: [path: string, isDirectory: boolean, ignored: boolean][] = [
    // The outer file applies everywhere below it.
    ["a.tmp", FILE, true],
    ["sub/a.tmp", FILE, true],
    ["other/x/a.tmp", FILE, true],
    ["top-only", FILE, true],
    ["sub/top-only", FILE, false],
    // The inner file applies to its own subtree only...
    ["sub/local", FILE, true],
    ["local", FILE, false],
    ["other/local", FILE, false],
    ["sub/x/local", FILE, false],
    ["sub/a.bak", FILE, true],
    ["sub/x/y/a.bak", FILE, true],
    ["a.bak", FILE, false],
    // ...its base is a whole path component, not a prefix of a name...
    ["subx/a.bak", FILE, false],
    ["sub.bak", FILE, false],
    // ...and inside it, it wins over the outer file.
    ["sub/keep.tmp", FILE, false],
    ["keep.tmp", FILE, true],
    ["shared", FILE, true],
    ["x/shared", FILE, true],
    ["sub/shared", FILE, false],
    ["sub/x/shared", FILE, false],
    // A file's rules never apply to the directory holding it.
    ["sub/deep", DIR, false],
    ["sub/deep/anything", FILE, true],
    ["sub/deep/keep.tmp", FILE, true],
    ["sub/deeper", DIR, false],
  ];
  test.each(rows)("%s (dir %p) -> ignored %p", (path, isDirectory, ignored) => {
    expect(isIgnored(sets, path, isDirectory)).toBe(ignored);
  });

  test("rules are relative to the file's base: the same text at another base matches other paths", () => {
    const atA = parseIgnoreFile("/x\nb/c\n", "a");
    expect(isIgnored([atA], "a/x", FILE)).toBe(true);
    expect(isIgnored([atA], "x", FILE)).toBe(false);
    expect(isIgnored([atA], "a/b/c", FILE)).toBe(true);
    expect(isIgnored([atA], "b/c", FILE)).toBe(false);
    const atAB = parseIgnoreFile("/x\n", "a/b");
    expect(isIgnored([atAB], "a/b/x", FILE)).toBe(true);
    expect(isIgnored([atAB], "a/x", FILE)).toBe(false);
    expect(isIgnored([atAB], "a/b/c/x", FILE)).toBe(false);
  });

  test("no rule sets: nothing is ignored", () => {
    expect(isIgnored([], "a.log", FILE)).toBe(false);
  });

  test("parseIgnoreFile records the base it was given", () => {
    expect(parseIgnoreFile("*.x", "a/b").base).toBe("a/b");
    expect(parseIgnoreFile("*.x", "").base).toBe("");
  });
});

describe("conflict copies keep their original's rules (ignoredInWalk)", () => {
  const rules = [parseIgnoreFile("/d/.env\n/d/keys/\n*.key\n", "")];
  const copy = "d.sync-conflict-20261201-101500-local";
  test.each([
    [`${copy}/.env`, FILE, true],
    [`${copy}/keys`, DIR, true],
    [`${copy}/notes.txt`, FILE, false],
    [copy, DIR, false],
    ["d/.env", FILE, true],
    // A conflict copy of a file keeps its rules too; a name that only looks alike is itself.
    ["a.sync-conflict-20261201-101500-node1.key", FILE, true],
    ["x/d.sync-conflict-20261201-101500-local/.env", FILE, false],
    ["d.sync-conflict-later/.env", FILE, false],
  ])("%s (dir %p) -> ignored %p", (path, isDirectory, ignored) => {
    expect(ignoredInWalk(rules, path, isDirectory)).toBe(ignored);
  });
});
