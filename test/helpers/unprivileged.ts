// The client run as an unprivileged user (nobody), for whom a chmod 000 file really is
// unreadable: root reads anything, so a test of what a client cannot read runs as root and
// drops to nobody with setpriv (util-linux).
import { spawn } from "bun";
import { chownSync, readdirSync } from "node:fs";
import { join } from "node:path";
import { dsyncCommand, REPO_ROOT, type CliResult } from "./processes.ts";

/** The uid and gid of nobody. */
export const NOBODY = 65534;

/** Runs `dsync args` as nobody with `home` as HOME (the caller makes it nobody's). */
export async function runAsNobody(args: string[], home: string): Promise<CliResult> {
  const proc = spawn(["setpriv", `--reuid=${NOBODY}`, `--regid=${NOBODY}`, "--clear-groups", ...dsyncCommand(), ...args], {
    cwd: REPO_ROOT,
    env: { PATH: process.env.PATH ?? "/usr/bin:/bin", HOME: home },
    stdout: "pipe",
    stderr: "pipe",
    stdin: "ignore",
  });
  const [stdout, stderr, code] = await Promise.all([new Response(proc.stdout).text(), new Response(proc.stderr).text(), proc.exited]);
  return { code, stdout, stderr, json: () => JSON.parse(stdout) };
}

/** Gives `path` and everything below it to nobody. */
export function chownTree(path: string): void {
  chownSync(path, NOBODY, NOBODY);
  for (const entry of readdirSync(path, { withFileTypes: true })) {
    if (entry.isDirectory()) chownTree(join(path, entry.name));
    else chownSync(join(path, entry.name), NOBODY, NOBODY);
  }
}
