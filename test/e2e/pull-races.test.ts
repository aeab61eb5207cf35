// A pull against a user who keeps working while it runs: a file edited, or created, after the
// pull scanned the directory and before it writes or removes that path. The pull's decision was
// made on the scan; what is on disk when it acts must still be what the scan saw, or the local
// bytes are kept (moved to a conflict copy, or left in place) and reported, never replaced.
import { afterAll, expect, test } from "bun:test";
import { execFileSync } from "node:child_process";
import { lstatSync, readdirSync, readFileSync, writeFileSync } from "node:fs";
import { join } from "node:path";
import { idEquals, type ObjectId } from "../../src/core/id.ts";
import type { TreeEntry } from "../../src/core/objects.ts";
import { cleanupTempDirs, runCli, tempDir } from "../helpers/processes.ts";
import { RawObjects, rawObjectServer } from "../helpers/raw-object-server.ts";

afterAll(cleanupTempDirs);

const OLD_MS = 1_600_000_000_000;

/** Every regular file's content below dir (the state folder left out), by relative path. */
function contents(dir: string, rel = ""): Record<string, string> {
  const out: Record<string, string> = {};
  for (const name of readdirSync(join(dir, rel))) {
    const path = rel === "" ? name : `${rel}/${name}`;
    if (path === ".dsync") continue;
    const stats = lstatSync(join(dir, path));
    if (stats.isDirectory()) Object.assign(out, contents(dir, path));
    else if (stats.isFile()) out[path] = readFileSync(join(dir, path), "utf8");
  }
  return out;
}

test("files edited, and one created, while the pull downloads: every local edit is kept and reported", async () => {
  const objects = new RawObjects();
  const fileEntry = (name: string, text: string): { entry: TreeEntry; chunk: ObjectId } => {
    const bytes = new TextEncoder().encode(text);
    const chunk = objects.addBytes(bytes);
    const id = objects.add({ kind: "file", level: 0, sizeBytes: bytes.length, chunks: [{ id: chunk, lengthBytes: bytes.length }] });
    return { entry: { name, kind: "file", mode: 0o644, mtimeMs: OLD_MS, sizeBytes: bytes.length, id, target: null }, chunk };
  };
  const first = objects.add({ kind: "tree", level: 0, entries: [fileEntry("gone.txt", "bye\n").entry, fileEntry("notes.txt", "v1\n").entry] });
  const notes2 = fileEntry("notes.txt", "v2 from the node\n");
  const added = fileEntry("new.txt", "new from the node\n");
  const second = objects.add({ kind: "tree", level: 0, entries: [added.entry, notes2.entry] });

  const victim = join(tempDir(), "victim");
  let edited = false;
  const server = rawObjectServer(objects, first, "evil", {
    beforeDownload: (ids) => {
      // The second pull is downloading its new chunks: its scan and plan are done.
      if (edited || !ids.some((id) => idEquals(id, notes2.chunk))) return;
      edited = true;
      writeFileSync(join(victim, "notes.txt"), "edited here during the pull\n");
      writeFileSync(join(victim, "gone.txt"), "edited here too\n");
      writeFileSync(join(victim, "new.txt"), "made here during the pull\n");
    },
  });
  try {
    const firstPull = await runCli(["pull", victim, "--remote", server.url, "--folder", server.folder, "--json"]);
    expect(firstPull.code).toBe(0);
    server.setHead(second);
    const result = await runCli(["pull", victim, "--json"]);
    expect(edited).toBe(true);
    expect(result.code).toBe(0);
    const report = result.json();
    const kept = Object.values(contents(victim));
    for (const text of ["edited here during the pull\n", "edited here too\n", "made here during the pull\n"]) expect(kept).toContain(text);
    const reported = [...report.conflicts, ...report.skipped].map((c: { path: string }) => c.path);
    for (const path of ["notes.txt", "gone.txt", "new.txt"]) expect(reported).toContain(path);
  } finally {
    server.stop();
  }
});

test("a path that fits the 4096-byte limit but not PATH_MAX once under the directory is written, and the pull completes", async () => {
  const objects = new RawObjects();
  const bytes = new TextEncoder().encode("deep\n");
  const chunk = objects.addBytes(bytes);
  const fileId = objects.add({ kind: "file", level: 0, sizeBytes: bytes.length, chunks: [{ id: chunk, lengthBytes: bytes.length }] });
  let tree = objects.add({ kind: "tree", level: 0, entries: [{ name: "f".repeat(60), kind: "file", mode: 0o644, mtimeMs: OLD_MS, sizeBytes: bytes.length, id: fileId, target: null }] });
  const names = Array.from({ length: 16 }, (_, i) => `${String(i).padStart(2, "0")}${"d".repeat(248)}`);
  for (const name of [...names].reverse()) {
    tree = objects.add({ kind: "tree", level: 0, entries: [{ name, kind: "dir", mode: 0o755, mtimeMs: OLD_MS, sizeBytes: 0, id: tree, target: null }] });
  }
  const relative = [...names, "f".repeat(60)].join("/");
  const victim = join(tempDir(), "victim");
  expect(relative.length).toBeLessThanOrEqual(4096);
  expect(victim.length + 1 + relative.length).toBeGreaterThan(4096);
  const server = rawObjectServer(objects, tree);
  try {
    const result = await runCli(["pull", victim, "--remote", server.url, "--folder", server.folder, "--json"]);
    expect({ code: result.code, stderr: result.stderr }).toEqual({ code: 0, stderr: "" });
    expect(result.json().files_written).toBe(1);
    // Read back one component at a time (the whole path is too long for one call).
    const read = execFileSync("bash", ["-c", `cd ${JSON.stringify(victim)} && cd ${names.map((n) => JSON.stringify(n)).join(" && cd ")} && cat ${"f".repeat(60)}`]);
    expect(read.toString()).toBe("deep\n");
    // A second pull of the same version finds nothing to do.
    const again = await runCli(["pull", victim, "--json"]);
    expect({ code: again.code, stderr: again.stderr }).toEqual({ code: 0, stderr: "" });
    expect(again.json().files_written).toBe(0);
  } finally {
    server.stop();
  }
});
