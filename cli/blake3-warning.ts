// A warning at the start of every command that hashes (serve and the client commands) when the
// native BLAKE3 could not load: everything still works, ~25x slower, and the reason is usually
// one the user can fix (the compiled binary unpacks the native module into TMPDIR).
import { blake3NativeProblem } from "../src/core/blake3.ts";
import { terminalLines } from "../src/core/terminal-text.ts";

export function portableBlake3Warning(problem: string): string {
  return (
    `dsync: warning: the native BLAKE3 could not load (${problem}); hashing uses the portable one, about 25x slower. ` +
    "Fix: point TMPDIR at a writable directory (the dsync binary unpacks its native module there), or reinstall dsync for this platform; " +
    "DSYNC_BLAKE3=portable chooses the portable one without this warning"
  );
}

/** Writes the warning to stderr when the native BLAKE3 is not in use although it was wanted. */
export function warnIfPortableBlake3(): void {
  if (blake3NativeProblem !== null) process.stderr.write(terminalLines([portableBlake3Warning(blake3NativeProblem)]));
}
