// dsync ls: the folders a node holds.
import { printJson } from "./errors.ts";
import { remoteFor } from "./remote-target.ts";

export async function lsCommand(flags: { remote?: string; json?: boolean }): Promise<number> {
  const remote = remoteFor(flags);
  const folders = await remote.listFolders();
  if (flags.json) printJson({ folders });
  else {
    if (folders.length === 0) process.stdout.write(`no folders on ${remote.baseUrl} yet\n`);
    for (const folder of folders) {
      process.stdout.write(`${folder.name}\t${folder.head ? folder.head.slice(0, 12) : "(empty)"}\t${folder.mode}\n`);
    }
  }
  return 0;
}
