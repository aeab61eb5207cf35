// .dsyncignore against git itself: each case lays out a real directory with the same rules as
// .gitignore and .dsyncignore files, then asks `git check-ignore` which paths it ignores and
// checks that a scan leaves out exactly those (the path or a directory above it is not read,
// cause "ignored") and that the scan's `ignoredAt` (what a pull uses) says the same.
import { afterAll, describe, expect, test } from "bun:test";
import { mkdirSync, writeFileSync } from "node:fs";
import { dirname, join } from "node:path";
import { scanDirectory } from "../../src/fs/scanner.ts";
import { cleanupTempDirs, tempDir } from "../helpers/processes.ts";

afterAll(cleanupTempDirs);

interface Case {
  name: string;
  /** Ignore file text by directory ("" is the root). */
  rules: Record<string, string>;
  /** Paths to create; a trailing '/' makes a directory. */
  paths: string[];
}

const CASES: Case[] = [
  {
    name: "POSIX classes",
    rules: { "": "[[:digit:]]*.dat\n[[:upper:]][[:lower:]]*.txt\nx[[:space:]]y\n[![:alpha:]]z\n[[:alnum:]_]w\n" },
    paths: ["1data.dat", "data.dat", "9.dat", "Ab.txt", "ab.txt", "AB.txt", "x y", "xy", "1z", "az", "_w", "bw", "-w", "sub/2x.dat", "sub/Readme.txt"],
  },
  {
    name: "negation, last rule wins, no re-include below an ignored directory",
    rules: { "": "*.log\n!keep.log\nbuild/\n!build/wanted.txt\n*\n!*/\n!*.md\n" },
    paths: ["a.log", "keep.log", "sub/keep.log", "notes.md", "main.ts", "sub/", "sub/x.md", "sub/y.ts", "build/", "build/wanted.txt", "build/other.md"],
  },
  {
    name: "anchoring",
    rules: { "": "/top\ndoc/*.txt\n/*.cfg\na/b\n" },
    paths: ["top", "sub/top", "doc/a.txt", "doc/sub/a.txt", "x/doc/a.txt", "app.cfg", "sub/app.cfg", "a/b", "z/a/b", "topx"],
  },
  {
    name: "'**'",
    rules: { "": "**/cache\nlogs/**\na/**/z\nq**r\n**/deep/*.o\n" },
    paths: ["cache", "x/y/cache", "x/cache/f", "logs/", "logs/a", "logs/b/c", "a/z", "a/b/z", "a/b/c/z", "b/a/z", "qxr", "q/r", "deep/a.o", "m/n/deep/a.o", "m/deep/n/a.o"],
  },
  {
    name: "escapes and spaces",
    rules: { "": "\\#hash\n\\!bang\nstar\\*\ntrail   \nspace\\ \nq\\?\n" },
    paths: ["#hash", "hash", "!bang", "bang", "star*", "starx", "trail", "trail   ", "space ", "space", "q?", "qx"],
  },
  {
    name: "directory-only patterns",
    rules: { "": "build/\n/out/\nnode_modules/\n*.d/\n" },
    paths: ["build/", "build/f", "src/build/", "src/build/f", "file/build", "out/", "out/x", "sub/out/", "node_modules/a/b", "x.d/", "x.d/y", "y.d"],
  },
  {
    name: "nested ignore files",
    rules: {
      "": "*.tmp\n/top-only\nshared\n",
      sub: "/local\n!keep.tmp\n*.bak\n!shared\n",
      "sub/deep": "*\n",
    },
    paths: ["a.tmp", "sub/a.tmp", "sub/keep.tmp", "keep.tmp", "top-only", "sub/top-only", "sub/local", "local", "sub/x/local", "sub/a.bak", "sub/x/y/a.bak", "a.bak", "subx/a.bak", "shared", "sub/shared", "sub/x/shared", "sub/deep/anything", "sub/deep/keep.tmp"],
  },
  {
    name: "an inner file re-includes what an outer one ignores",
    rules: { "": "sub/a/\n*.o\nsub/c\n", sub: "!a/\n!c\n" },
    paths: ["sub/a/", "sub/a/x", "sub/a/y.o", "sub/c/", "sub/c/z", "sub/b.o"],
  },
  {
    name: "case and character ranges",
    rules: { "": "*.LOG\n[a-c]?.txt\n[!0-9]*.bin\n" },
    paths: ["a.LOG", "a.log", "ax.txt", "dx.txt", "a.txt", "x.bin", "1.bin"],
  },
];

function layOut(root: string, c: Case): void {
  for (const path of c.paths) {
    const full = join(root, path);
    if (path.endsWith("/")) mkdirSync(full, { recursive: true });
    else {
      mkdirSync(dirname(full), { recursive: true });
      writeFileSync(full, path);
    }
  }
  for (const [dir, text] of Object.entries(c.rules)) {
    mkdirSync(join(root, dir), { recursive: true });
    writeFileSync(join(root, dir, ".gitignore"), text);
    writeFileSync(join(root, dir, ".dsyncignore"), text);
  }
}

/** The paths git ignores, asked of git itself (paths need not be tracked: --no-index). */
function gitIgnored(root: string, paths: string[]): Set<string> {
  const init = Bun.spawnSync(["git", "init", "-q", root], { stderr: "pipe" });
  if (init.exitCode !== 0) throw new Error(`git init failed (is git installed?): ${init.stderr.toString()}`);
  const check = Bun.spawnSync(["git", "-C", root, "check-ignore", "--no-index", "--stdin"], {
    stdin: new TextEncoder().encode(paths.join("\n") + "\n"),
    stdout: "pipe",
    stderr: "pipe",
  });
  // check-ignore exits 1 when nothing is ignored, 0 when something is, 128 on errors.
  if (check.exitCode !== 0 && check.exitCode !== 1) throw new Error(`git check-ignore failed: ${check.stderr.toString()}`);
  return new Set(check.stdout.toString().split("\n").filter((line) => line !== ""));
}

describe(".dsyncignore decides as git check-ignore does", () => {
  for (const c of CASES) {
    test(c.name, async () => {
      const root = tempDir();
      layOut(root, c);
      const paths = c.paths.map((p) => p.replace(/\/$/, ""));
      const git = gitIgnored(root, paths);
      const result = await scanDirectory(root, { sink: { object() {} }, excludeTopLevel: [".git"] });
      const notRead = new Set(result.notRead.filter((p) => p.cause === "ignored").map((p) => p.path));
      const leftOut = (path: string) => {
        const parts = path.split("/");
        return parts.some((_, i) => notRead.has(parts.slice(0, i + 1).join("/")));
      };
      const verdicts = (decide: (path: string) => boolean) => Object.fromEntries(paths.map((p) => [p, decide(p)]));
      const expected = verdicts((p) => git.has(p));
      expect(verdicts(leftOut)).toEqual(expected);
      const isDirectory = new Set(c.paths.filter((p) => p.endsWith("/")).map((p) => p.slice(0, -1)));
      expect(verdicts((p) => result.ignoredAt(p, isDirectory.has(p)) !== undefined)).toEqual(expected);
      // Something is ignored and something is not in every case, so neither verdict passes by default.
      expect(Object.values(expected)).toContain(true);
      expect(Object.values(expected)).toContain(false);
    });
  }
});
