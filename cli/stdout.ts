// Output that streams: a command printing a long list page by page waits, after a write the pipe
// could not take at once, until it drains, so a slow reader holds the pages back instead of
// the process's memory filling with output not yet written.

/** Resolves at once when the write was taken whole (`accepted`), else when stdout drains. */
export function drained(accepted: boolean): Promise<void> {
  if (accepted) return Promise.resolve();
  return new Promise((resolve) => process.stdout.once("drain", () => resolve()));
}
