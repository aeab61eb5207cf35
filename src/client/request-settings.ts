// The idle timeout every request of this process waits with: --timeout or DSYNC_TIMEOUT, in
// seconds, else 60 s. A RemoteNode made anywhere (push, pull, diff, ...) starts from it, so the
// flag reaches every request without being passed down through each command's code (the token
// of --token-file goes the same way: sync-target.ts, clientToken).
import { IDLE_TIMEOUT_MS_DEFAULT } from "./node-request.ts";
import { UsageError } from "./sync-target.ts";

/** The longest --timeout taken: a day. */
export const TIMEOUT_SECONDS_MAX = 86_400;

const chosen: { idleTimeoutMs?: number } = {};

/** Seconds as given on the command line or in DSYNC_TIMEOUT (decimals allowed), as milliseconds. */
export function parseTimeoutSeconds(value: unknown, source: string): number {
  const text = String(value).trim();
  const number = Number(text);
  if (!/^\d+(\.\d+)?$/.test(text) || !(number > 0) || number > TIMEOUT_SECONDS_MAX) {
    throw new UsageError(`${source} takes a number of seconds above 0 and at most ${TIMEOUT_SECONDS_MAX}, got ${JSON.stringify(String(value))}`);
  }
  return Math.max(1, Math.round(number * 1000));
}

export function chooseIdleTimeout(ms: number): void {
  chosen.idleTimeoutMs = ms;
}

/** --timeout, else DSYNC_TIMEOUT, else 60 s. */
export function idleTimeoutMs(): number {
  if (chosen.idleTimeoutMs !== undefined) return chosen.idleTimeoutMs;
  const env = process.env.DSYNC_TIMEOUT;
  if (env !== undefined && env !== "") return parseTimeoutSeconds(env, "DSYNC_TIMEOUT");
  return IDLE_TIMEOUT_MS_DEFAULT;
}
