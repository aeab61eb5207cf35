// What the CLI prints never carries a raw control character, bidirectional override or lone
// surrogate from a name, a message or a node's reply: real dsync processes against a real node
// whose data holds a hostile folder name, a real push with a hostile file name, and a fake node
// that answers with hostile text. --json output stays exact.
import { expect, test } from "bun:test";
import { cpSync, writeFileSync } from "node:fs";
import { join } from "node:path";
import { openNode } from "../../src/assemble.ts";
import { runCli, sharedNode, startNode, tempDir } from "../helpers/processes.ts";
import { writeTree } from "../helpers/trees.ts";

const node = sharedNode();

const HOSTILE = "\x1b[2J\x1b]0;pwned\x07\r\u202eevil\x9b\0\n";

/** The characters a terminal acts on or reorders (newline and tab allowed: they end lines and separate columns). */
const UNSAFE = /[\x00-\x08\x0b-\x1f\x7f-\x9f\u061c\u200e\u200f\u2028-\u202e\u2066-\u2069]|[\ud800-\udbff](?![\udc00-\udfff])|(?<![\ud800-\udbff])[\udc00-\udfff]/;

function expectInert(output: string, label: string): void {
  const found = UNSAFE.exec(output);
  expect({ label, unsafe: found ? JSON.stringify(found[0]) : null, output: found ? output : "" }).toEqual({ label, unsafe: null, output: "" });
}

/** A fake node that answers every client route with the hostile text it is given. */
function hostileNode(text: string) {
  const version = "ab".repeat(32);
  const server = Bun.serve({
    hostname: "127.0.0.1",
    port: 0,
    fetch(request) {
      // Marked as a node marks its answers, so the client takes it for one (wire/node-header.ts).
      const answer = respond(request);
      answer.headers.set("x-dsync-node", "fake0000fake0000");
      return answer;
    },
  });
  function respond(request: Request): Response {
    const path = new URL(request.url).pathname;
    if (path === "/v1/folders") {
      return Response.json({ folders: [{ name: text, head: version, mode: text }, { name: "fine", head: null, mode: "eventual" }] });
    }
    if (path === "/v1/folders/evil") return Response.json({ name: "evil", head: version, mode: "eventual" });
    if (path === "/v1/folders/evil/versions") {
      const item = { id: version, folder: text, parents: [version, text], author: text, time: text, origin: text, files: 1, bytes: 1, message: text };
      return Response.json({ versions: [item] });
    }
    if (path === "/v1/status") {
      return Response.json({
        node: text,
        peers: [{ address: text, node: text, reachable: false, lastContactMs: null, lastError: text }],
        folders: [{ name: text, mode: text, head: version, vector: {}, peers: [{ peer: text, node: text, head: text, state: "behind", behindWrites: 1, aheadWrites: 0 }] }],
        replication: null,
      });
    }
    if (path === "/v1/folders/huge-error") return new Response(`{"error": "${"x".repeat(20_000_000)}"}`, { status: 400, statusText: "Bad Request" });
    if (path === "/v1/folders/wrong-types") return Response.json({ name: "wrong-types", head: 5, mode: [] });
    // A long reason, under the bound on what is read of an error reply, over what is printed.
    return Response.json({ error: `${text} ${"x".repeat(50_000)}` }, { status: 400 });
  }
  return { url: `http://127.0.0.1:${server.port}`, stop: () => server.stop(true) };
}

test("dsync ls on a node whose data holds a bad folder name (left by an older version): listed, escaped; --json exact", async () => {
  const dataDir = join(tempDir(), "data");
  const old = await openNode({ dataDir });
  await old.metadata.ensureFolder(HOSTILE, 0);
  await old.close();
  const planted = await startNode({ dataDir });
  try {
    const listing = await runCli(["ls", "--remote", planted.url]);
    expect(listing.code).toBe(0);
    expectInert(listing.stdout, "ls");
    expect(listing.stdout).toContain("\\x1b[2J\\x1b]0;pwned\\x07\\r\\u202eevil\\x9b\\x00\\n");
    const json = await runCli(["ls", "--remote", planted.url, "--json"]);
    expect(json.code).toBe(0);
    expectInert(json.stdout, "ls --json");
    expect(json.json().folders.map((folder: { name: string }) => folder.name)).toEqual([HOSTILE]);
    // By name it is refused (400), with the name escaped in the message.
    const byName = await runCli(["log", "--remote", planted.url, "--folder", HOSTILE.replace("\0", "")]); // argv holds no NUL
    expect(byName.code).toBe(2);
    expectInert(byName.stderr, "log --folder <bad>");
  } finally {
    await planted.stop();
  }
});

test("a hostile node's folder list, versions, status and error text are printed escaped, errors bounded", async () => {
  const fake = hostileNode(HOSTILE);
  try {
    const ls = await runCli(["ls", "--remote", fake.url]);
    expectInert(ls.stdout + ls.stderr, "ls");
    const log = await runCli(["log", "--remote", fake.url, "--folder", "evil"]);
    expectInert(log.stdout + log.stderr, "log");
    const status = await runCli(["status", "--remote", fake.url]);
    expectInert(status.stdout + status.stderr, "status");
    for (const args of [["ls", "--json"], ["log", "--folder", "evil", "--json"], ["status", "--json"]]) {
      const json = await runCli([...args, "--remote", fake.url]);
      expectInert(json.stdout + json.stderr, args.join(" "));
    }
    const refused = await runCli(["pull", join(tempDir(), "copy"), "--remote", fake.url, "--folder", "other"]);
    expect(refused.code).toBe(1);
    expectInert(refused.stderr, "pull error");
    expect(refused.stderr).toContain("\\x1b[2J");
    expect(refused.stderr.length).toBeLessThan(5000);
    expect(refused.stderr).toContain("more characters)");
    // An error reply past the bound is not read: the reason is the status.
    const huge = await runCli(["log", "--remote", fake.url, "--folder", "huge-error"]);
    expect(huge.code).toBe(1);
    expect(huge.stderr).toBe(`dsync: the node at ${fake.url} rejected the request (400): Bad Request\n`);
    // Fields of the wrong type are a malformed reply, named, not a crash halfway through.
    const wrong = await runCli(["log", "--remote", fake.url, "--folder", "wrong-types"]);
    expect(wrong.code).toBe(1);
    expect(wrong.stderr).toContain("malformed reply");
    expect(wrong.stderr).toContain(".head");
  } finally {
    fake.stop();
  }
});

test("a file name with control characters: push's conflict lines and diff's lines are escaped", async () => {
  const name = "\x1b[2J\r\u202etxt.exe";
  const a = join(tempDir(), "a");
  writeTree(a, { [name]: "one\n", "plain.txt": "p\n" });
  const first = await runCli(["push", a, "--remote", node().url, "--folder", "hostile-names"]);
  expect(first.code).toBe(0);
  const b = join(tempDir(), "b");
  cpSync(a, b, { recursive: true });
  writeFileSync(join(a, name), "two\n");
  expect((await runCli(["push", a])).code).toBe(0);
  writeFileSync(join(b, name), "three\n");
  const stale = await runCli(["push", b, "--message", "msg \x1b[2J\x9b\r\u202e\nsecond line"]); // (argv holds no NUL)
  expect(stale.code).toBe(0);
  expect(stale.stdout).toContain("conflict at \\x1b[2J\\r\\u202etxt.exe");
  expectInert(stale.stdout + stale.stderr, "push with a conflict");

  const log = await runCli(["log", b]);
  expect(log.code).toBe(0);
  expect(log.stdout).toContain("msg \\x1b[2J");
  expectInert(log.stdout, "log");

  writeFileSync(join(b, "tab\tin name"), "t\n");
  const diff = await runCli(["diff", a, b]);
  expect(diff.code).toBe(1);
  expect(diff.stdout).toContain("\\x1b[2J\\r\\u202etxt.exe");
  // One path per line, whole: a tab in a name is escaped too (it is not a column separator here).
  expect(diff.stdout).toContain("A tab\\tin name\n");
  expectInert(diff.stdout + diff.stderr, "diff");

  const pulled = await runCli(["pull", a]);
  expectInert(pulled.stdout + pulled.stderr, "pull");
});

test("a listing of 100 000 folders and a log of 100 000 versions reach a pipe whole", async () => {
  const count = 100_000;
  const head = "cd".repeat(32);
  const folders = Array.from({ length: count }, (_, i) => ({ name: `folder-${i}`, head: null, mode: "eventual" }));
  const version = (i: number) => ({ id: i.toString(16).padStart(64, "0"), parents: [], author: "a", time: "t", origin: "push", files: 1, bytes: 1, message: `m${i}` });
  const versions = Array.from({ length: count }, (_, i) => version(i + 1));
  // Pages as the API serves them (docs/api.md, Paging): `limit` items from the cursor's position.
  const page = (url: URL, field: string, items: unknown[]) => {
    const from = Number(url.searchParams.get("cursor") ?? "0");
    const limit = Number(url.searchParams.get("limit") ?? "1000");
    const next = from + limit < items.length ? String(from + limit) : null;
    return new Response(JSON.stringify({ [field]: items.slice(from, from + limit), limit, next }), { headers: { "content-type": "application/json" } });
  };
  const server = Bun.serve({
    hostname: "127.0.0.1",
    port: 0,
    fetch(request) {
      const url = new URL(request.url);
      const path = url.pathname;
      if (path === "/v1/folders") return page(url, "folders", folders);
      if (path === "/v1/folders/big") return Response.json({ name: "big", head, mode: "eventual" });
      if (path === "/v1/folders/big/versions") return page(url, "versions", versions);
      return Response.json({ error: "no" }, { status: 404 });
    },
  });
  try {
    const url = `http://127.0.0.1:${server.port}`;
    const ls = await runCli(["ls", "--remote", url]);
    expect(ls.code).toBe(0);
    expect(ls.stdout.split("\n").length - 1).toBe(count);
    expect(ls.stdout.endsWith("folder-99999\t(empty)\teventual\n")).toBe(true);
    const log = await runCli(["log", "--remote", url, "--folder", "big"]);
    expect(log.code).toBe(0);
    expect(log.stdout.split("\n").length - 1).toBe(count);
    const json = await runCli(["ls", "--remote", url, "--json"]);
    expect(json.json().folders).toHaveLength(count);
  } finally {
    server.stop(true);
  }
}, 60_000);

test("a version message over the bound is refused before anything is sent", async () => {
  const dir = join(tempDir(), "long-message");
  writeTree(dir, { "a.txt": "a\n" });
  const message = "é".repeat(2049); // 4 098 bytes: under 4 096 characters, over 4 096 bytes
  const push = await runCli(["push", dir, "--remote", node().url, "--folder", "long-message", "--message", message]);
  expect(push.code).toBe(2);
  expect(push.stderr).toContain("--message takes at most 4096 bytes");
  const ls = await runCli(["ls", "--remote", node().url, "--json"]);
  expect(ls.json().folders.map((folder: { name: string }) => folder.name)).not.toContain("long-message");
  const restore = await runCli(["restore", "abcd", dir, "--remote", node().url, "--folder", "long-message", "--message", message]);
  expect(restore.code).toBe(2);
  // The node counts bytes too: a client that sends such a message anyway gets 400.
  const response = await fetch(`${node().url}/v1/folders/long-message/commit`, {
    method: "POST",
    headers: { "content-type": "application/json" },
    body: JSON.stringify({ root: "ab".repeat(32), parent: null, message }),
  });
  expect(response.status).toBe(400);
  expect(((await response.json()) as { error: string }).error).toContain("message must be at most 4096 bytes");
});

test("a bad --version is refused by the client before it is sent (exit 2)", async () => {
  for (const args of [["restore", "\x1b[2J"], ["restore", "xyz"], ["pull", join(tempDir(), "v"), "--version", "zz\u202e"]]) {
    const result = await runCli([...args, "--remote", node().url, "--folder", "hostile-names"]);
    expect({ args, code: result.code }).toEqual({ args, code: 2 });
    expect(result.stderr).toContain("4 to 64 hex digits");
    expectInert(result.stderr, args.join(" "));
  }
});

test("a reply past the client's bound is refused with a clear message, without being read whole", async () => {
  const chunk = new TextEncoder().encode(" ".repeat(1024 * 1024));
  let sentBytes = 0;
  const server = Bun.serve({
    hostname: "127.0.0.1",
    port: 0,
    fetch() {
      // Streamed with no declared length: 1 GiB would follow if the client kept reading.
      let left = 1024;
      const body = new ReadableStream<Uint8Array>({
        pull(controller) {
          if (left-- === 0) return controller.close();
          sentBytes += chunk.length;
          controller.enqueue(chunk);
        },
      });
      return new Response(body, { headers: { "content-type": "application/json" } });
    },
  });
  try {
    const ls = await runCli(["ls", "--remote", `http://127.0.0.1:${server.port}`]);
    expect(ls.code).toBe(1);
    expect(ls.stderr).toMatch(/^dsync: the node's reply to GET \/v1\/folders exceeded \d+ bytes; it was not read/);
    expect(sentBytes).toBeLessThan(512 * 1024 * 1024);
  } finally {
    server.stop(true);
  }
}, 60_000);
