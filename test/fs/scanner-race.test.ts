// The scanner against a racing local process that swaps what it is about to read: a file for a
// link out of the root or a FIFO, a directory for a link to an outside directory. A scan reads
// only what is inside the root (never bytes reached through a link), and never blocks.
import { afterAll, expect, test } from "bun:test";
import { execFileSync } from "node:child_process";
import { mkdirSync, readFileSync, symlinkSync, writeFileSync } from "node:fs";
import { join } from "node:path";
import { scanDirectory, type ScanSink } from "../../src/fs/scanner.ts";
import { startPathSwapper } from "../helpers/path-swapper.ts";
import { cleanupTempDirs, tempDir } from "../helpers/processes.ts";

afterAll(cleanupTempDirs);

const SECRET = "SECRET-OUTSIDE-THE-ROOT";

test("files and directories swapped for links out of the root (or a FIFO) while scanned: no outside byte is read, no scan blocks", async () => {
  const outside = tempDir("dsync-outside-");
  writeFileSync(join(outside, "secret.txt"), `${SECRET}\n`);
  mkdirSync(join(outside, "dir"));
  for (let i = 0; i < 20; i++) writeFileSync(join(outside, "dir", `f${i}.txt`), `${SECRET} ${i}\n`);

  const root = tempDir();
  const pairs: [string, string][] = [];
  for (let i = 0; i < 8; i++) {
    writeFileSync(join(root, `file${i}.txt`), `inside ${i}\n`);
    symlinkSync(join(outside, "secret.txt"), join(root, `file${i}.link`));
    pairs.push([join(root, `file${i}.txt`), join(root, `file${i}.link`)]);
  }
  for (let i = 0; i < 4; i++) {
    mkdirSync(join(root, `dir${i}`));
    for (let j = 0; j < 20; j++) writeFileSync(join(root, `dir${i}`, `f${j}.txt`), `inside ${i} ${j}\n`);
    symlinkSync(join(outside, "dir"), join(root, `dir${i}.link`));
    pairs.push([join(root, `dir${i}`), join(root, `dir${i}.link`)]);
  }
  writeFileSync(join(root, "fifo-target.txt"), "inside\n");
  execFileSync("mkfifo", [join(root, "fifo-target.fifo")]);
  pairs.push([join(root, "fifo-target.txt"), join(root, "fifo-target.fifo")]);

  const seen: string[] = [];
  const sink: ScanSink = { chunk: (_id, bytes) => void seen.push(new TextDecoder().decode(bytes)), object: () => {} };
  const swapper = await startPathSwapper(4_000, pairs);
  let scans = 0;
  try {
    const endMs = Date.now() + 3_000;
    while (Date.now() < endMs) {
      // A scan that blocked on a FIFO would never resolve: each one is bounded.
      const scan = scanDirectory(root, { sink });
      const outcome = await Promise.race([scan.then(() => "done" as const), Bun.sleep(5_000).then(() => "blocked" as const)]);
      expect(outcome).toBe("done");
      scans++;
    }
  } finally {
    await swapper.stop();
  }
  expect(scans).toBeGreaterThan(10);
  expect(seen.filter((text) => text.includes(SECRET))).toEqual([]);
  expect(readFileSync(join(outside, "secret.txt"), "utf8")).toBe(`${SECRET}\n`);
}, 30_000);
