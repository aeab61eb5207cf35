// How long a client waits for a commit's answer: the node answers only once its check of the
// whole tree is done, and that check grows with the tree. A commit that takes longer than the
// idle timeout and the work hold, but not longer than its size allows, is answered, not
// reported failed while it lands (it is never sent again: a commit is not idempotent). A small
// commit keeps the short wait, so a node that stopped answering is still found out.
import { expect, test } from "bun:test";
import { COMMIT_HOLD_MS_PER_FILE, commitHoldMs, NODE_WORK_HOLD_MS, RemoteNode } from "../../src/client/remote.ts";

const ID = "ab".repeat(32);

/** A node whose commit answers after `delayMs` (as a commit of a big tree does), counting the commits it was sent. */
function slowCommitServer(delayMs: number) {
  let commits = 0;
  const server = Bun.serve({
    hostname: "127.0.0.1",
    port: 0,
    async fetch(request) {
      const path = new URL(request.url).pathname;
      if (path === "/v1/health") return Response.json({ ok: true, node: "n1" });
      if (request.method !== "POST" || path !== "/v1/folders/f/commit") return new Response("not found", { status: 404 });
      commits += 1;
      await request.json();
      await Bun.sleep(delayMs);
      return Response.json({ version: ID, pushed: ID, parent: null, mergedWith: null, root: ID, conflicts: [] });
    },
  });
  return { url: `http://127.0.0.1:${server.port}`, commits: () => commits, stop: () => server.stop(true) };
}

test("the wait for a commit grows with the files it names, on top of the work hold", () => {
  expect(commitHoldMs(0)).toBe(NODE_WORK_HOLD_MS);
  expect(commitHoldMs(1_000_000)).toBe(NODE_WORK_HOLD_MS + 1_000_000 * COMMIT_HOLD_MS_PER_FILE);
  // A first commit of 1 000 000 files is given at least 15 minutes (it took 66 s before its lookups were batched).
  expect(commitHoldMs(1_000_000)).toBeGreaterThanOrEqual(15 * 60_000);
  expect(commitHoldMs(-5)).toBe(NODE_WORK_HOLD_MS);
});

test("a commit of a big tree that answers after the idle timeout and the work hold is answered, not reported failed", async () => {
  // Scaled down: 300 ms idle, 200 ms hold; the answer comes after 1.5 s, well past both.
  const server = slowCommitServer(1500);
  try {
    const node = new RemoteNode(server.url, undefined, { timeouts: { idleTimeoutMs: 300 }, workHoldMs: 200, notice: () => {} });
    const body = { root: ID, parent: null, message: "", chunking: "x", bytes: 0 };
    // 3 000 files: 3 s more, the answer lands within it.
    const started = performance.now();
    const info = await node.commit("f", { ...body, files: 3000 });
    expect(info.version).toBe(ID);
    expect(performance.now() - started).toBeGreaterThanOrEqual(1400);
    expect(server.commits()).toBe(1);
    // A commit of one file with the same delay is given up on: the wait still ends.
    const error = await node.commit("f", { ...body, files: 1 }).then(
      () => undefined,
      (e: unknown) => e as Error,
    );
    expect(error?.message).toContain("did not answer POST /v1/folders/f/commit");
    expect(server.commits()).toBe(2);
  } finally {
    server.stop();
  }
});
