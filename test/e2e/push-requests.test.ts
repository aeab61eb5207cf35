// How many "which of these do you lack?" requests a push makes, counted at a proxy in front of a
// real node: the plan asks one per level of the tree (a level's nodes and the chunks found
// above them together), so an edit deep in a tree costs O(depth) requests however many siblings
// each level holds, and an unchanged folder none.
import { afterAll, beforeAll, describe, expect, test } from "bun:test";
import { writeFileSync } from "node:fs";
import { join } from "node:path";
import { runCli, sharedNode, tempDir } from "../helpers/processes.ts";
import { writeTree, type DiskTree } from "../helpers/trees.ts";

const node = sharedNode();

let missingRequests = 0;
let proxy: ReturnType<typeof Bun.serve>;

beforeAll(() => {
  proxy = Bun.serve({
    hostname: "127.0.0.1",
    port: 0,
    async fetch(request) {
      const url = new URL(request.url);
      if (request.method === "POST" && url.pathname === "/v1/objects/missing") missingRequests++;
      const body = request.method === "GET" || request.method === "HEAD" ? undefined : await request.arrayBuffer();
      return fetch(node().url + url.pathname + url.search, { method: request.method, headers: request.headers, body, decompress: false } as RequestInit);
    },
  });
});

afterAll(() => {
  proxy?.stop(true);
});

/** `depth` nested directories l1/l2/..., each level with `siblings` files beside the next directory; deep.txt at the bottom. */
function nestedTree(depth: number, siblings: number, level = 0): DiskTree {
  const here: DiskTree = level === depth ? { "deep.txt": "the deepest file\n" } : { [`l${level + 1}`]: nestedTree(depth, siblings, level + 1) };
  for (let i = 0; i < siblings; i++) here[`f${i}.txt`] = `level ${level} file ${i}\n`;
  return here;
}

/** Pushes `dir` through the proxy and returns how many missing requests the push made. */
async function countedPush(dir: string, folder: string): Promise<number> {
  const before = missingRequests;
  const result = await runCli(["push", dir, "--remote", `http://127.0.0.1:${proxy.port}`, "--folder", folder]);
  expect(result.stderr).toBe("");
  expect(result.code).toBe(0);
  return missingRequests - before;
}

describe("push: requests to find what the node lacks", () => {
  for (const siblings of [3, 60]) {
    test(`edits 4 directories deep and on the way down ask once per level (root, 4 directories, the file's chunk) with ${siblings} files per level`, async () => {
      const dir = join(tempDir(), "tree");
      writeTree(dir, nestedTree(4, siblings));
      const folder = `deep-${siblings}`;
      await countedPush(dir, folder);
      // Content no other test stored: a chunk the node already holds is not sent. A small file
      // is named by its one chunk, so the chunk is asked about with the level of its directory's
      // nodes' children (there is no file node level between them).
      writeFileSync(join(dir, "l1/l2/l3/l4/deep.txt"), `the deepest file, edited beside ${siblings} others\n`);
      // One more on the way down: its chunk is asked about with the next level's nodes.
      writeFileSync(join(dir, "l1/f0.txt"), `level 1 file 0, edited beside ${siblings} others\n`);
      expect(await countedPush(dir, folder)).toBe(1 + 4 + 1);
      // Nothing changed since: nothing to ask.
      expect(await countedPush(dir, folder)).toBe(0);
    });
  }
});
