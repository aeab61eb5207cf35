// A peer's folder list passes the folder name rule: a folder whose name no node accepts (left by
// an older version, or sent by a hostile peer) is left out of the listing, so it is never asked
// for by name and never fails the rest; a node id that breaks its rule fails the listing. A
// peer's error reason is bounded before it reaches the status and terminals.
import { afterEach, expect, test } from "bun:test";
import { HttpPeerTransport, PEER_ERROR_CHARS_MAX } from "../../src/replication/http-transport.ts";

let stop: (() => void) | undefined;
afterEach(() => stop?.());

function fakePeer(listing: unknown, status = 200): string {
  const server = Bun.serve({ hostname: "127.0.0.1", port: 0, fetch: () => Response.json(listing, { status }) });
  stop = () => server.stop(true);
  return `http://127.0.0.1:${server.port}`;
}

const head = "ab".repeat(32);

test("folders with bad names are left out of a peer's listing; the good ones stay", async () => {
  const bad = ["../../etc", "a/b", "\x1b[2J", "a\0b", "\u202eevil", "", ".."];
  const peer = fakePeer({ node: "peer-1", folders: [...bad, "good"].map((name) => ({ name, mode: "eventual", head, vector: {} })) });
  const listing = await new HttpPeerTransport({ clusterToken: "cluster-token-for-tests" }).listFolders(peer);
  expect(listing.folders.map((folder) => folder.name)).toEqual(["good"]);
});

test("a listing whose node id breaks the rule is malformed", async () => {
  const peer = fakePeer({ node: "\x1b[2Jx", folders: [] });
  const error = await new HttpPeerTransport({ clusterToken: "cluster-token-for-tests" }).listFolders(peer).catch((e) => e as Error);
  expect(error).toBeInstanceOf(Error);
  expect((error as Error).message).toContain("malformed folder list");
});

test("a peer's error reason is kept to one bounded sentence", async () => {
  const peer = fakePeer({ error: `\x1b[2J${"x".repeat(1_000_000)}` }, 400);
  const error = (await new HttpPeerTransport({ clusterToken: "cluster-token-for-tests" }).listFolders(peer).catch((e) => e)) as Error;
  expect(error.message).toContain("answered 400");
  expect(error.message).toContain("more characters)");
  expect(error.message.length).toBeLessThan(PEER_ERROR_CHARS_MAX + 200);
});
