// Output that streams: a command printing a long list page by page waits, after a write the pipe
// could not take at once, until it drains, so a slow reader holds the pages back instead of
// the process's memory filling with output not yet written.
import { terminalJsonClose, terminalJsonItems, terminalJsonOpen } from "../src/core/terminal-text.ts";

/** Resolves at once when the write was taken whole (`accepted`), else when stdout drains. */
export function drained(accepted: boolean): Promise<void> {
  if (accepted) return Promise.resolve();
  return new Promise((resolve) => process.stdout.once("drain", () => resolve()));
}

/**
 * One JSON document, `fields` and the array `field`, written page by page as the pages come:
 * the array is never built whole. A failure halfway leaves it unterminated, and the exit code
 * says so.
 */
export async function writeJsonDocument<T>(fields: Record<string, unknown>, field: string, pages: AsyncIterable<readonly T[]>): Promise<void> {
  await drained(process.stdout.write(terminalJsonOpen(fields, field)));
  let written = 0;
  for await (const page of pages) {
    await drained(process.stdout.write(terminalJsonItems(page, written)));
    written += page.length;
  }
  await drained(process.stdout.write(terminalJsonClose(written)));
}
