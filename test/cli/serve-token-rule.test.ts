// The client token follows the rule of the cluster and metrics tokens: 8 to 512 printable
// characters without spaces. A shorter one is guessed by trying (a refusal costs nothing), and
// one with a space could never be sent, locking every client out.
import { afterAll, expect, test } from "bun:test";
import { join } from "node:path";
import { cleanupTempDirs, spawnCli, tempDir } from "../helpers/processes.ts";

afterAll(cleanupTempDirs);

/** Runs serve expecting it to refuse at once; a serve that starts instead is killed and fails the test. */
async function serve(args: string[], env: Record<string, string> = {}) {
  const running = spawnCli(["serve", "--data", join(tempDir(), "d"), "--listen", "127.0.0.1:0", ...args], { env });
  const timer = setTimeout(() => running.process.kill("SIGKILL"), 10_000);
  const result = await running.result;
  clearTimeout(timer);
  return result;
}

test("serve refuses a client token that is short or holds a space, from the flag or DSYNC_TOKEN", async () => {
  for (const [args, env] of [
    [["--token", "a"], {}],
    [["--token", "1234567"], {}],
    [["--token", "has a space in it"], {}],
    [[], { DSYNC_TOKEN: "short" }],
  ] as [string[], Record<string, string>][]) {
    const result = await serve(args, env);
    expect(result.code).toBe(2);
    expect(result.stderr).toContain("--token (or DSYNC_TOKEN) must be 8 to 512 printable characters without spaces");
  }
}, 60_000);
