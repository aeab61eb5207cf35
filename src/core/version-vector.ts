// Version vectors: for each node, how many of its writes a version has seen.
//
// Every write made on node N (a push, a restore, or the merge of a push that arrived with a
// stale parent) is built on top of N's current head, so N's writes form a chain and the
// counter N gives its k-th write (its "dot", N:k) says that writes N:1..N:k-1 are all in the
// write's history. A version's vector is the join (pointwise maximum) of its parents' vectors,
// plus its own dot for a write. Two versions are then ordered exactly when one vector covers
// the other, and concurrent when neither does.
//
// Kept as a list sorted by node id (the form the version object stores); counters are ≥ 1,
// a node absent from the list has counter 0. Pure.
import { LIMITS } from "./limits.ts";
import { compareNames, type VersionVectorEntry } from "./objects.ts";

export type VersionVector = readonly VersionVectorEntry[];

export type VectorOrder = "equal" | "before" | "after" | "concurrent";

export const EMPTY_VECTOR: VersionVector = [];

export function counterOf(vector: VersionVector, node: string): number {
  for (const entry of vector) if (entry.node === node) return entry.counter;
  return 0;
}

/** The pointwise maximum. */
export function joinVectors(...vectors: VersionVector[]): VersionVectorEntry[] {
  const max = new Map<string, number>();
  for (const vector of vectors) {
    for (const { node, counter } of vector) if (counter > (max.get(node) ?? 0)) max.set(node, counter);
  }
  return [...max.entries()].map(([node, counter]) => ({ node, counter })).sort((a, b) => compareNames(a.node, b.node));
}

/** The vector with node's counter set to counter (which must not go backwards). */
export function withCounter(vector: VersionVector, node: string, counter: number): VersionVectorEntry[] {
  if (counter < counterOf(vector, node)) throw new Error(`version vector counter for ${node} would go back`);
  return joinVectors(vector, [{ node, counter }]);
}

/** How a relates to b: "before" means every write a has seen, b has seen too, and b has more. */
export function compareVectors(a: VersionVector, b: VersionVector): VectorOrder {
  let aAhead = false;
  let bAhead = false;
  for (const node of new Set([...a.map((e) => e.node), ...b.map((e) => e.node)])) {
    const x = counterOf(a, node);
    const y = counterOf(b, node);
    if (x > y) aAhead = true;
    if (y > x) bAhead = true;
  }
  if (aAhead && bAhead) return "concurrent";
  if (aAhead) return "after";
  if (bAhead) return "before";
  return "equal";
}

/** Whether `vector` has seen the write `node:counter`. */
export function coversDot(vector: VersionVector, node: string, counter: number): boolean {
  return counterOf(vector, node) >= counter;
}

/** How many writes `ahead` has seen that `behind` has not: how far behind `behind` is. */
export function writesMissing(behind: VersionVector, ahead: VersionVector): number {
  let missing = 0;
  for (const { node, counter } of ahead) missing += Math.max(0, counter - counterOf(behind, node));
  return missing;
}

/** A vector as a plain object, for JSON. */
export function vectorToRecord(vector: VersionVector): Record<string, number> {
  return Object.fromEntries(vector.map((e) => [e.node, e.counter]));
}

/** Parses the JSON form back; throws on anything but node → positive whole counter. */
export function vectorFromRecord(value: unknown): VersionVectorEntry[] {
  if (typeof value !== "object" || value === null || Array.isArray(value)) throw new Error("a version vector is an object of node: counter");
  const pairs = Object.entries(value);
  // Each version a peer's history walk meets is compared with the vector: a vector of 170 000
  // made names took a second of the node's time per request.
  if (pairs.length > LIMITS.versionVectorNodesMax) throw new Error(`a version vector names at most ${LIMITS.versionVectorNodesMax} nodes`);
  const entries: VersionVectorEntry[] = [];
  for (const [node, counter] of pairs) {
    if (node.length === 0 || node.length > 128) throw new Error("a version vector node id is 1 to 128 characters");
    if (typeof counter !== "number" || !Number.isSafeInteger(counter) || counter < 1) throw new Error(`version vector counter for ${node} must be a positive whole number`);
    entries.push({ node, counter });
  }
  return entries.sort((a, b) => compareNames(a.node, b.node));
}
