// Every dsync command, in one table: its arguments, options, help text and what runs it. The
// parser (cli/main.ts) is built from this table and the help (cli/help.ts) is rendered from it,
// so an option exists exactly when it is listed here with its help line: adding a flag is one
// entry. Each command's module is imported only when that command runs, so short commands
// start fast; the literal `import("./x.ts")` lets `bun build --compile` embed it.
import { EXIT_USAGE, runCommand } from "./errors.ts";

export interface OptionSpec {
  /** As the parser takes it: "--remote <url>" (takes a value) or "--json" (a switch). */
  flags: string;
  /** One line; a default is said in words ("default 50"), never derived from the parser. */
  description: string;
}

export interface ExampleSpec {
  command: string;
  explanation: string;
}

export interface CommandSpec {
  /** The name and its arguments, as the parser takes them: "push [dir]", "diff <a> <b>". */
  usage: string;
  /** One line, shown in `dsync help` and at the top of the command's help. */
  summary: string;
  /** Paragraphs, each one string (wrapped when printed). */
  description: string[];
  options: OptionSpec[];
  /** Names from ENVIRONMENT that this command reads (HASHING_ENVIRONMENT too when it hashes). */
  environment: EnvironmentName[];
  examples: ExampleSpec[];
  /** Exit codes and what each means. */
  exitCodes: [number, string][];
  /** It hashes (files or objects): it warns at start when the native BLAKE3 could not load. */
  hashes?: boolean;
  run(...args: any[]): Promise<unknown>;
}

/** The options every command takes besides its own. */
export const GLOBAL_OPTIONS: OptionSpec[] = [{ flags: "-h, --help", description: "Show this help" }];

export const ENVIRONMENT = {
  DSYNC_REMOTE: "Node URL used when --remote is not given (before what the directory remembers)",
  DSYNC_TIMEOUT: "Seconds without an answer or progress before a request to the node fails (same as --timeout; default 60)",
  DSYNC_TOKEN: "Bearer token sent to the node (serve: the token clients must send)",
  DSYNC_CLUSTER_TOKEN: "Credential nodes present to each other (same as --cluster-token)",
  DSYNC_METRICS_TOKEN: "Token accepted on GET /metrics only (same as --metrics-token)",
  DSYNC_METADATA: "Where a node keeps its metadata: sqlite or postgres://USER@HOST:PORT/DB (same as --metadata)",
  DSYNC_TLS_FINGERPRINT: "The https:// node's certificate fingerprint, sha256:... (same as --tls-fingerprint)",
  DSYNC_DEBUG: "When set, errors also print their stack trace",
  DSYNC_BLAKE3: "\"portable\" skips the native BLAKE3 and uses the ~25x slower portable one",
  TMPDIR: "Where the compiled binary unpacks its native BLAKE3; must be writable",
  DSYNC_ENTRY_CALLS: "\"node\" makes the scan look at entries through node:fs instead of statx/openat on libc (same answers, slower)",
  DSYNC_DELTA: "\"0\" makes push send changed files' chunks whole instead of as deltas against the chunks they replaced (same version either way)",
  DSYNC_CHUNK_THREADS: "Threads that cut and hash large files while scanning, the scanning thread included (1: no worker threads; default: the machine's cores, at most 4; same chunks either way)",
} as const;

export type EnvironmentName = keyof typeof ENVIRONMENT;

const CLIENT_ENVIRONMENT: EnvironmentName[] = ["DSYNC_REMOTE", "DSYNC_TOKEN", "DSYNC_TLS_FINGERPRINT", "DSYNC_DEBUG"];

/** What every command that hashes also reads (its help lists them). */
export const HASHING_ENVIRONMENT: EnvironmentName[] = ["DSYNC_BLAKE3", "TMPDIR", "DSYNC_ENTRY_CALLS", "DSYNC_CHUNK_THREADS"];

const OK_FAILURE_USAGE: [number, string][] = [
  [0, "success"],
  [1, "failure (the message says what and what to do)"],
  [2, "usage error (unknown option, bad value)"],
];

const JSON_OPTION: OptionSpec = { flags: "--json", description: "Print one JSON document instead of text" };
const REMOTE_OPTION: OptionSpec = {
  flags: "--remote <url>",
  description: "Node URL (else DSYNC_REMOTE, else what DIR remembers, else http://127.0.0.1:7700)",
};
const NODE_OPTION: OptionSpec = { flags: "--remote <url>", description: "Node URL (else DSYNC_REMOTE, else http://127.0.0.1:7700)" };
/** How an https:// node's certificate is verified (src/wire/tls-trust.ts); without either, the system roots. */
const TLS_OPTIONS: OptionSpec[] = [
  {
    flags: "--tls-fingerprint <sha256>",
    description: "Trust the https:// node whose certificate has this fingerprint, sha256:... as dsync serve prints it (remembered in DIR/.dsync after a push or pull)",
  },
  { flags: "--ca <file>", description: "Trust https:// node certificates issued by the CA certificates in FILE (PEM) instead of the system roots" },
];
const FOLDER_OPTION: OptionSpec = { flags: "--folder <name>", description: "Folder name (default: what DIR remembers, else DIR's name)" };
/** The progress bar: drawn on a terminal without --json; these force it either way (cli/raw-options.ts keeps "neither" apart). */
const PROGRESS_OPTIONS: OptionSpec[] = [
  { flags: "--progress", description: "Draw the progress bar on stderr even when it is not a terminal" },
  { flags: "--no-progress", description: "Never draw the progress bar (default: drawn on a terminal, without --json)" },
];
/** Strong folders are read after a linearizable barrier (docs/consistency.md); this skips it. */
const STALE_OPTION: OptionSpec = {
  flags: "--stale",
  description: "Read a strong folder as the node has it, without first confirming with the cluster's leader (faster, works on a minority side, may be behind)",
};
const REBIND_OPTION: OptionSpec = {
  flags: "--rebind",
  description: "Bind DIR to this --remote/--folder although it remembers others (else refused)",
};

export const COMMANDS: CommandSpec[] = [
  {
    usage: "serve",
    hashes: true,
    summary: "Run a node",
    description: [
      "Runs a node: stores folders, their versions and their objects in the data folder, serves clients on the listen address, and replicates with --peers. Stops cleanly on SIGINT or SIGTERM.",
      "Listening beyond loopback without a token is refused unless --insecure. The data folder is created on the first start, once the address could be taken.",
      "With --tls-cert and --tls-key (dsync cert create makes them) the node serves https, on --metrics-listen too, and prints its certificate's fingerprint at start (tls fingerprint sha256:...), which clients pin with --tls-fingerprint. Listening beyond loopback over plain http with a token prints a warning: the token crosses the network in clear.",
      "Peers are URLs, each with the fingerprint of its certificate after a # (https://b:7700#sha256:...), in --peers or --peers-file. A node serving TLS replicates only over TLS and only with peers it can verify (a pinned fingerprint, or a certificate --ca issued); it takes peer requests only from those nodes, each proving it holds its certificate's key, and the cluster token besides.",
    ],
    options: [
      { flags: "--data <dir>", description: "Data folder (default ./dsync-data)" },
      { flags: "--listen <host:port>", description: "Address to listen on (default 127.0.0.1:7700)" },
      {
        flags: "--token <token>",
        description: "Require this bearer token from clients, 8 to 512 printable characters without spaces (also DSYNC_TOKEN); it is the admin token, and the node also takes the tokens dsync token create makes",
      },
      { flags: "--token-file <file>", description: "The --token on FILE's first line (kept out of the process list)" },
      { flags: "--insecure", description: "Allow listening beyond loopback without a token" },
      { flags: "--keep-versions <n>", description: "Retention for new folders: keep the newest N versions" },
      { flags: "--keep-days <d>", description: "Retention for new folders: keep versions younger than D days" },
      { flags: "--node-id <id>", description: "Set this node's id (kept in the data folder)" },
      {
        flags: "--metadata <where>",
        description:
          "Where the metadata (folders, heads, versions) lives: sqlite (the default, in the data folder) or postgres://USER@HOST:PORT/DB, a database of this node's own (also DSYNC_METADATA); objects stay in the data folder",
      },
      { flags: "--peers <urls>", description: "Replicate with these nodes: comma-separated URLs, each https://HOST:PORT#sha256:... with the peer's fingerprint (or http://HOST:PORT)" },
      { flags: "--peers-file <file>", description: "Replicate with the nodes in FILE too: one URL [sha256:...] a line, # starts a comment" },
      { flags: "--cluster-token <token>", description: "Credential nodes present to each other (also DSYNC_CLUSTER_TOKEN)" },
      { flags: "--cluster-token-file <file>", description: "The --cluster-token on FILE's first line" },
      { flags: "--sync-interval-ms <ms>", description: "Period of the full comparison with each peer (default 2000)" },
      {
        flags: "--replication-streaming <on|off>",
        description: "on (the default): tell peers what each push's upload stores as it lands, and fetch what peers tell of theirs, so a push reaches the peers while it arrives; off: peers fetch at the head",
      },
      {
        flags: "--scrub-bytes-per-second <n>",
        description: "Re-verify stored objects in the background at this rate; 0 = off (default off, 8388608 with --peers)",
      },
      { flags: "--metrics-token <token>", description: "A token accepted on GET /metrics only, for a scraper (also DSYNC_METRICS_TOKEN)" },
      { flags: "--metrics-token-file <file>", description: "The --metrics-token on FILE's first line" },
      { flags: "--metrics-listen <host:port>", description: "Also serve GET /metrics, without a token, on this loopback address (beyond loopback only with --insecure)" },
      { flags: "--tls-cert <file>", description: "Serve https with this PEM certificate (with --tls-key; dsync cert create writes node.crt)" },
      { flags: "--tls-key <file>", description: "The certificate's PEM private key (dsync cert create writes node.key)" },
      { flags: "--ca <file>", description: "Verify peers without a pinned fingerprint by the CA certificates in FILE (PEM), and take peer requests from nodes it issued" },
    ],
    environment: ["DSYNC_TOKEN", "DSYNC_CLUSTER_TOKEN", "DSYNC_METRICS_TOKEN", "DSYNC_METADATA", "DSYNC_DEBUG"],
    examples: [
      { command: "dsync serve", explanation: "a node on 127.0.0.1:7700 with its data in ./dsync-data" },
      {
        command: "DSYNC_TOKEN=secret dsync serve --data /srv/dsync --listen 0.0.0.0:7700",
        explanation: "reachable from the network, every client must send the token",
      },
      {
        command: "dsync serve --data /srv/a --listen 127.0.0.1:7701 --peers http://127.0.0.1:7702 --cluster-token c1u5ter-t0ken",
        explanation: "one of two replicating nodes",
      },
      {
        command: "dsync serve --tls-cert tls/node.crt --tls-key tls/node.key --listen 0.0.0.0:7701 --peers https://b:7702#sha256:5f1c...",
        explanation: "over TLS, replicating with a pinned peer",
      },
      {
        command: "dsync serve --data /srv/dsync --metadata postgres://dsync@db.example:5432/dsync_a",
        explanation: "metadata in PostgreSQL (one database per node), objects in /srv/dsync",
      },
    ],
    exitCodes: [
      [0, "stopped by SIGINT or SIGTERM"],
      [1, "could not start (the address is taken, the data folder cannot be used, the certificate or key is missing or not a pair)"],
      [2, "usage error"],
    ],
    // A process that listened for signals is kept alive by them, so serve ends explicitly; its few
    // lines of output were written long before. Other commands end by themselves (errors.ts).
    run: (flags) => runCommand(async () => (await import("./serve.ts")).serveCommand(flags)).then(() => process.exit()),
  },
  {
    usage: "status",
    summary: "Show, per folder and per peer, whether a node is in sync and how far behind",
    description: [
      "Prints the dashboard's summary as text: each peer's reachability, lag and last contact; each folder's mode, files, bytes, last change and the node that made it; and per folder and peer whether this node is in sync, behind (it lacks writes the peer has), ahead or diverged.",
      "Then the cluster's log, which orders strong folders: this node's role, the term, the leader, the commit and applied indexes, and per member the index known replicated there (on the leader) and when this node last heard from it.",
      "With --wait it first waits until every folder is in sync with every peer (the same head, by what each peer last told the node; every peer reachable), asking every 200 ms, for at most --timeout-ms: a script can push to one node, wait, then read from another.",
    ],
    options: [
      NODE_OPTION,
      ...TLS_OPTIONS,
      { flags: "--wait", description: "First wait until every folder is in sync with every peer (exit 1 if not within the timeout)" },
      { flags: "--timeout-ms <ms>", description: "How long --wait waits (default 60000)" },
      JSON_OPTION,
    ],
    environment: CLIENT_ENVIRONMENT,
    examples: [
      { command: "dsync status", explanation: "the local node" },
      { command: "dsync status --wait --timeout-ms 10000 --remote http://127.0.0.1:7701", explanation: "after a push: wait until the other nodes have it" },
      { command: "dsync status --remote http://127.0.0.1:7702 --json", explanation: "another node, as JSON" },
    ],
    exitCodes: OK_FAILURE_USAGE,
    run: (flags) => runCommand(async () => (await import("./status.ts")).statusCommand(flags)),
  },
  {
    usage: "push [dir]",
    hashes: true,
    summary: "Send a directory to a node as a new version",
    description: [
      "Scans DIR (default .), sends the chunks and nodes the node lacks, and records a new version of the folder. Paths matched by .dsyncignore are not sent; paths that cannot be read keep their last synced content. If the folder moved on since DIR last synced, the node merges the two and reports any conflict; pull to get the other changes.",
      "DIR remembers the remote and folder it syncs with (in DIR/.dsync). A --remote or --folder that differs from what it remembers is refused unless --rebind is given.",
      "A push that would delete more than P% of the folder's files (default 50), when that is at least N files (default 100), is refused unless --allow-deletes.",
      "--consistency strong|eventual makes the folder in that mode before the first push (as dsync folder create does); on a folder that exists in the other mode the push is refused with nothing sent. A strong folder's push is acknowledged once a majority of the cluster's nodes hold it; any node takes it and hands it to the leader.",
    ],
    options: [
      REMOTE_OPTION,
      ...TLS_OPTIONS,
      FOLDER_OPTION,
      REBIND_OPTION,
      { flags: "--consistency <mode>", description: "strong or eventual: make the folder in this mode first if it does not exist (refused if it exists in the other)" },
      { flags: "--message <text>", description: "Message recorded with the version" },
      { flags: "--keep-versions <n>", description: "Set the folder's retention: keep the newest N versions" },
      { flags: "--keep-days <d>", description: "Set the folder's retention: keep versions younger than D days" },
      { flags: "--allow-deletes", description: "Push even if it deletes more than the guard allows" },
      { flags: "--max-delete-percent <p>", description: "Guard: refuse deleting more than P% of the folder's files (default 50)" },
      { flags: "--max-delete-min-files <n>", description: "Guard: apply only when that is at least N files (default 100)" },
      { flags: "--dry-run", description: "List what would be sent (new, changed), skipped and deleted; send and record nothing" },
      { flags: "--compress <mode>", description: "auto (default): zstd per batch only where it saves time on this link, by what the push measured; never; or a zstd level 1-19 for every batch that shrinks" },
      ...PROGRESS_OPTIONS,
      JSON_OPTION,
    ],
    environment: [...CLIENT_ENVIRONMENT, "DSYNC_DELTA"],
    examples: [
      { command: "dsync push ~/notes", explanation: "first push: folder \"notes\" on the local node" },
      { command: "dsync push ~/notes --message \"before the trip\"", explanation: "a new version with a message" },
      { command: "dsync push ~/notes --dry-run", explanation: "what a push would send, skip and delete, without pushing" },
      { command: "dsync push ~/notes --remote http://10.0.0.2:7700 --rebind", explanation: "sync this directory with another node from now on" },
      { command: "dsync push ~/ledger --consistency strong", explanation: "first push of a strong folder: one head for the whole cluster, acknowledged by a majority" },
    ],
    exitCodes: [
      [0, "pushed"],
      [1, "failure (nothing was recorded)"],
      [2, "usage error"],
      [3, "pushed, but some paths could not be read (they keep their last synced content)"],
    ],
    run: (dir, flags) => runCommand(async () => (await import("./push.ts")).pushCommand(dir, flags)),
  },
  {
    usage: "pull [dir]",
    hashes: true,
    summary: "Bring a directory to a folder's head (or --version)",
    description: [
      "Brings DIR (default .) to the folder's head, or to --version, fetching only what it lacks. Creates DIR on the first pull, once the folder is found. A file changed here since the last sync is never overwritten: it is kept as name.sync-conflict-<time>-local.ext and reported.",
      "DIR remembers the remote and folder it syncs with (in DIR/.dsync). A --remote or --folder that differs from what it remembers is refused unless --rebind is given. An interrupted first pull is resumed by running dsync pull DIR again.",
    ],
    options: [
      REMOTE_OPTION,
      ...TLS_OPTIONS,
      FOLDER_OPTION,
      REBIND_OPTION,
      { flags: "--version <id>", description: "Version id or unique prefix (default: the head)" },
      STALE_OPTION,
      ...PROGRESS_OPTIONS,
      JSON_OPTION,
    ],
    environment: CLIENT_ENVIRONMENT,
    examples: [
      { command: "dsync pull ~/copy --folder notes", explanation: "a second copy of folder \"notes\"" },
      { command: "dsync pull ~/copy", explanation: "later: apply only what changed" },
      { command: "dsync pull /tmp/old --folder notes --version 3f2a", explanation: "an old version, elsewhere" },
    ],
    exitCodes: OK_FAILURE_USAGE,
    run: (dir, flags) => runCommand(async () => (await import("./pull.ts")).pullCommand(dir, flags)),
  },
  {
    usage: "diff <a> <b>",
    hashes: true,
    summary: "Compare two directories or URL/FOLDER[@VERSION]",
    description: [
      "Prints A, D, M and T lines (added, deleted, modified, type changed) on stdout, then one summary line on stderr: what each side lacks to become the other, the requests made to nodes and the depth reached. Only differing subtrees are loaded.",
      "A directory is compared as a push would send it: paths its scan does not read (ignored, unreadable, unsupported) are not differences; the summary says how many were not compared.",
      "An https:// side may pin its node's certificate after a #: https://a:7700/notes#sha256:... (two nodes have two certificates, which one --tls-fingerprint cannot both name).",
    ],
    options: [...TLS_OPTIONS, STALE_OPTION, ...PROGRESS_OPTIONS, JSON_OPTION],
    environment: ["DSYNC_TOKEN", "DSYNC_TLS_FINGERPRINT", "DSYNC_DEBUG"],
    examples: [
      { command: "dsync diff ~/notes http://127.0.0.1:7700/notes", explanation: "what a push would change" },
      { command: "dsync diff http://127.0.0.1:7701/notes http://127.0.0.1:7702/notes@3f2a", explanation: "two replicas, one at a version" },
      { command: "dsync diff https://a:7701/notes#sha256:5f1c... https://b:7702/notes#sha256:9e0d...", explanation: "two TLS replicas, each pinned" },
    ],
    exitCodes: [
      [0, "identical"],
      [1, "they differ"],
      [2, "error"],
    ],
    run: (a, b, flags) => runCommand(async () => (await import("./diff.ts")).diffCommand(a, b, flags), EXIT_USAGE),
  },
  {
    usage: "log [dir]",
    summary: "List a folder's versions, newest first",
    description: [
      "Lists the versions the node keeps of the folder DIR (default .) syncs with: id, time, origin, author, files, bytes and message.",
      "The versions are read from the node a page at a time and each page is printed before the next is asked for, so a long history streams in little memory.",
    ],
    options: [
      REMOTE_OPTION,
      ...TLS_OPTIONS,
      FOLDER_OPTION,
      { flags: "--limit <n>", description: "Show at most N versions (the newest N)" },
      STALE_OPTION,
      { flags: "--json", description: "Print one JSON document {folder, versions: [...]}, written page by page as the node sends them" },
      { flags: "--json-lines", description: "Print one JSON object per version, one per line" },
    ],
    environment: CLIENT_ENVIRONMENT,
    examples: [
      { command: "dsync log ~/notes", explanation: "the versions of the folder ~/notes syncs with" },
      { command: "dsync log --folder notes --limit 5", explanation: "the newest five" },
    ],
    exitCodes: OK_FAILURE_USAGE,
    run: (dir, flags) => runCommand(async () => (await import("./log.ts")).logCommand(dir, flags)),
  },
  {
    usage: "ls",
    summary: "List the folders on a node",
    description: ["Lists each folder's name, head version and consistency mode (eventual or strong)."],
    options: [NODE_OPTION, ...TLS_OPTIONS, JSON_OPTION],
    environment: CLIENT_ENVIRONMENT,
    examples: [{ command: "dsync ls --remote http://127.0.0.1:7701", explanation: "the folders on that node" }],
    exitCodes: OK_FAILURE_USAGE,
    run: (flags) => runCommand(async () => (await import("./ls.ts")).lsCommand(flags)),
  },
  {
    usage: "restore <version> [dir]",
    hashes: true,
    summary: "Make an earlier version the folder's content again (a new version), then pull it",
    description: [
      "Records a new version with VERSION's content (history is kept), then brings DIR (default .) to it unless --no-pull. A file changed here since the last sync is kept (as a conflict copy, or in place): the directory then does not match the version, and restore says which paths differ and why, and exits 3.",
    ],
    options: [
      REMOTE_OPTION,
      ...TLS_OPTIONS,
      FOLDER_OPTION,
      REBIND_OPTION,
      { flags: "--message <text>", description: "Message for the new version" },
      { flags: "--no-pull", description: "Only change the node; leave DIR alone" },
      ...PROGRESS_OPTIONS,
      JSON_OPTION,
    ],
    environment: CLIENT_ENVIRONMENT,
    examples: [
      { command: "dsync restore 3f2a ~/notes", explanation: "the content of version 3f2a again, in the folder and in ~/notes" },
      { command: "dsync restore 3f2a --folder notes --no-pull", explanation: "only on the node" },
    ],
    exitCodes: [
      [0, "restored, and DIR matches the restored version"],
      [1, "failure"],
      [2, "usage error"],
      [3, "restored on the node, but DIR does not match it (local changes kept; listed)"],
    ],
    run: (version, dir, flags) => runCommand(async () => (await import("./restore.ts")).restoreCommand(version, dir, flags)),
  },
  {
    usage: "folder <action> <name>",
    summary: "Make a folder in a consistency mode: dsync folder create NAME --consistency strong|eventual",
    description: [
      "ACTION is create. It makes folder NAME on the node with no versions yet, in the consistency mode asked: eventual (the default: any node takes a push at once, nodes converge by replication and merge) or strong (one head for the whole cluster, moved only through the cluster's log: a push is acknowledged once a majority holds it, and a node on a minority side refuses it). See docs/consistency.md.",
      "A folder that exists in that mode already is left as it is (exit 0); one that exists in the other mode is refused (exit 1): a folder's mode is chosen when it is made.",
    ],
    options: [
      NODE_OPTION,
      ...TLS_OPTIONS,
      { flags: "--consistency <mode>", description: "strong or eventual (default eventual)" },
      { flags: "--keep-versions <n>", description: "Retention: keep the newest N versions" },
      { flags: "--keep-days <d>", description: "Retention: keep versions younger than D days" },
      JSON_OPTION,
    ],
    environment: CLIENT_ENVIRONMENT,
    examples: [
      { command: "dsync folder create ledger --consistency strong", explanation: "a strong folder on the local node's cluster" },
      { command: "dsync folder create photos --remote http://127.0.0.1:7702", explanation: "an eventual folder" },
    ],
    exitCodes: [
      [0, "made, or it existed in that mode"],
      [1, "failure (it exists in the other mode, or no leader can be reached)"],
      [2, "usage error"],
    ],
    run: (action, name, flags) => runCommand(async () => (await import("./folder.ts")).folderCommand(action, name, flags)),
  },
  {
    usage: "cluster <action> <target>",
    summary: "Change who is in the cluster's log: dsync cluster add URL, dsync cluster remove NODE",
    description: [
      "The cluster's log (Raft) orders strong folders' heads; its members vote. add URL asks the node at URL (running with the same cluster token) its id and adds it as a member, which then catches up from the leader; remove NODE takes the member with that node id out (dsync status lists the members). One change at a time, through the leader (the node given by --remote hands it over).",
      "Needs an admin token. A cluster of N members keeps working while a majority of them run: remove a node that is gone for good, so that it does not count against the majority.",
    ],
    options: [NODE_OPTION, ...TLS_OPTIONS, JSON_OPTION],
    environment: CLIENT_ENVIRONMENT,
    examples: [
      { command: "dsync cluster add http://10.0.0.4:7700", explanation: "a fourth member" },
      { command: "dsync cluster remove 5f1c2a9e0b8d7a63 --remote http://10.0.0.2:7700", explanation: "take a member out" },
    ],
    exitCodes: OK_FAILURE_USAGE,
    run: (action, target, flags) => runCommand(async () => (await import("./cluster.ts")).clusterCommand(action, target, flags)),
  },
  {
    usage: "verify",
    hashes: true,
    summary: "Re-hash every stored object and check every kept version",
    description: [
      "Re-hashes every stored object (quarantining what is corrupt), checks every kept version's closure and the structure of its tree, and both SQLite databases. --repair fetches every corrupt or missing object from the node's peers. Works on a running node (--remote) or a data folder directly (--data, node stopped).",
    ],
    options: [
      NODE_OPTION,
      ...TLS_OPTIONS,
      { flags: "--data <dir>", description: "Check a data folder directly (node stopped)" },
      { flags: "--metadata <where>", description: "With --data: where that node's metadata is, sqlite (the default) or its postgres:// URL (also DSYNC_METADATA)" },
      { flags: "--repair", description: "Fetch every corrupt or missing object from the node's peers" },
      JSON_OPTION,
    ],
    environment: [...CLIENT_ENVIRONMENT, "DSYNC_METADATA"],
    examples: [
      { command: "dsync verify", explanation: "the local node" },
      { command: "dsync verify --repair --remote http://127.0.0.1:7701", explanation: "and repair from its peers" },
      { command: "dsync verify --data /srv/dsync", explanation: "a stopped node's data folder" },
    ],
    exitCodes: [
      [0, "healthy"],
      [1, "a problem remains unrepaired (listed), or the check failed"],
      [2, "usage error"],
    ],
    run: (flags) => runCommand(async () => (await import("./maintenance.ts")).verifyCommand(flags)),
  },
  {
    usage: "gc",
    hashes: true,
    summary: "Apply retention and delete unreachable objects",
    description: [
      "Prunes versions retention no longer keeps, deletes objects no kept version needs, and repacks; reports the bytes the data folder really gave back. Works on a full disk.",
    ],
    options: [
      NODE_OPTION,
      ...TLS_OPTIONS,
      { flags: "--data <dir>", description: "Collect in a data folder directly (node stopped)" },
      { flags: "--metadata <where>", description: "With --data: where that node's metadata is, sqlite (the default) or its postgres:// URL (also DSYNC_METADATA)" },
      { flags: "--grace-ms <ms>", description: "Keep objects used this recently (pushes in flight; default 900000)" },
      { flags: "--dry-run", description: "Report without deleting" },
      JSON_OPTION,
    ],
    environment: [...CLIENT_ENVIRONMENT, "DSYNC_METADATA"],
    examples: [
      { command: "dsync gc --dry-run", explanation: "what the local node would prune and delete" },
      { command: "dsync gc --data /srv/dsync", explanation: "a stopped node's data folder" },
    ],
    exitCodes: OK_FAILURE_USAGE,
    run: (flags) => runCommand(async () => (await import("./maintenance.ts")).gcCommand(flags)),
  },
  {
    usage: "cert <action>",
    summary: "Make a node's TLS key and certificate: dsync cert create",
    description: [
      "dsync cert create makes a private key and a self-signed certificate (ECDSA P-256, valid 10 years) naming each --host in its SubjectAltName, writes them as DIR/node.key (mode 0600) and DIR/node.crt, and prints the certificate's fingerprint: sha256: and the SHA-256 of the DER certificate, the same bytes as openssl x509 -fingerprint -sha256.",
      "Give the fingerprint to the node's clients (--tls-fingerprint) and peers (--peers URL#sha256:...). Existing files are never overwritten without --force: clients and peers pinned the old certificate. ACTION is \"create\".",
    ],
    options: [
      { flags: "--out <dir>", description: "Where to write node.key and node.crt (default .; created if missing)" },
      { flags: "--host <names>", description: "Names and addresses the certificate is for, comma-separated (default localhost,127.0.0.1 and this machine's host name)" },
      { flags: "--force", description: "Replace an existing node.key and node.crt" },
      JSON_OPTION,
    ],
    environment: ["DSYNC_DEBUG"],
    examples: [
      { command: "dsync cert create --out /srv/dsync-tls", explanation: "a key and certificate for localhost, 127.0.0.1 and this machine's name" },
      { command: "dsync cert create --out tls --host nas.lan,192.168.1.20", explanation: "for the names clients use to reach the node" },
    ],
    exitCodes: [
      [0, "written; the fingerprint is printed"],
      [1, "failure (a file exists without --force, the folder cannot be written)"],
      [2, "usage error"],
    ],
    run: (action, flags) => runCommand(async () => (await import("./cert.ts")).certCommand(action, flags)),
  },
  {
    usage: "token <action> [id]",
    summary: "Make, list and revoke tokens: dsync token create|list|revoke",
    description: [
      "ACTION is create, list or revoke. create makes a token with a role (read: pull, diff, log, ls, status; write: also push and restore; admin: everything, gc, verify, retention and tokens) for the folders named with --folder (none: every folder), and prints it once with its id; the node keeps only its hash. list shows every token's id, name, role, folders, times and whether it is revoked, never the token. revoke ID refuses the token from its next request on.",
      "Against a running node (--remote, with its admin token in DSYNC_TOKEN), or in a node's data folder (--data), which works while the node runs: the node reads tokens from the data folder on every request. Tokens count only on a node started with --token, which stays its admin token.",
    ],
    options: [
      NODE_OPTION,
      ...TLS_OPTIONS,
      { flags: "--data <dir>", description: "Work in this data folder directly instead of on a node" },
      { flags: "--role <role>", description: "create: read, write or admin" },
      { flags: "--folder <name>", description: "create: a folder the token may touch; repeat for more (default every folder)" },
      { flags: "--expires <duration>", description: "create: valid for this long, e.g. 30d, 12h, 90m (default never expires)" },
      { flags: "--name <label>", description: "create: a label shown by list" },
      JSON_OPTION,
    ],
    environment: CLIENT_ENVIRONMENT,
    examples: [
      { command: "dsync token create --role read --folder photos --expires 30d --name laptop", explanation: "a read token for folder photos, valid 30 days" },
      { command: "dsync token list --data /srv/dsync", explanation: "the tokens of that data folder" },
      { command: "dsync token revoke 3f2a9c1d0b8e7a65", explanation: "refuse that token from now on" },
    ],
    exitCodes: OK_FAILURE_USAGE,
    run: (action, id, flags) => runCommand(async () => (await import("./token.ts")).tokenCommand(action, id, flags)),
  },
  {
    usage: "inspect <what> <file>",
    hashes: true,
    summary: "Show how a file is cut: dsync inspect chunks FILE",
    description: ["Prints the offset, length and BLAKE3 id of each chunk of FILE, as a push would cut it. WHAT is \"chunks\"."],
    options: [JSON_OPTION],
    environment: ["DSYNC_DEBUG"],
    examples: [{ command: "dsync inspect chunks big.iso --json", explanation: "the chunks of big.iso, as JSON" }],
    exitCodes: OK_FAILURE_USAGE,
    run: (what, file, flags) => runCommand(async () => (await import("./inspect.ts")).inspectCommand(what, file, flags)),
  },
];

/**
 * The options of every command that talks to a node (cli/connection-options.ts applies them):
 * how long to wait on it, and where the token is. Added to those commands here, after their own.
 */
export const CONNECTION_OPTIONS: OptionSpec[] = [
  {
    flags: "--timeout <seconds>",
    description: "Give up on the node after this long with no answer or no progress (default 60, also DSYNC_TIMEOUT; connecting at most 10)",
  },
  { flags: "--token-file <file>", description: "Send the token on FILE's first line (else DSYNC_TOKEN)" },
];

/** The commands that talk to a node (verify, gc and token with --remote). */
export const NODE_COMMANDS = ["status", "push", "pull", "diff", "log", "ls", "restore", "verify", "gc", "token", "folder", "cluster"];

for (const spec of COMMANDS) {
  if (!NODE_COMMANDS.includes(spec.usage.split(" ")[0]!)) continue;
  spec.options = [...spec.options, ...CONNECTION_OPTIONS];
  spec.environment = [...spec.environment, "DSYNC_TIMEOUT"];
}

/** The command's name: the first word of its usage. */
export function commandName(spec: CommandSpec): string {
  return spec.usage.split(" ")[0]!;
}

export function findCommand(name: string): CommandSpec | undefined {
  return COMMANDS.find((spec) => commandName(spec) === name);
}
