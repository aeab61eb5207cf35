// Bounded polling for end-to-end tests: the cap only guards against a hang, it is not what a
// test measures, so a slow machine makes a test slower, never wrong.

/** Polls `probe` every `intervalMs` until `check` holds; past `capMs`, an error naming `what` and the last value. */
export async function waitFor<T>(what: string, probe: () => Promise<T>, check: (value: T) => boolean, capMs = 30_000, intervalMs = 50): Promise<T> {
  const deadline = Date.now() + capMs;
  for (;;) {
    const value = await probe();
    if (check(value)) return value;
    if (Date.now() > deadline) throw new Error(`timed out waiting for ${what}: ${JSON.stringify(value)}`);
    await Bun.sleep(intervalMs);
  }
}

/** A folder's head on the node at `url` (no token), or null when it has none or does not answer. */
export async function headOf(url: string, folder: string): Promise<string | null> {
  const response = await fetch(`${url}/v1/folders/${folder}`).catch(() => undefined);
  if (!response || response.status !== 200) return null;
  return ((await response.json()) as { head: string | null }).head;
}
