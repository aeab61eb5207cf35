#!/usr/bin/env bun
// The dsync command line: one binary that runs a node (serve) or talks to one. Each command
// module is loaded only when that command runs, so short commands start fast.
import { cac } from "cac";
import { terminalError, terminalLines } from "../src/core/terminal-text.ts";
import { EXIT_USAGE, runCommand } from "./errors.ts";
import { restoreTextOptions } from "./raw-options.ts";
import { DSYNC_VERSION } from "./version.ts";

const cli = cac("dsync");

cli
  .command("serve", "Run a node")
  .option("--data <dir>", "Data folder (default ./dsync-data)")
  .option("--listen <host:port>", "Address to listen on (default 127.0.0.1:7700)")
  .option("--token <token>", "Require this bearer token (also DSYNC_TOKEN)")
  .option("--insecure", "Allow listening beyond loopback without a token")
  .option("--keep-versions <n>", "Retention for new folders: keep the newest N versions")
  .option("--keep-days <d>", "Retention for new folders: keep versions younger than D days")
  .option("--node-id <id>", "Set this node's id (kept in the data folder)")
  .option("--peers <urls>", "Replicate with these nodes: comma-separated URLs")
  .option("--cluster-token <token>", "Credential nodes present to each other (also DSYNC_CLUSTER_TOKEN)")
  .option("--sync-interval-ms <ms>", "Period of the full comparison with each peer (default 2000)")
  .option("--scrub-bytes-per-second <n>", "Re-verify stored objects in the background at this rate; 0 = off (default: off, 8388608 with --peers)")
  .option("--metrics-token <token>", "A token accepted on GET /metrics only, for a Prometheus scraper (also DSYNC_METRICS_TOKEN)")
  // A process that listened for signals is kept alive by them, so serve ends explicitly; its few
  // lines of output were written long before. Other commands end by themselves (errors.ts).
  .action((flags) => runCommand(async () => (await import("./serve.ts")).serveCommand(flags)).then(() => process.exit()));

cli
  .command("status", "Show, per folder and per peer, whether a node is in sync and how far behind")
  .option("--remote <url>", "Node URL (else DSYNC_REMOTE, else http://127.0.0.1:7700)")
  .option("--json", "Print one JSON document")
  .action((flags) => runCommand(async () => (await import("./status.ts")).statusCommand(flags)));

cli
  .command("push [dir]", "Send a directory to a node as a new version")
  .option("--remote <url>", "Node URL (else DSYNC_REMOTE, else remembered, else http://127.0.0.1:7700)")
  .option("--folder <name>", "Folder name (default: remembered, else the directory's name)")
  .option("--message <text>", "Message recorded with the version")
  .option("--keep-versions <n>", "Set the folder's retention: keep the newest N versions")
  .option("--keep-days <d>", "Set the folder's retention: keep versions younger than D days")
  .option("--allow-deletes", "Push even if it deletes more than the guard allows")
  .option("--max-delete-percent <p>", "Guard: refuse deleting more than P% of the folder's files (default 50)")
  .option("--max-delete-min-files <n>", "Guard: ... when that is at least N files (default 100)")
  .option("--json", "Print one JSON document")
  .action((dir, flags) => runCommand(async () => (await import("./push.ts")).pushCommand(dir, flags)));

cli
  .command("pull [dir]", "Bring a directory to a folder's head (or --version)")
  .option("--remote <url>", "Node URL")
  .option("--folder <name>", "Folder name")
  .option("--version <id>", "Version id or unique prefix (default: the head)")
  .option("--json", "Print one JSON document")
  .action((dir, flags) => runCommand(async () => (await import("./pull.ts")).pullCommand(dir, flags)));

cli
  .command("diff <a> <b>", "Compare two directories or URL/FOLDER[@VERSION]; exit 0 same, 1 differ, 2 error")
  .option("--json", "Print one JSON document")
  .action((a, b, flags) => runCommand(async () => (await import("./diff.ts")).diffCommand(a, b, flags), EXIT_USAGE));

cli
  .command("log [dir]", "List a folder's versions, newest first")
  .option("--remote <url>", "Node URL")
  .option("--folder <name>", "Folder name")
  .option("--limit <n>", "Show at most N versions")
  .option("--json", "Print one JSON document")
  .action((dir, flags) => runCommand(async () => (await import("./log.ts")).logCommand(dir, flags)));

cli
  .command("ls", "List the folders on a node")
  .option("--remote <url>", "Node URL")
  .option("--json", "Print one JSON document")
  .action((flags) => runCommand(async () => (await import("./ls.ts")).lsCommand(flags)));

cli
  .command("restore <version> [dir]", "Make an earlier version the folder's content again (a new version), then pull it")
  .option("--remote <url>", "Node URL")
  .option("--folder <name>", "Folder name")
  .option("--message <text>", "Message for the new version")
  .option("--no-pull", "Only change the node; leave the directory alone")
  .option("--json", "Print one JSON document")
  .action((version, dir, flags) => runCommand(async () => (await import("./restore.ts")).restoreCommand(version, dir, flags)));

cli
  .command("verify", "Re-hash every stored object and check every kept version; exit 1 on any problem left unrepaired")
  .option("--remote <url>", "Node URL")
  .option("--data <dir>", "Check a data folder directly (node stopped)")
  .option("--repair", "Fetch every corrupt or missing object from the node's peers; exit 1 if any remains")
  .option("--json", "Print one JSON document")
  .action((flags) => runCommand(async () => (await import("./maintenance.ts")).verifyCommand(flags)));

cli
  .command("gc", "Apply retention and delete unreachable objects")
  .option("--remote <url>", "Node URL")
  .option("--data <dir>", "Collect in a data folder directly (node stopped)")
  .option("--grace-ms <ms>", "Keep objects used this recently (pushes in flight; default 900000)")
  .option("--dry-run", "Report without deleting")
  .option("--json", "Print one JSON document")
  .action((flags) => runCommand(async () => (await import("./maintenance.ts")).gcCommand(flags)));

cli
  .command("inspect <what> <file>", "Show how a file is cut: dsync inspect chunks FILE")
  .option("--json", "Print one JSON document")
  .action((what, file, flags) => runCommand(async () => (await import("./inspect.ts")).inspectCommand(what, file, flags)));

cli.help();

// `--version` is handled here rather than by cac: `pull --version <id>` needs the flag name.
const firstArgument = process.argv[2];
if (firstArgument === "--version" || firstArgument === "-v" || firstArgument === "version") {
  process.stdout.write(terminalLines([`dsync ${DSYNC_VERSION}`]));
  process.exit(0);
}

try {
  cli.parse(process.argv, { run: false });
  if (!cli.matchedCommand) {
    if (cli.args.length > 0) {
      process.stderr.write(terminalError(`unknown command ${JSON.stringify(cli.args[0])} (see dsync --help)`));
      process.exit(EXIT_USAGE);
    }
    if (!cli.options.help) cli.outputHelp();
    process.exit(cli.options.help ? 0 : EXIT_USAGE);
  }
  restoreTextOptions(cli.options, process.argv);
  await cli.runMatchedCommand();
} catch (error) {
  process.stderr.write(terminalError(`${(error as Error).message} (see dsync --help)`));
  process.exit(EXIT_USAGE);
}
