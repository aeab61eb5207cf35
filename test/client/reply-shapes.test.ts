// The shape checks of node replies: what a client accepts, and what it names as malformed.
import { describe, expect, test } from "bun:test";
import { commitReply, folderListReply, folderReply, MalformedReplyError, statusReply, versionListReply, versionReply } from "../../src/client/reply-shapes.ts";

const id = "ab".repeat(32);
const folder = { name: "notes", head: id, root: id, mode: "eventual", keepVersions: null, keepDays: 3 };
const version = { id, folder: "notes", root: id, parents: [id], author: "me", time: "2026-01-01T00:00:00.000Z", message: "m", origin: "push", files: 1, bytes: 2 };
const entry = { kind: "file", id, mode: 0o644, size: 1, mtimeMs: 0, target: null };
const commit = { version: id, pushed: id, parent: null, mergedWith: null, root: id, conflicts: [{ path: "a", kind: "both-modified", winner: "theirs", kept: entry, losers: [entry, null], copies: ["a.sync-conflict"] }] };
const status = {
  node: "n1",
  peers: [{ address: "http://x", node: null, reachable: null, lastContactMs: null, lastError: null }],
  folders: [{ name: "notes", mode: "eventual", head: null, vector: {}, peers: [{ peer: "http://x", node: "n2", head: id, state: "behind", behindWrites: 1, aheadWrites: 0 }] }],
  replication: null,
};

function problem(run: () => unknown): string | null {
  try {
    run();
    return null;
  } catch (error) {
    expect(error).toBeInstanceOf(MalformedReplyError);
    return (error as Error).message;
  }
}

describe("reply shapes", () => {
  test("well-formed replies pass unchanged", () => {
    expect(folderListReply({ folders: [folder] }) as unknown).toEqual([folder]);
    expect(folderReply({ name: "x", head: null, mode: "eventual" })).toEqual({ name: "x", head: null, mode: "eventual" } as never);
    expect(versionListReply({ versions: [version] }) as unknown).toEqual([version]);
    expect(versionReply({ id, root: id, parents: [] })).toEqual({ id, root: id, parents: [] } as never);
    expect(commitReply(commit) as unknown).toEqual(commit);
    expect(statusReply(status)).toEqual(status as never);
    expect(statusReply({ ...status, foldersTotal: 1500 }).foldersTotal).toBe(1500);
  });

  test("each malformed field is named", () => {
    const cases: [string, () => unknown, string][] = [
      ["folders not a list", () => folderListReply({ folders: {} }), "folders is not a list"],
      ["a folder not an object", () => folderListReply({ folders: [7] }), "folders[0] is not an object"],
      ["head a number", () => folderListReply({ folders: [{ ...folder, head: 5 }] }), "folders[0].head"],
      ["name missing", () => folderListReply({ folders: [{ ...folder, name: undefined }] }), "folders[0].name"],
      ["root not an id", () => folderReply({ ...folder, root: "zz" }), "the folder.root"],
      ["parents not ids", () => versionListReply({ versions: [{ ...version, parents: ["x"] }] }), "versions[0].parents"],
      ["files negative", () => versionListReply({ versions: [{ ...version, files: -1 }] }), "versions[0].files"],
      ["message an object", () => versionListReply({ versions: [{ ...version, message: {} }] }), "versions[0].message"],
      ["version without root", () => versionReply({ id, parents: [] }), "the version.root"],
      ["commit version not an id", () => commitReply({ ...commit, version: 1 }), "the commit.version"],
      ["conflict path a number", () => commitReply({ ...commit, conflicts: [{ ...commit.conflicts[0], path: 3 }] }), "conflicts[0].path"],
      ["loser id not an id", () => commitReply({ ...commit, conflicts: [{ ...commit.conflicts[0], losers: [{ kind: "file", id: 9 }] }] }), "conflicts[0].losers"],
      ["status node an object", () => statusReply({ ...status, node: {} }), "the status.node"],
      ["status foldersTotal a text", () => statusReply({ ...status, foldersTotal: "many" }), "the status.foldersTotal"],
      ["peer error a number", () => statusReply({ ...status, peers: [{ ...status.peers[0], lastError: 4 }] }), "peers[0].lastError"],
      ["folder peer counts text", () => statusReply({ ...status, folders: [{ ...status.folders[0], peers: [{ ...status.folders[0]!.peers[0], behindWrites: "1" }] }] }), "folders[0].peers[0].behindWrites"],
      ["not an object at all", () => statusReply(null), "the status is not an object"],
    ];
    for (const [what, run, expected] of cases) expect({ what, problem: problem(run)?.includes(expected) }).toEqual({ what, problem: true });
  });
});
