// dsync ls: the folders a node holds.
import { escapeTerminalText, terminalLines } from "../src/core/terminal-text.ts";
import { validateFolderName } from "../src/core/names.ts";
import { printJson } from "./errors.ts";
import { remoteFor } from "./remote-target.ts";

export async function lsCommand(flags: { remote?: string; json?: boolean }): Promise<number> {
  const remote = remoteFor(flags);
  const folders = await remote.listFolders();
  if (flags.json) printJson({ folders });
  else {
    const lines = folders.length === 0 ? [`no folders on ${remote.baseUrl} yet`] : [];
    for (const folder of folders) {
      // Fields are escaped one by one (tabs too), since a tab separates them. A name an older
      // version let in, or a hostile node sent, is shown escaped and said to be invalid.
      const invalid = validateFolderName(folder.name) ? "\t(not a valid folder name: it cannot be used with --folder)" : "";
      lines.push(`${escapeTerminalText(folder.name)}\t${folder.head ? folder.head.slice(0, 12) : "(empty)"}\t${escapeTerminalText(folder.mode)}${invalid}`);
    }
    process.stdout.write(terminalLines(lines));
  }
  return 0;
}
