// dsync ls: the folders a node holds, read from the node a page at a time.
import { escapeTerminalText, terminalLines } from "../src/core/terminal-text.ts";
import { validateFolderName } from "../src/core/names.ts";
import { drained, writeJsonDocument } from "./stdout.ts";
import { remoteFor } from "./remote-target.ts";

export async function lsCommand(flags: { remote?: string; json?: boolean }): Promise<number> {
  const remote = remoteFor(flags);
  // Page by page, each written before the next is asked for (as dsync log does).
  const pages = remote.folderPages();
  if (flags.json) {
    await writeJsonDocument({}, "folders", pages);
    return 0;
  }
  let listed = 0;
  for await (const page of pages) {
    const lines = page.map((folder) => {
      // Fields are escaped one by one (tabs too), since a tab separates them. A name an older
      // version let in, or a hostile node sent, is shown escaped and said to be invalid.
      const invalid = validateFolderName(folder.name) ? "\t(not a valid folder name: it cannot be used with --folder)" : "";
      return `${escapeTerminalText(folder.name)}\t${folder.head ? folder.head.slice(0, 12) : "(empty)"}\t${escapeTerminalText(folder.mode)}${invalid}`;
    });
    listed += lines.length;
    await drained(process.stdout.write(terminalLines(lines)));
  }
  if (listed === 0) process.stdout.write(terminalLines([`no folders on ${remote.baseUrl} yet`]));
  return 0;
}
