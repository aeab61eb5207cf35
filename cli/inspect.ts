// dsync inspect chunks FILE [--json]: how a file is cut, chunk by chunk.
import { closeSync, openSync, statSync } from "node:fs";
import { DEFAULT_CHUNKER_PARAMS } from "../src/core/fastcdc.ts";
import { idToHex } from "../src/core/id.ts";
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
  const fd = openSync(file, "r");
  try {
    await forEachChunk(fd, new Uint8Array(DEFAULT_CHUNKER_PARAMS.maxSizeBytes * 4), DEFAULT_CHUNKER_PARAMS, ({ id, offsetBytes, bytes }) => {
      const chunk = { offset: offsetBytes, length: bytes.length, id: idToHex(id) };
      if (options.json) chunks.push(chunk);
      else process.stdout.write(terminalLines([`${chunk.offset}\t${chunk.length}\t${chunk.id}`]));
    });
  } finally {
    closeSync(fd);
  }
  if (options.json) printJson({ chunks });
  return 0;
}
