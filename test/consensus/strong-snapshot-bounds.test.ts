// A snapshot of the strong folders as large as the state machine allows (SNAPSHOT_FOLDERS_MAX)
// is one every member can decode: the decoder's own bound on msgpack values (a million by
// default, six per folder) once refused every snapshot past about 166,000 folders, and a
// follower that fell behind such a log could never catch up. Past the bounds it is refused.
import { describe, expect, test } from "bun:test";
import type { ObjectId } from "../../src/core/id.ts";
import { decodeSnapshotState, encodeSnapshotState, SNAPSHOT_FOLDERS_MAX, StrongSnapshotError, type StrongSnapshotState } from "../../src/consensus/strong-state-machine.ts";

function stateOf(folders: number): StrongSnapshotState {
  const head = new Uint8Array(32).fill(9) as ObjectId;
  return {
    folders: Array.from({ length: folders }, (_, i) => ({ name: `f${i}`, head: i % 2 === 0 ? head : null, keepVersions: 10, keepDays: null, createdMs: 1_700_000_000_000 })),
    addresses: [{ id: "n2", address: "http://127.0.0.1:7001" }],
  };
}

describe("snapshot data at its bounds", () => {
  test(`a snapshot of ${SNAPSHOT_FOLDERS_MAX} strong folders decodes whole`, () => {
    const decoded = decodeSnapshotState(encodeSnapshotState(stateOf(SNAPSHOT_FOLDERS_MAX)));
    expect(decoded.folders.length).toBe(SNAPSHOT_FOLDERS_MAX);
    expect(decoded.folders[SNAPSHOT_FOLDERS_MAX - 1]).toMatchObject({ name: `f${SNAPSHOT_FOLDERS_MAX - 1}`, keepVersions: 10, keepDays: null });
  }, 30_000);

  test("one folder more, or a bomb of empty values, is refused before it is built", () => {
    expect(() => decodeSnapshotState(encodeSnapshotState(stateOf(SNAPSHOT_FOLDERS_MAX + 1)))).toThrow(StrongSnapshotError);
    // Ten million empty arrays in ten MiB: refused by the shape walk, not unpacked.
    const bomb = new Uint8Array(10_000_006);
    bomb.set([0x93, 0x01, 0xdd, 0x00, 0x98, 0x96, 0x80]);
    bomb.fill(0x90, 7);
    expect(() => decodeSnapshotState(bomb)).toThrow(/more than .* values/);
  }, 30_000);
});
