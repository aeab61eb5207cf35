import { afterAll, expect, test } from "bun:test";
import { startCuttableProxy } from "./cuttable-proxy.ts";

const server = Bun.serve({ hostname: "127.0.0.1", port: 0, fetch: () => new Response("through") });
afterAll(() => server.stop(true));

async function fetchThrough(url: string, timeoutMs: number): Promise<string> {
  try {
    const response = await fetch(url, { signal: AbortSignal.timeout(timeoutMs), keepalive: false });
    return await response.text();
  } catch (error) {
    return (error as Error).name;
  }
}

test("forwards, blackholes or refuses when cut, and forwards again when healed", async () => {
  const proxy = await startCuttableProxy(server.port!);
  try {
    expect(await fetchThrough(proxy.url, 5_000)).toBe("through");
    expect(proxy.forwarded()).toBe(1);

    proxy.cut("blackhole");
    expect(proxy.isCut()).toBe(true);
    const started = performance.now();
    expect(await fetchThrough(proxy.url, 300)).toBe("TimeoutError");
    expect(performance.now() - started).toBeGreaterThanOrEqual(250);

    proxy.cut("refuse");
    expect(await fetchThrough(proxy.url, 5_000)).not.toBe("through");

    proxy.heal();
    expect(await fetchThrough(proxy.url, 5_000)).toBe("through");
    expect(proxy.forwarded()).toBe(2);
  } finally {
    await proxy.stop();
  }
});
