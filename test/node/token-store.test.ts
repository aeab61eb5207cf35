// The token store on a real SQLite file: only hashes are kept, expired and revoked tokens are
// refused, the last use is written at most once a minute, and bad specs are refused.
import { afterAll, describe, expect, test } from "bun:test";
import { Database } from "bun:sqlite";
import { createHash } from "node:crypto";
import { readFileSync, statSync } from "node:fs";
import { join } from "node:path";
import { systemRandom } from "../../src/node/clock.ts";
import { LAST_USED_RESOLUTION_MS, SqliteTokenStore, TOKENS_FILE_NAME, tokenSpecProblem } from "../../src/node/token-store.ts";
import { cleanupTempDirs, tempDir } from "../helpers/processes.ts";

afterAll(cleanupTempDirs);

const T0 = 1_800_000_000_000;

describe("token store", () => {
  test("a token is shown once: the file holds its SHA-256, never the token; owner-only", async () => {
    const dir = tempDir();
    const store = SqliteTokenStore.open(dir, systemRandom);
    const { token, record } = await store.create({ role: "write", folders: ["b", "a", "a"], name: "laptop", expiresMs: null }, T0);
    expect(token).toMatch(/^dsync_[a-z2-7]{52}$/);
    expect(record.folders).toEqual(["a", "b"]);
    await store.close();
    const path = join(dir, TOKENS_FILE_NAME);
    expect(statSync(path).mode & 0o777).toBe(0o600);
    const db = new Database(path, { readonly: true });
    const rows = db.query("SELECT * FROM tokens").all() as { hash: Uint8Array; id: string }[];
    db.close();
    expect(rows.length).toBe(1);
    expect(Buffer.from(rows[0]!.hash).equals(createHash("sha256").update(token).digest())).toBe(true);
    const files = [path, `${path}-wal`].map((p) => {
      try {
        return readFileSync(p).toString("latin1");
      } catch {
        return "";
      }
    });
    for (const bytes of files) expect(bytes.includes(token.slice(6))).toBe(false);
    // Listed without the token.
    const again = SqliteTokenStore.open(dir, systemRandom);
    expect(JSON.stringify(await again.list())).not.toContain(token.slice(6));
    await again.close();
  });

  test("valid, wrong, malformed, expired and revoked", async () => {
    const store = SqliteTokenStore.open(tempDir(), systemRandom);
    const live = await store.create({ role: "read", folders: [], name: "", expiresMs: T0 + 1000 }, T0);
    expect((await store.authenticate(live.token, T0 + 999))?.id).toBe(live.record.id);
    expect(await store.authenticate(live.token, T0 + 1000)).toBeUndefined();
    expect(await store.authenticate(live.token.slice(0, -1) + (live.token.endsWith("a") ? "b" : "a"), T0)).toBeUndefined();
    expect(await store.authenticate("not a token", T0)).toBeUndefined();
    const other = await store.create({ role: "admin", folders: [], name: "", expiresMs: null }, T0);
    expect((await store.revoke(other.record.id, T0 + 5))?.revokedMs).toBe(T0 + 5);
    // Revoking again keeps the first time.
    expect((await store.revoke(other.record.id, T0 + 9))?.revokedMs).toBe(T0 + 5);
    expect(await store.authenticate(other.token, T0 + 6)).toBeUndefined();
    expect(await store.revoke("0000000000000000", T0)).toBeUndefined();
    expect(await store.revoke("../etc", T0)).toBeUndefined();
    await store.close();
  });

  test("the last use is written at most once a minute per token", async () => {
    const dir = tempDir();
    const store = SqliteTokenStore.open(dir, systemRandom);
    const { token, record } = await store.create({ role: "read", folders: [], name: "", expiresMs: null }, T0);
    const lastUsed = async () => (await store.list()).find((t) => t.id === record.id)!.lastUsedMs;
    expect(await lastUsed()).toBeNull();
    await store.authenticate(token, T0 + 10);
    expect(await lastUsed()).toBe(T0 + 10);
    await store.authenticate(token, T0 + 10 + LAST_USED_RESOLUTION_MS - 1);
    expect(await lastUsed()).toBe(T0 + 10);
    await store.authenticate(token, T0 + 10 + LAST_USED_RESOLUTION_MS);
    expect(await lastUsed()).toBe(T0 + 10 + LAST_USED_RESOLUTION_MS);
    await store.close();
  });

  test("specs that cannot be kept are refused", () => {
    const ok = { role: "read" as const, folders: ["docs"], name: "x", expiresMs: null };
    expect(tokenSpecProblem(ok, T0)).toBeUndefined();
    expect(tokenSpecProblem({ ...ok, role: "root" as never }, T0)).toContain("role");
    expect(tokenSpecProblem({ ...ok, role: "admin" }, T0)).toContain("admin token covers every folder");
    expect(tokenSpecProblem({ ...ok, folders: ["a/b"] }, T0)).toContain("a/b");
    expect(tokenSpecProblem({ ...ok, folders: Array.from({ length: 101 }, (_, i) => `f${i}`) }, T0)).toContain("at most 100");
    expect(tokenSpecProblem({ ...ok, name: "evil\x1b[2J" }, T0)).toContain("control");
    expect(tokenSpecProblem({ ...ok, expiresMs: T0 }, T0)).toContain("future");
  });
});
