// The retry policy: backoff with jitter from an injected random source, Retry-After honoured up
// to its bound, at most four attempts within the budget, each retry said.
import { expect, test } from "bun:test";
import { DEFAULT_RETRY_POLICY, parseRetryAfterMs, retryDelayMs, withRetries, type RetryPolicy } from "../../src/client/request-retry.ts";

function policy(random: number, overrides: Partial<RetryPolicy> = {}): RetryPolicy & { slept: number[] } {
  const slept: number[] = [];
  let now = 0;
  return {
    ...DEFAULT_RETRY_POLICY,
    random: () => random,
    nowMs: () => now,
    sleep: async (ms) => {
      slept.push(ms);
      now += ms;
    },
    slept,
    ...overrides,
  };
}

test("backoff doubles from 1 s, half of it jittered by the random source, capped at 8 s", () => {
  expect([1, 2, 3, 4, 5].map((attempt) => retryDelayMs(policy(0), attempt))).toEqual([500, 1000, 2000, 4000, 4000]);
  expect([1, 2, 3, 4, 5].map((attempt) => retryDelayMs(policy(1), attempt))).toEqual([1000, 2000, 4000, 8000, 8000]);
  expect(retryDelayMs(policy(0.5), 2)).toBe(1500);
  // Retry-After wins when it asks for longer, never when it asks for less.
  expect(retryDelayMs(policy(0), 1, 3000)).toBe(3000);
  expect(retryDelayMs(policy(1), 3, 100)).toBe(4000);
});

test("Retry-After: seconds or an HTTP date; anything else is ignored", () => {
  expect(parseRetryAfterMs("2", 0)).toBe(2000);
  expect(parseRetryAfterMs(" 0 ", 0)).toBe(0);
  expect(parseRetryAfterMs(new Date(10_000).toUTCString(), 4000)).toBe(6000);
  expect(parseRetryAfterMs(new Date(1000).toUTCString(), 4000)).toBe(0);
  expect(parseRetryAfterMs("soon", 0)).toBeUndefined();
  expect(parseRetryAfterMs("-1", 0)).toBeUndefined();
  expect(parseRetryAfterMs(null, 0)).toBeUndefined();
});

test("at most four attempts, each retry said, then the last error", async () => {
  const p = policy(0);
  const notices: string[] = [];
  let attempts = 0;
  const run = withRetries(
    "GET /v1/folders",
    async (n) => {
      attempts++;
      throw new Error(`failure ${n}`);
    },
    () => ({ reason: "503 busy" }),
    p,
    (line) => notices.push(line),
  );
  await expect(run).rejects.toThrow("failure 4");
  expect(attempts).toBe(4);
  expect(p.slept).toEqual([500, 1000, 2000]);
  expect(notices).toEqual([
    "retrying GET /v1/folders: 503 busy (attempt 2 of 4 in 0.5 s)",
    "retrying GET /v1/folders: 503 busy (attempt 3 of 4 in 1.0 s)",
    "retrying GET /v1/folders: 503 busy (attempt 4 of 4 in 2.0 s)",
  ]);
});

test("a failure not worth retrying ends at once; a success ends the retries", async () => {
  const p = policy(0);
  await expect(withRetries("POST /v1/folders/f/commit", async () => Promise.reject(new Error("lost")), () => undefined, p, () => {})).rejects.toThrow("lost");
  expect(p.slept).toEqual([]);
  let n = 0;
  expect(await withRetries("GET /v1/status", async () => (++n < 3 ? Promise.reject(new Error("busy")) : "ok"), () => ({ reason: "503" }), p, () => {})).toBe("ok");
  expect(n).toBe(3);
});

test("a Retry-After past its bound, or a pause past the budget, is not waited for", async () => {
  const p = policy(0);
  await expect(withRetries("GET /v1/status", async () => Promise.reject(new Error("busy")), () => ({ reason: "503", retryAfterMs: 60_000 }), p, () => {})).rejects.toThrow("busy");
  expect(p.slept).toEqual([]);
  // A 30 s budget, each attempt taking 10 s: after the third (30 s) another 9 s pause would pass it.
  let now = 0;
  const slow = policy(0, { nowMs: () => now });
  const run = withRetries(
    "GET /v1/status",
    async () => {
      now += 10_000;
      throw new Error("slow");
    },
    () => ({ reason: "503", retryAfterMs: 9000 }),
    slow,
    () => {},
  );
  await expect(run).rejects.toThrow("slow");
  expect(slow.slept).toEqual([9000, 9000]);
});
