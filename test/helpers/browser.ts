// Real headless Chromium (Debian's `chromium` package) driven by playwright-core, for the
// dashboard's tests. Never downloads a browser: a machine without /usr/bin/chromium fails the
// test with a message that says what to install, it does not skip it.
import { existsSync, mkdtempSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { chromium, type BrowserContext, type Request } from "playwright-core";

export const CHROMIUM_PATH = "/usr/bin/chromium";

/** Flags that keep Chromium from calling home (updates, sync, safe browsing lists) or needing a GPU or a sandbox in a container. */
export const CHROMIUM_ARGS = [
  "--no-sandbox",
  "--disable-gpu",
  "--disable-background-networking",
  "--disable-component-update",
  "--disable-sync",
  "--no-first-run",
  "--disable-quic",
];

export interface Browser {
  context: BrowserContext;
  /** Every request any page of the context made, in order. */
  requests: Request[];
  close(): Promise<void>;
}

export async function launchChromium(viewport = { width: 1280, height: 860 }): Promise<Browser> {
  if (!existsSync(CHROMIUM_PATH)) {
    throw new Error(`Chromium is not installed at ${CHROMIUM_PATH}: install Debian's package (apt-get install chromium; .ci/run does) to run the dashboard's browser tests`);
  }
  // A fresh profile each time: no cache, cookies or storage from an earlier run.
  const userDataDir = mkdtempSync(join(tmpdir(), "dsync-chromium-"));
  const context = await chromium.launchPersistentContext(userDataDir, {
    executablePath: CHROMIUM_PATH,
    headless: true,
    args: CHROMIUM_ARGS,
    viewport,
    timeout: 30_000,
  });
  const requests: Request[] = [];
  context.on("request", (request) => requests.push(request));
  return {
    context,
    requests,
    async close() {
      await context.close().catch(() => {});
      rmSync(userDataDir, { recursive: true, force: true });
    },
  };
}

/** The requests that went anywhere but 127.0.0.1 (data: and about: URLs are not requests to a host). */
export function requestsOffLoopback(requests: readonly Request[]): string[] {
  return requests
    .map((request) => request.url())
    .filter((url) => {
      const parsed = new URL(url);
      if (parsed.protocol === "data:" || parsed.protocol === "about:" || parsed.protocol === "blob:") return false;
      return parsed.hostname !== "127.0.0.1";
    });
}
