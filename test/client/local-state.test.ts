// DIR/.dsync/ is written by dsync alone, and never through a link: a state folder that is a
// link, or a link planted at the temp name of state.json, must not carry a write outside DIR.
import { describe, expect, test } from "bun:test";
import { lstatSync, mkdirSync, mkdtempSync, readdirSync, readFileSync, symlinkSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { openLocalCaches, readSyncState, writeSyncState } from "../../src/client/local-state.ts";
import { UnsafePathError } from "../../src/fs/directory-handle.ts";

const temp = () => mkdtempSync(join(tmpdir(), "dsync-state-"));
const STATE = { remote: "http://127.0.0.1:1", folder: "f" };

describe("the state folder is never written through a link", () => {
  test("a link planted at the state file's temp name is not written through, and state.json is a regular file", () => {
    const dir = temp();
    const victim = join(temp(), "victim.txt");
    writeFileSync(victim, "not yours\n");
    mkdirSync(join(dir, ".dsync"));
    symlinkSync(victim, join(dir, ".dsync", "state.json.tmp"));
    writeSyncState(dir, STATE);
    expect(readFileSync(victim, "utf8")).toBe("not yours\n");
    expect(lstatSync(join(dir, ".dsync", "state.json")).isFile()).toBe(true);
    expect(readSyncState(dir)).toEqual(STATE);
    writeSyncState(dir, { ...STATE, folder: "g" });
    expect(readSyncState(dir).folder).toBe("g");
    expect(readdirSync(join(dir, ".dsync")).filter((name) => name.startsWith("state.json.")).sort()).toEqual(["state.json.tmp"]);
  });

  test("a .dsync that is a link to another directory is refused, naming it, and nothing is written there", async () => {
    const dir = temp();
    const elsewhere = temp();
    symlinkSync(elsewhere, join(dir, ".dsync"));
    expect(() => writeSyncState(dir, STATE)).toThrow(UnsafePathError);
    expect(() => writeSyncState(dir, STATE)).toThrow(join(dir, ".dsync"));
    await expect(openLocalCaches(dir)).rejects.toThrow(UnsafePathError);
    expect(() => readSyncState(dir)).toThrow(UnsafePathError);
    expect(readdirSync(elsewhere)).toEqual([]);
  });

  test("a state.json that is a link is not read through", () => {
    const dir = temp();
    const elsewhere = join(temp(), "state.json");
    writeFileSync(elsewhere, JSON.stringify(STATE));
    mkdirSync(join(dir, ".dsync"));
    symlinkSync(elsewhere, join(dir, ".dsync", "state.json"));
    expect(() => readSyncState(dir)).toThrow(UnsafePathError);
  });
});

describe("held-back paths", () => {
  test("are read back as written, and a malformed record is dropped (the paths are then local edits, as before)", () => {
    const dir = temp();
    const root = "ab".repeat(32);
    writeSyncState(dir, { ...STATE, heldBack: { root, paths: ["d/a.txt", "e"] } });
    expect(readSyncState(dir).heldBack).toEqual({ root, paths: ["d/a.txt", "e"] });
    for (const heldBack of [{ root: "not hex", paths: ["d"] }, { root, paths: "d" }, { root, paths: [] }, { root, paths: [1, ""] }, null]) {
      writeFileSync(join(dir, ".dsync", "state.json"), JSON.stringify({ ...STATE, heldBack }));
      expect(readSyncState(dir)).toEqual(STATE);
    }
  });
});
