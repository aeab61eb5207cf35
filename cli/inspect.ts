// dsync inspect chunks FILE [--json]: how a file is cut, chunk by chunk, and (--json) what its
// tree entry names: its one chunk ("c") or its file node ("f").
import { closeSync, openSync, statSync } from "node:fs";
import { DEFAULT_CHUNKER_PARAMS } from "../src/core/fastcdc.ts";
import { idToHex, type ObjectId } from "../src/core/id.ts";
import { decodesAsObject } from "../src/core/objects.ts";
import { FileNodeBuilder } from "../src/core/pages.ts";
import { forEachChunk } from "../src/fs/chunk-reader.ts";
import { UsageError } from "../src/client/sync-target.ts";
import { terminalLines } from "../src/core/terminal-text.ts";
import { printJson } from "./errors.ts";

export async function inspectCommand(what: string, file: string, options: { json?: boolean }): Promise<number> {
  if (what !== "chunks") throw new UsageError(`dsync inspect knows "chunks", not ${JSON.stringify(what)}`);
  let isFile = false;
  try {
    isFile = statSync(file).isFile();
  } catch {
    // A path that is not there is a failure (exit 1), not a usage error, as for push.
    throw new Error(`${file} does not exist (check the path)`);
  }
  if (!isFile) throw new Error(`${file} is not a regular file: dsync inspect chunks reads a file`);
  const chunks: { offset: number; length: number; id: string }[] = [];
  // The file's node tree as a push builds it (one page of chunk references at a time).
  const builder = new FileNodeBuilder();
  let firstChunkIsObject = false;
  const fd = openSync(file, "r");
  try {
    await forEachChunk(fd, new Uint8Array(DEFAULT_CHUNKER_PARAMS.maxSizeBytes * 4), DEFAULT_CHUNKER_PARAMS, ({ id, offsetBytes, bytes }) => {
      if (builder.chunkCount === 0) firstChunkIsObject = decodesAsObject(bytes);
      builder.add({ id: id as ObjectId, lengthBytes: bytes.length });
      const chunk = { offset: offsetBytes, length: bytes.length, id: idToHex(id) };
      if (options.json) chunks.push(chunk);
      else process.stdout.write(terminalLines([`${chunk.offset}\t${chunk.length}\t${chunk.id}`]));
    });
  } finally {
    closeSync(fd);
  }
  if (options.json) {
    const single = builder.onlyChunk !== undefined && !firstChunkIsObject;
    let entryId: ObjectId;
    if (single) entryId = builder.onlyChunk!.id;
    else {
      builder.finish();
      entryId = builder.rootId;
    }
    printJson({ chunks, entry: { names: single ? "chunk" : "file node", id: idToHex(entryId) } });
  }
  return 0;
}
