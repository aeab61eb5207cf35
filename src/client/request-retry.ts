// Trying a request again, bounded: at most `attemptsMax` attempts within `budgetMs`, each pause
// the exponential backoff with jitter (half fixed, half random, so clients that failed together
// do not come back together), or the node's Retry-After when it asks for longer (up to
// `retryAfterMaxMs`). Which failures are worth another attempt is the caller's call
// (remote.ts: what is idempotent, what was never sent); each retry is said through `notice`
// (stderr in the CLI, never stdout, so --json output stays one document). The random source,
// the clock and the pause are injected, so tests fix them.

export interface RetryPolicy {
  attemptsMax: number;
  /** The first pause; each next one doubles, up to backoffMaxMs. */
  backoffBaseMs: number;
  backoffMaxMs: number;
  /** A Retry-After longer than this is not waited for: the request fails instead. */
  retryAfterMaxMs: number;
  /** No attempt starts after this long since the first. */
  budgetMs: number;
  random(): number;
  nowMs(): number;
  sleep(ms: number): Promise<void>;
}

export const DEFAULT_RETRY_POLICY: RetryPolicy = {
  attemptsMax: 4,
  backoffBaseMs: 1000,
  backoffMaxMs: 8000,
  retryAfterMaxMs: 10_000,
  budgetMs: 30_000,
  random: Math.random,
  nowMs: () => Date.now(),
  sleep: (ms) => new Promise((resolve) => setTimeout(resolve, ms)),
};

/** The pause after failed attempt `attempt` (1 for the first): backoff with jitter, or Retry-After when longer. */
export function retryDelayMs(policy: RetryPolicy, attempt: number, retryAfterMs?: number): number {
  const backoff = Math.min(policy.backoffMaxMs, policy.backoffBaseMs * 2 ** (attempt - 1));
  const jittered = Math.round(backoff / 2 + (policy.random() * backoff) / 2);
  return retryAfterMs === undefined ? jittered : Math.max(jittered, retryAfterMs);
}

/** Retry-After as milliseconds from now: delta seconds or an HTTP date; undefined when absent or unreadable. */
export function parseRetryAfterMs(value: string | null, nowMs: number): number | undefined {
  if (value === null) return undefined;
  const text = value.trim();
  if (/^\d{1,9}$/.test(text)) return Number(text) * 1000;
  // Only the IMF-fixdate form (HTTP's), since Date.parse takes almost anything ("-1" is a year).
  if (!/^[A-Z][a-z]{2}, \d{2} [A-Z][a-z]{2} \d{4} \d{2}:\d{2}:\d{2} GMT$/.test(text)) return undefined;
  const dateMs = Date.parse(text);
  if (!Number.isFinite(dateMs)) return undefined;
  return Math.max(0, dateMs - nowMs);
}

export interface RetryDecision {
  /** Why it failed, for the notice ("503 Service Unavailable", "connection refused"). */
  reason: string;
  retryAfterMs?: number;
}

/**
 * Runs `attempt` until it succeeds, `retryable` says no (undefined), or the attempts, the budget
 * or the node's Retry-After bound run out; then the last error is thrown.
 */
export async function withRetries<T>(
  route: string,
  attempt: (number: number) => Promise<T>,
  retryable: (error: unknown) => RetryDecision | undefined,
  policy: RetryPolicy,
  notice: (line: string) => void,
): Promise<T> {
  const startMs = policy.nowMs();
  for (let number = 1; ; number++) {
    try {
      return await attempt(number);
    } catch (error) {
      const decision = number < policy.attemptsMax ? retryable(error) : undefined;
      if (decision === undefined) throw error;
      if (decision.retryAfterMs !== undefined && decision.retryAfterMs > policy.retryAfterMaxMs) throw error;
      const delayMs = retryDelayMs(policy, number, decision.retryAfterMs);
      if (policy.nowMs() - startMs + delayMs > policy.budgetMs) throw error;
      notice(`retrying ${route}: ${decision.reason} (attempt ${number + 1} of ${policy.attemptsMax} in ${(delayMs / 1000).toFixed(1)} s)`);
      await policy.sleep(delayMs);
    }
  }
}
