#!/usr/bin/env bun
// The dsync command line: one binary that runs a node (serve) or talks to one. Each command
// module is loaded only when that command runs, so short commands start fast.
import { cac } from "cac";
import { terminalError, terminalLines } from "../src/core/terminal-text.ts";
import { COMMANDS, GLOBAL_OPTIONS, NODE_COMMANDS, findCommand } from "./commands.ts";
import { describeError, EXIT_USAGE, isProgramError } from "./errors.ts";
import { restoreTextOptions, restoreTristateSwitches } from "./raw-options.ts";
import { DSYNC_VERSION } from "./version.ts";

/** The parser, built from the command table: a command takes exactly the options its help lists. */
export function buildParser() {
  const cli = cac("dsync");
  for (const option of GLOBAL_OPTIONS) cli.option(option.flags, option.description);
  for (const spec of COMMANDS) {
    const command = cli.command(spec.usage, spec.summary);
    for (const option of spec.options) command.option(option.flags, option.description);
    command.action(spec.run);
  }
  return cli;
}

function printText(text: string): void {
  process.stdout.write(terminalLines(text.trimEnd().split("\n")));
}

function usageFailure(message: string): never {
  process.stderr.write(terminalError(message));
  process.exit(EXIT_USAGE);
}

if (import.meta.main) await main(process.argv);

async function main(argv: string[]): Promise<void> {
  // Version and help are answered before parsing: `pull --version <id>` needs the flag name, and
  // `dsync help push` is not a command of its own.
  const [first, second] = [argv[2], argv[3]];
  if (first === "--version" || first === "-V" || first === "-v" || first === "version") {
    printText(`dsync ${DSYNC_VERSION}`);
    process.exit(0);
  }
  if (first === "help") {
    // The help renderer is loaded only to print help: other runs start without it.
    const { commandHelp, overviewHelp } = await import("./help.ts");
    if (second === undefined || second === "help") printText(overviewHelp(DSYNC_VERSION));
    else {
      const spec = findCommand(second);
      if (!spec) usageFailure(`unknown command ${JSON.stringify(second)} (see dsync help)`);
      printText(commandHelp(spec));
    }
    process.exit(0);
  }
  const cli = buildParser();
  try {
    cli.parse(argv, { run: false });
    if (!cli.matchedCommand) {
      if (cli.args.length > 0) usageFailure(`unknown command ${JSON.stringify(cli.args[0])} (see dsync help)`);
      printText((await import("./help.ts")).overviewHelp(DSYNC_VERSION));
      process.exit(cli.options.help ? 0 : EXIT_USAGE);
    }
    if (cli.options.help) {
      printText((await import("./help.ts")).commandHelp(findCommand(cli.matchedCommand.name)!));
      process.exit(0);
    }
    restoreTextOptions(cli.options, argv);
    restoreTristateSwitches(cli.options, argv);
    // How https:// nodes are verified (a usage error here, before anything is sent); serve's --ca is its peers'.
    if (cli.matchedCommand.name !== "serve") (await import("./tls-options.ts")).applyTlsOptions(cli.options);
    // --timeout and --token-file hold for every request the command makes.
    if (NODE_COMMANDS.includes(cli.matchedCommand.name)) (await import("./connection-options.ts")).applyConnectionOptions(cli.options, argv);
    // Before the command's own output: everything works, but slower, and the user can fix it.
    if (findCommand(cli.matchedCommand.name)!.hashes) (await import("./blake3-warning.ts")).warnIfPortableBlake3();
    await cli.runMatchedCommand();
  } catch (error) {
    if (isProgramError(error)) {
      process.stderr.write(terminalError(describeError(error).message));
      if (process.env.DSYNC_DEBUG) process.stderr.write(terminalLines(String(error.stack).split("\n")));
      process.exit(1);
    }
    const command = cli.matchedCommand ? `dsync help ${cli.matchedCommand.name}` : "dsync help";
    usageFailure(`${(error as Error).message} (see ${command})`);
  }
}
