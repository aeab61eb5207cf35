// Help that explains every command: `dsync help CMD` and `dsync CMD --help` (real processes)
// list every option the parser takes for the command, and every option its code reads; each has
// a description, examples, environment and exit codes; no line ends in spaces; -V and --version
// agree. The README names no flag a command does not take.
import { expect, test } from "bun:test";
import { readdirSync, readFileSync } from "node:fs";
import { join } from "node:path";
import { COMMANDS, commandName } from "../../cli/commands.ts";
import { buildParser } from "../../cli/main.ts";
import { DSYNC_VERSION } from "../../cli/version.ts";
import { REPO_ROOT, runCli } from "../helpers/processes.ts";

const parser = buildParser();
const NAMES = COMMANDS.map(commandName);

/** The long flag names a cac command parses: "--no-pull" for "--no-pull", "--remote" for "--remote <url>". */
function parsedFlags(name: string): string[] {
  const command = parser.commands.find((c) => c.name === name)!;
  return [...command.options, ...parser.globalCommand.options].flatMap((o) => o.rawName.split(/[ ,]+/).filter((w) => w.startsWith("--")));
}

test("every command's help, both ways, lists each option it parses, with description, environment, examples and exit codes", async () => {
  expect(NAMES.sort()).toEqual(parser.commands.map((c) => c.name).sort());
  for (const name of NAMES) {
    const viaHelp = await runCli(["help", name]);
    const viaFlag = await runCli([name, "--help"]);
    expect(viaHelp.code).toBe(0);
    expect(viaFlag.code).toBe(0);
    expect(viaFlag.stdout).toBe(viaHelp.stdout);
    const help = viaHelp.stdout;
    for (const section of ["Usage:", "Description:", "Options:", "Environment:", "Examples:", "Exit codes:"]) expect(help).toContain(`\n${section}\n`);
    expect(help.startsWith(`dsync ${name}: `)).toBe(true);
    expect(help).toContain(`\n  dsync ${name}`);
    const flags = parsedFlags(name);
    expect(flags.length).toBeGreaterThan(0);
    for (const flag of flags) expect({ name, flag, listed: new RegExp(`^  (-\\w, )?${flag}\\b`, "m").test(help) }).toEqual({ name, flag, listed: true });
    for (const line of help.split("\n")) expect({ name, line, trailing: /\s$/.test(line) }).toEqual({ name, line, trailing: false });
    // Defaults are said in words: the parser's own (true for a --no- switch) never shows.
    expect(help).not.toContain("(default: true)");
  }
}, 60_000);

test("pull's help lists --version; restore's lists --no-pull without a misleading default", async () => {
  expect((await runCli(["help", "pull"])).stdout).toMatch(/^  --version <id> +Version id/m);
  expect((await runCli(["restore", "--help"])).stdout).toMatch(/^  --no-pull +Only change the node; leave DIR alone$/m);
});

test("every option a command's code reads is one it parses", () => {
  let reads = 0;
  // Each command runs one module (its `run` imports it); that module reads flags.x or options.x.
  for (const spec of COMMANDS) {
    const module = /import\("\.\/([a-z-]+\.ts)"\)/.exec(String(spec.run))![1]!;
    const source = readFileSync(join(REPO_ROOT, "cli", module), "utf8");
    const declared = new Set(parsedFlags(commandName(spec)).map((flag) => flag.replace(/^--(no-)?/, "").replace(/-([a-z])/g, (_, c: string) => c.toUpperCase())));
    const functionName = /\.(\w+Command)\(/.exec(String(spec.run))![1]!;
    // The command function's body: from its declaration to the next top-level declaration.
    const body = source.slice(source.indexOf(`function ${functionName}(`)).split(/\n(?:export )?(?:async )?function /)[0]!;
    for (const match of body.matchAll(/\bflags\.(\w+)/g)) reads++;
    for (const match of body.matchAll(/\bflags\.(\w+)/g)) expect({ command: commandName(spec), read: match[1], parsed: declared.has(match[1]!) }).toEqual({ command: commandName(spec), read: match[1], parsed: true });
  }
  expect(reads).toBeGreaterThan(40);
});

test("the overview lists every command; dsync help with an unknown command is a usage error", async () => {
  const overview = await runCli(["help"]);
  expect(overview.code).toBe(0);
  for (const name of NAMES) expect(overview.stdout).toMatch(new RegExp(`^  ${name} +\\S`, "m"));
  expect((await runCli(["--help"])).stdout).toBe(overview.stdout);
  expect((await runCli(["help", "help"])).stdout).toBe(overview.stdout);
  expect((await runCli(["push", "-h"])).stdout).toBe((await runCli(["help", "push"])).stdout);
  const unknown = await runCli(["help", "frobnicate"]);
  expect(unknown.code).toBe(2);
  expect(unknown.stderr).toBe('dsync: unknown command "frobnicate" (see dsync help)\n');
  const unknownOption = await runCli(["push", "--frobnicate"]);
  expect(unknownOption.code).toBe(2);
  expect(unknownOption.stderr).toContain("(see dsync help push)");
});

test("-V, -v, --version and version print the version and exit 0", async () => {
  for (const flag of ["-V", "-v", "--version", "version"]) {
    const result = await runCli([flag]);
    expect({ flag, code: result.code, stdout: result.stdout, stderr: result.stderr }).toEqual({ flag, code: 0, stdout: `dsync ${DSYNC_VERSION}\n`, stderr: "" });
  }
});

/** Every `--flag` the README shows after `dsync CMD` (in code and in the command table), with its command. */
function readmeFlagUses(readme: string): { command: string; flag: string; text: string }[] {
  const uses: { command: string; flag: string; text: string }[] = [];
  // A use runs from "dsync CMD" to the end of its line, code span, table cell (an escaped \| is
  // inside it) or shell comment.
  for (const match of readme.matchAll(/dsync ([a-z]+)\b((?:[^\n`|#\\]|\\.)*)/g)) {
    const command = match[1]!;
    if (!NAMES.includes(command)) continue;
    for (const flag of match[2]!.matchAll(/(?<![\w-])--[a-z][a-z0-9-]*/g)) uses.push({ command, flag: flag[0], text: match[0] });
  }
  return uses;
}

test("every flag the README shows on a command exists on that command, and every flag it names exists", () => {
  const readme = readFileSync(join(REPO_ROOT, "README.md"), "utf8");
  const uses = readmeFlagUses(readme);
  expect(uses.length).toBeGreaterThan(30);
  for (const use of uses) expect({ ...use, exists: parsedFlags(use.command).includes(use.flag) }).toEqual({ ...use, exists: true });
  // A flag named on its own in prose (`--allow-deletes`) belongs to some command.
  const every = new Set(NAMES.flatMap(parsedFlags));
  const named = [...readme.matchAll(/`(--[a-z][a-z0-9-]*)[ `]/g)].map((m) => m[1]!);
  expect(named.length).toBeGreaterThan(5);
  for (const flag of named) expect({ flag, exists: every.has(flag) }).toEqual({ flag, exists: true });
});

test("the README check sees a flag a command lacks", () => {
  expect(readmeFlagUses("run `dsync pull ~/x --frobnicate` then")).toEqual([{ command: "pull", flag: "--frobnicate", text: "dsync pull ~/x --frobnicate" }]);
  expect(readmeFlagUses("| `dsync gc [--remote URL \\| --frob DIR]` | --not-this |").map((use) => use.flag)).toEqual(["--remote", "--frob"]);
  expect(parsedFlags("pull")).not.toContain("--frobnicate");
});

test("every environment variable the code reads is explained in the help of a command", async () => {
  const { ENVIRONMENT } = await import("../../cli/commands.ts");
  const read = new Set<string>();
  const walk = (dir: string) => {
    for (const entry of readdirSync(join(REPO_ROOT, dir), { withFileTypes: true })) {
      const path = `${dir}/${entry.name}`;
      if (entry.isDirectory()) walk(path);
      else if (entry.name.endsWith(".ts")) for (const m of readFileSync(join(REPO_ROOT, path), "utf8").matchAll(/process\.env\.([A-Z_0-9]+)/g)) read.add(m[1]!);
    }
  };
  walk("cli");
  walk("src");
  expect(read.size).toBeGreaterThan(4);
  for (const name of read) expect({ name, explained: name in ENVIRONMENT }).toEqual({ name, explained: true });
  const helps = await Promise.all(NAMES.map((name) => runCli(["help", name])));
  for (const name of Object.keys(ENVIRONMENT)) expect({ name, listed: helps.some((h) => h.stdout.includes(`\n  ${name} `)) }).toEqual({ name, listed: true });
  // A command that hashes lists what chooses the BLAKE3 implementation.
  expect(helps[NAMES.indexOf("push")]!.stdout).toContain("\n  DSYNC_BLAKE3 ");
});
