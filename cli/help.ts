// Help text, rendered from the command table (cli/commands.ts): `dsync help`, `dsync help CMD`,
// `dsync CMD --help`. Lines are wrapped to 80 columns and never end in spaces; every option the
// parser knows for a command is listed, because both come from the same table.
import { COMMANDS, ENVIRONMENT, GLOBAL_OPTIONS, HASHING_ENVIRONMENT, commandName, type CommandSpec } from "./commands.ts";

const WIDTH = 80;

/** Words of `text` in lines of at most `width - indent.length` characters, each after `indent`. */
export function wrap(text: string, indent: string, width = WIDTH): string[] {
  const lines: string[] = [];
  let line = "";
  for (const word of text.split(/\s+/).filter((w) => w !== "")) {
    if (line !== "" && indent.length + line.length + 1 + word.length > width) {
      lines.push(indent + line);
      line = word;
    } else line = line === "" ? word : `${line} ${word}`;
  }
  if (line !== "") lines.push(indent + line);
  return lines;
}

/** Two columns: a term, then its text wrapped beside it (or below it when the term is long). */
function definitionList(rows: [string, string][]): string[] {
  const termWidth = Math.min(30, Math.max(...rows.map(([term]) => term.length)));
  const lines: string[] = [];
  for (const [term, text] of rows) {
    const indent = " ".repeat(2 + termWidth + 2);
    const body = wrap(text, indent);
    if (term.length > termWidth) {
      lines.push(`  ${term}`, ...body);
    } else {
      lines.push(`  ${term.padEnd(termWidth)}  ${body[0]!.trimStart()}`, ...body.slice(1));
    }
  }
  return lines;
}

/** USAGE as the reader types it: "push [DIR]", "restore <VERSION> [DIR]". */
function usageLine(spec: CommandSpec): string {
  return spec.usage.replace(/[<[]([a-z-]+)[>\]]/g, (match, name: string) => match.replace(name, name.toUpperCase()));
}

export function commandHelp(spec: CommandSpec): string {
  const summary = spec.summary[0]!.toLowerCase() + spec.summary.slice(1);
  const lines: string[] = [...wrap(`dsync ${commandName(spec)}: ${summary}`, ""), "", "Usage:", `  dsync ${usageLine(spec)} [options]`, "", "Description:"];
  spec.description.forEach((paragraph, index) => {
    if (index > 0) lines.push("");
    lines.push(...wrap(paragraph, "  "));
  });
  lines.push("", "Options:", ...definitionList([...spec.options, ...GLOBAL_OPTIONS].map((o) => [o.flags, o.description])));
  const environment = [...spec.environment, ...(spec.hashes ? HASHING_ENVIRONMENT : [])];
  if (environment.length > 0) lines.push("", "Environment:", ...definitionList(environment.map((name) => [name, ENVIRONMENT[name]])));
  lines.push("", "Examples:");
  for (const example of spec.examples) lines.push(`  ${example.command}`, ...wrap(example.explanation, "      "));
  lines.push("", "Exit codes:", ...definitionList(spec.exitCodes.map(([code, meaning]) => [String(code), meaning])));
  return lines.join("\n") + "\n";
}

export function overviewHelp(version: string): string {
  const lines = [
    ...wrap(`dsync ${version}: self-hosted file sync with content-defined chunks, BLAKE3 ids and versioned history`, ""),
    "",
    "Usage:",
    "  dsync <command> [arguments] [options]",
    "",
    "Commands:",
    ...definitionList(COMMANDS.map((spec) => [commandName(spec), spec.summary])),
    "",
    "Options:",
    ...definitionList([
      ["-h, --help", "Show this help (dsync help COMMAND, or dsync COMMAND --help, for a command's)"],
      ["-V, --version", "Print the version"],
    ]),
    "",
    ...wrap("Run dsync help COMMAND for its description, options, environment, examples and exit codes.", ""),
  ];
  return lines.join("\n") + "\n";
}
