// The child process of the metadata crash test: commits to one folder in a loop until it is
// killed, each commit recording two versions (a side version and the new head, whose first
// parent is the old head) in one commitVersions, with completeness marks between commits.
// After each commit resolves it prints "committed N HEXID", so the test knows what was
// acknowledged when it killed the process.
//
//   bun test/helpers/metadata-commit-loop.ts sqlite|postgres LOCATION FOLDER
import { idToHex, type ObjectId } from "../../src/core/id.ts";
import { openStoreOn, type MetadataBackendName } from "./metadata-backends.ts";

const [backend, location, folder] = process.argv.slice(2) as [MetadataBackendName, string, string];
const store = await openStoreOn(backend, location);

function randomId(): ObjectId {
  return crypto.getRandomValues(new Uint8Array(32)) as ObjectId;
}

const version = (id: ObjectId, parents: ObjectId[], n: number) => ({
  id,
  root: randomId(),
  parents,
  author: "crash-child",
  hlcWallMs: 1_700_000_000_000 + n,
  hlcCounter: 0,
  message: `commit ${n}`,
  origin: "push" as const,
  files: n,
  totalBytes: n * 10,
  createdMs: 1_700_000_000_000 + n,
});

await store.ensureFolder(folder, Date.now());
for (let n = 1; ; n++) {
  const head = (await store.getFolder(folder))!.head;
  const side = randomId();
  const next = randomId();
  await store.commitVersions(folder, head, next, [version(side, head ? [head] : [], n), version(next, head ? [head, side] : [side], n)], Date.now());
  process.stdout.write(`committed ${n} ${idToHex(next)}\n`);
  await store.markComplete([
    { id: randomId(), summary: { kind: "file", level: 0, sizeBytes: n } },
    { id: randomId(), summary: { kind: "tree", level: 0, firstName: "a", lastName: "z", heightDirs: 0 } },
  ]);
}
