// The options of every command that talks to a node (CONNECTION_OPTIONS in commands.ts), applied
// before the command runs: the idle timeout (--timeout, else DSYNC_TIMEOUT) and the token
// (--token-file, else DSYNC_TOKEN). They are set for the whole process (request-settings.ts,
// sync-target.ts), so every RemoteNode a command makes, however deep, uses them.
import { chooseIdleTimeout, idleTimeoutMs, parseTimeoutSeconds } from "../src/client/request-settings.ts";
import { chooseClientToken } from "../src/client/sync-target.ts";
import { rawOptionValue } from "./raw-options.ts";
import { readTokenFile } from "./token-file.ts";

export function applyConnectionOptions(options: { timeout?: unknown; tokenFile?: unknown }, argv: readonly string[]): void {
  if (options.timeout !== undefined) chooseIdleTimeout(parseTimeoutSeconds(options.timeout, "--timeout"));
  // A bad DSYNC_TIMEOUT is a usage error before anything is sent, not a failure halfway.
  else idleTimeoutMs();
  if (options.tokenFile !== undefined) {
    // The path as typed: the parser would turn a file named "007" into the number 7.
    const path = rawOptionValue(argv, "token-file") ?? String(options.tokenFile);
    chooseClientToken(readTokenFile(path, "--token-file"));
  }
}
