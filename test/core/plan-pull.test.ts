import { describe, expect, test } from "bun:test";
import { blake3 } from "../../src/core/blake3.ts";
import { idEquals, type ObjectId } from "../../src/core/id.ts";
import type { TreeEntry } from "../../src/core/objects.ts";
import { changedAt, planPath, planPull, type PullAction, type RemoteChange } from "../../src/core/plan-pull.ts";

// Entries stand for themselves: the planner reads names, kinds, modes, ids and targets only, so
// ids here are hashes of labels, not of real nodes.
const idOf = (label: string): ObjectId => blake3(new TextEncoder().encode(label));
const MTIME = 1_700_000_000_000;

type State = "absent" | "A" | "B" | "C" | "A+x" | "A@9" | "dirX" | "dirY" | "dirX+x" | "link" | "link2";
/** A file's content is A, B or C; "A+x" is A made executable; "A@9" is A touched (mtime only). dirX/dirY differ below; "dirX+x" is dirX with another mode. */
function entry(state: State, name = "p"): TreeEntry | null {
  switch (state) {
    case "absent":
      return null;
    case "A":
    case "B":
    case "C":
      return { name, kind: "file", mode: 0o644, mtimeMs: MTIME, sizeBytes: 1, id: idOf(state), target: null };
    case "A+x":
      return { name, kind: "file", mode: 0o755, mtimeMs: MTIME, sizeBytes: 1, id: idOf("A"), target: null };
    case "A@9":
      return { name, kind: "file", mode: 0o644, mtimeMs: MTIME + 9, sizeBytes: 1, id: idOf("A"), target: null };
    case "dirX":
      return { name, kind: "dir", mode: 0o755, mtimeMs: MTIME, sizeBytes: 0, id: idOf("X"), target: null };
    case "dirX+x":
      return { name, kind: "dir", mode: 0o700, mtimeMs: MTIME, sizeBytes: 0, id: idOf("X"), target: null };
    case "dirY":
      return { name, kind: "dir", mode: 0o755, mtimeMs: MTIME, sizeBytes: 0, id: idOf("Y"), target: null };
    case "link":
      return { name, kind: "symlink", mode: 0o777, mtimeMs: MTIME, sizeBytes: 0, id: null, target: "t" };
    case "link2":
      return { name, kind: "symlink", mode: 0o777, mtimeMs: MTIME, sizeBytes: 0, id: null, target: "u" };
  }
}

/** Where the plan descends: which sides hold a directory below the path (b, l, r), or "-" for none. */
type Below = "-" | string;
function belowOf(planned: ReturnType<typeof planPath>): Below {
  if (!planned.below) return "-";
  return [planned.below.base ? "b" : "", planned.below.local ? "l" : "", planned.below.remote ? "r" : ""].join("") || "none";
}

// [description, base, local, remote, action, remote change, below]
const table: [string, State, State, State, PullAction, RemoteChange | null, Below][] = [
  // the node changed nothing: whatever the directory did stays
  ["unchanged everywhere", "A", "A", "A", "keep", null, "-"],
  ["edited here only", "A", "B", "A", "keep", null, "-"],
  ["deleted here only", "A", "absent", "A", "keep", null, "-"],
  ["added here only", "absent", "B", "absent", "keep", null, "-"],
  ["touched on the node only (mtime): no change", "A", "A", "A@9", "keep", null, "-"],
  ["a directory changed below on the node: descend", "dirX", "dirX", "dirY", "descend", null, "blr"],
  ["a directory changed below here only", "dirX", "dirY", "dirX", "keep", null, "-"],
  ["a directory changed here, and below on the node", "dirX", "dirY", "dirY", "descend", null, "blr"],

  // the node changed it, the directory did not: applied
  ["edited on the node", "A", "A", "B", "replace", "modified", "-"],
  ["made executable on the node", "A", "A", "A+x", "replace", "modified", "-"],
  ["deleted on the node", "A", "A", "absent", "delete", "removed", "-"],
  ["added on the node", "absent", "absent", "B", "write", "added", "-"],
  ["a file became a directory on the node", "A", "A", "dirY", "replace", "typeChanged", "r"],
  ["a directory became a file on the node", "dirX", "dirX", "B", "replace", "typeChanged", "-"],
  ["a directory became a link on the node", "dirX", "dirX", "link", "replace", "typeChanged", "-"],
  ["a link retargeted on the node", "link", "link", "link2", "replace", "modified", "-"],
  ["a directory deleted on the node: emptied below, then removed", "dirX", "dirX", "absent", "delete", "removed", "bl"],
  ["a directory added on the node", "absent", "absent", "dirY", "write", "added", "r"],
  ["a directory's mode changed on the node (nothing below)", "dirX", "dirX", "dirX+x", "descend", "modified", "-"],

  // the directory already has the node's entry
  ["the same edit on both sides", "A", "B", "B", "keep", "modified", "-"],
  ["the same addition on both sides", "absent", "B", "B", "keep", "added", "-"],
  ["the same deletion on both sides: still checked on disk", "A", "absent", "absent", "delete", "removed", "-"],
  ["the same link on both sides", "A", "link", "link", "keep", "typeChanged", "-"],
  ["the same directory on both sides", "A", "dirY", "dirY", "keep", "typeChanged", "lr"],

  // both changed it: the local content is never lost
  ["edited differently on both sides", "A", "B", "C", "conflict-copy", "modified", "-"],
  ["added differently on both sides", "absent", "B", "C", "conflict-copy", "added", "-"],
  ["added on the node, a directory here", "absent", "dirX", "B", "conflict-copy", "added", "-"],
  ["edited here, made executable on the node", "A", "B", "A+x", "conflict-copy", "modified", "-"],
  ["edited here, deleted on the node: kept", "A", "B", "absent", "keep-changed", "removed", "-"],
  ["made a link here, deleted on the node: kept", "A", "link", "absent", "keep-changed", "removed", "-"],
  ["made a directory here, file edited on the node", "A", "dirX", "B", "conflict-copy", "modified", "-"],
  ["deleted here, edited on the node: written back", "A", "absent", "B", "write", "modified", "-"],
  ["deleted here, a directory's mode changed on the node", "dirX", "absent", "dirX+x", "write", "modified", "-"],
  ["deleted here, a directory changed below on the node: what changed is written", "dirX", "absent", "dirY", "descend", null, "br"],
  ["a directory made a file here, deleted below on the node", "dirX", "A", "dirY", "descend" as PullAction, null, "br"],
  ["a directory's mode changed here, deleted on the node: kept, emptied below", "dirX", "dirX+x", "absent", "keep-changed", "removed", "bl"],
  ["a directory here and there, both with other modes", "dirX", "dirX+x", "dirY", "descend", null, "blr"],
  ["a file here where the node made a directory", "absent", "A", "dirY", "conflict-copy", "added", "r"],
  ["a directory here where the node made a directory", "absent", "dirX", "dirY", "descend", "added", "lr"],
];

describe("planPull: the decision at one path", () => {
  for (const [description, base, local, remote, action, remoteChange, below] of table) {
    test(`${description}: ${base} / ${local} / ${remote} -> ${action}`, () => {
      const planned = planPath("p", entry(base), entry(local), entry(remote));
      expect(planned.action).toBe(action);
      expect(planned.remoteChange).toBe(remoteChange);
      expect(belowOf(planned)).toBe(below);
    });
  }

  test("every path not read here is held back wherever the node changed it, and only there", () => {
    const holdsBack = () => true;
    for (const [, base, local, remote, , remoteChange] of table) {
      const planned = planPath("p", entry(base), entry(local), entry(remote), { holdsBack });
      if (remoteChange === null) expect(planned.action === "keep" || planned.action === "descend").toBe(true);
      else expect(planned.action).toBe("hold-back");
    }
  });

  test("a held-back path's directory is still descended into, so the changes below are counted", () => {
    const planned = planPath("p", entry("dirX"), entry("dirX"), entry("B"), { holdsBack: () => true });
    expect(planned.action).toBe("hold-back");
    expect(belowOf(planned)).toBe("bl");
    const inside = planPath("p", entry("dirX"), entry("dirX"), entry("dirY"), { heldBack: true });
    expect(inside.action).toBe("hold-back");
  });

  test("reserved names are neither written nor removed, and nothing below them is planned", () => {
    const reserved = (name: string) => name === ".dsync";
    for (const [base, local, remote] of [["absent", "absent", "dirY"], ["dirX", "dirX", "absent"], ["A", "A", "B"]] as State[][]) {
      const planned = planPath(".dsync", entry(base!, ".dsync"), entry(local!, ".dsync"), entry(remote!, ".dsync"), { reserved });
      expect(planned.action).toBe("reserved");
      expect(planned.below).toBeNull();
    }
    // Unchanged on the node: nothing to do at all.
    expect(planPath(".dsync", entry("A"), entry("B"), entry("A"), { reserved }).action).toBe("keep");
  });
});

describe("planPull: every combination keeps what the directory did", () => {
  const states: State[] = ["absent", "A", "B", "C", "A+x", "A@9", "dirX", "dirY", "dirX+x", "link", "link2"];
  const combos: [State, State, State][] = [];
  for (const b of states) for (const l of states) for (const r of states) combos.push([b, l, r]);

  test(`${combos.length} combinations: nothing changed here is replaced or removed, nothing the node did not change is touched`, () => {
    for (const [b, l, r] of combos) {
      const planned = planPath("p", entry(b), entry(l), entry(r));
      const where = `${b} / ${l} / ${r}: ${planned.action}`;
      const localChanged = changedAt(entry(b), entry(l));
      // Only base's own entry is ever replaced or deleted without a conflict copy.
      if (planned.action === "replace") expect({ where, localChanged }).toEqual({ where, localChanged: false });
      if (planned.action === "delete") expect({ where, local: l === "absent" || !localChanged }).toEqual({ where, local: true });
      // Changed here, changed on the node, different: the local entry is moved aside or kept.
      if (localChanged && entry(l) !== null && planned.remoteChange !== null && planned.action !== "keep" && planned.action !== "descend") {
        expect({ where, ok: planned.action === "conflict-copy" || planned.action === "keep-changed" }).toEqual({ where, ok: true });
      }
      // The node did not change the path itself: at most a descent below it.
      if (planned.remoteChange === null) expect({ where, ok: planned.action === "keep" || planned.action === "descend" }).toEqual({ where, ok: true });
      // Nothing to write where the directory already has exactly the node's content.
      if (entry(l) !== null && entry(r) !== null && entry(l)!.kind !== "dir" && !changedAt(entry(l), entry(r))) {
        expect({ where, ok: planned.action === "keep" || planned.action === "hold-back" }).toEqual({ where, ok: true });
      }
      // Writes happen only where the node has an entry; removals only where it has none.
      if (["write", "replace", "conflict-copy"].includes(planned.action)) expect(entry(r)).not.toBeNull();
      if (planned.action === "delete" || planned.action === "keep-changed") expect(entry(r)).toBeNull();
      // Below: only where the node changed something below a directory on some side.
      if (planned.below?.remote) expect(idEquals(planned.below.remote, entry(r)!.id!)).toBe(true);
    }
  });
});

describe("planPull over one directory", () => {
  test("names from the three sides merge in tree order, each once", () => {
    const at = (state: State, name: string) => entry(state, name)!;
    const plan = planPull(
      [at("A", "a"), at("A", "b"), at("dirX", "d")],
      [at("A", "a"), at("B", "c"), at("dirX", "d")],
      [at("B", "a"), at("A", "b"), at("C", "c"), at("dirY", "d"), at("A", "e")],
    );
    expect(plan.map((p) => [p.name, p.action])).toEqual([
      ["a", "replace"],
      ["b", "keep"], // deleted here, unchanged on the node
      ["c", "conflict-copy"],
      ["d", "descend"],
      ["e", "write"],
    ]);
  });

  test("names order as UTF-8 bytes, as trees hold them", () => {
    const at = (name: string) => entry("A", name)!;
    const plan = planPull([], [at("Z"), at("é")], [at("a"), at("😀")]);
    expect(plan.map((p) => p.name)).toEqual(["Z", "a", "é", "😀"]);
  });
});
