import { expect, test } from "bun:test";
import type { ObjectId } from "../../src/core/id.ts";
import { parentsFirst } from "../../src/core/parents-first.ts";

const id = (n: number) => new Uint8Array(32).fill(n) as ObjectId;
const v = (n: number, ...parents: number[]) => ({ id: id(n), version: { parents: parents.map(id) }, n });

test("each version comes after its parents that are in the list; the rest keep the order given", () => {
  // 4 merges 2 and 3, both on 1; 9's parent is not in the list.
  const order = parentsFirst([v(4, 2, 3), v(9, 8), v(3, 1), v(2, 1), v(1)]).map((x) => x.n);
  expect(order).toEqual([1, 2, 3, 4, 9]);
  expect(parentsFirst([v(5), v(6), v(7)]).map((x) => x.n)).toEqual([5, 6, 7]);
});

test("a chain thousands deep is ordered without recursion", () => {
  const chain = Array.from({ length: 20_000 }, (_, i) => ({ id: new Uint8Array(32).map((_, b) => (b < 4 ? (i >> (8 * b)) & 255 : 0)) as ObjectId, parents: [] as ObjectId[] }));
  for (let i = 1; i < chain.length; i++) chain[i]!.parents.push(chain[i - 1]!.id);
  const versions = chain.map((c, i) => ({ id: c.id, version: { parents: c.parents }, i })).reverse();
  expect(parentsFirst(versions).map((x) => x.i)).toEqual(chain.map((_, i) => i));
});
