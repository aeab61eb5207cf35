// How serve reads its peers: --peers URL#sha256:... and --peers-file (one URL [sha256:...] a
// line, # comments), merged by URL; every mistake a usage error naming where it is.
import { afterAll, expect, test } from "bun:test";
import { writeFileSync } from "node:fs";
import { join } from "node:path";
import { mergePeers, parsePeerList, parsePeersFile, readPeersFile } from "../../cli/serve-tls.ts";
import { UsageError } from "../../src/client/sync-target.ts";
import { cleanupTempDirs, tempDir } from "../helpers/processes.ts";

afterAll(cleanupTempDirs);

const A = `sha256:${"a1".repeat(32)}`;
const B = `sha256:${"b2".repeat(32)}`;

test("--peers takes pins after #, in either case and with colons, and plain URLs", () => {
  expect(parsePeerList(`https://b:7700#${A}, http://c:7700/ ,https://d:7700#sha256:${"B2:".repeat(31)}B2`)).toEqual([
    { url: "https://b:7700", fingerprint: A },
    { url: "http://c:7700" },
    { url: "https://d:7700", fingerprint: B },
  ]);
  expect(() => parsePeerList(`http://b:7700#${A}`)).toThrow("plain http, so it has no certificate to pin");
  expect(() => parsePeerList("https://b:7700#sha256:123")).toThrow("is not a certificate fingerprint");
  expect(() => parsePeerList("https://b:7700?x=1")).toThrow("must be a plain base URL");
  expect(() => parsePeerList("ftp://b")).toThrow(UsageError);
});

test("--peers-file: one peer a line, comments and blank lines skipped, a mistake named by its line", () => {
  const text = `# the cluster\n\nhttps://b:7700 ${A}   # in the rack\nhttps://c:7700#${B}\n  https://d:7700\n`;
  expect(parsePeersFile(text, "peers.txt")).toEqual([
    { url: "https://b:7700", fingerprint: A },
    { url: "https://c:7700", fingerprint: B },
    { url: "https://d:7700" },
  ]);
  expect(() => parsePeersFile(`https://b:7700 ${A} extra\n`, "peers.txt")).toThrow("peers.txt line 1: expected URL [sha256:...]");
  expect(() => parsePeersFile(`\nhttps://b:7700#${A} ${B}\n`, "peers.txt")).toThrow("line 2");
  const path = join(tempDir(), "peers");
  writeFileSync(path, `https://b:7700 ${A}\n`);
  expect(readPeersFile(path)).toEqual([{ url: "https://b:7700", fingerprint: A }]);
  expect(() => readPeersFile(join(tempDir(), "missing"))).toThrow("no such file");
});

test("the same peer in both places is one peer; two different pins for it are refused", () => {
  expect(mergePeers([[{ url: "https://b:7700", fingerprint: A }], [{ url: "https://b:7700" }]])).toEqual([{ url: "https://b:7700", fingerprint: A }]);
  expect(() => mergePeers([[{ url: "https://b:7700", fingerprint: A }], [{ url: "https://b:7700", fingerprint: B }]])).toThrow("pinned to two fingerprints");
});
