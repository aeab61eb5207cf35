// The node's Prometheus metrics (GET /metrics), on prom-client. docs/metrics.md is the contract:
// every metric here is listed there with its type, labels and meaning, and a test holds the two
// together.
//
// Counters of what happens while serving (requests, bytes, commits, gc) are counted as it
// happens; everything else (store, folders, peers, scrub, repair) is read from the parts that
// already keep it, at scrape time, so nothing is kept twice. Label values come from bounded
// sets only: route patterns (never paths), peer addresses (from --peers), result words, and
// folder names for the per-folder gauges, at most FOLDER_SERIES_MAX folders.
import { Hono as HonoApp, type Context, type Hono, type MiddlewareHandler } from "hono";
import { matchedRoutes } from "hono/route";
import { Counter, Gauge, Histogram, Registry, collectDefaultMetrics } from "prom-client";
import { blake3BackendName } from "../core/blake3.ts";
import type { CommitResult, DsyncNode, VerifyReport } from "../node/node.ts";
import type { GcReport } from "../node/gc.ts";
import type { Repairer } from "../node/repair.ts";
import type { Scrubber } from "../node/scrub.ts";
import type { Replicator } from "../replication/replicator.ts";
import { bearerToken, tokensEqual } from "./auth.ts";
import { MetadataUnavailableError } from "../node/metadata-unavailable.ts";
import type { TokenStore } from "../node/token-store.ts";
import type { ConsensusStatus } from "../consensus/strong-consensus.ts";

/** Folders exported with a `folder` label, the most recently changed first; the rest are counted in dsync_metrics_folders_omitted. */
export const FOLDER_SERIES_MAX = 100;

/** Seconds; from a cached 404 to a large batch upload on a slow disk. */
const DURATION_BUCKETS_SECONDS = [0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30, 60];

/**
 * prom-client's default metrics kept under Bun. Left out: nodejs_active_handles/_requests/
 * _resources (Bun has no process._getActiveHandles: they export no samples), nodejs_heap_space_*
 * (V8 heap spaces; Bun's JavaScriptCore reports zeros), nodejs_gc_duration_seconds (Bun emits no
 * "gc" performance entries, so it never moves), nodejs_version_info (the Node.js version Bun
 * imitates, not the runtime; dsync_build_info names the runtime).
 */
export const RUNTIME_METRICS = [
  "process_cpu_user_seconds_total",
  "process_cpu_system_seconds_total",
  "process_cpu_seconds_total",
  "process_start_time_seconds",
  "process_resident_memory_bytes",
  "process_virtual_memory_bytes",
  "process_heap_bytes",
  "process_open_fds",
  "process_max_fds",
  "nodejs_eventloop_lag_seconds",
  "nodejs_eventloop_lag_p99_seconds",
  "nodejs_heap_size_total_bytes",
  "nodejs_heap_size_used_bytes",
  "nodejs_external_memory_bytes",
] as const;

export interface MetricsSources {
  node: DsyncNode;
  version: string;
  replicator?: Replicator;
  repairer?: Repairer;
  scrubber?: Scrubber;
  /** The strong mode's Raft group (src/consensus/raft-driver.ts): its status and the leader changes it saw. */
  consensus?: { status(): ConsensusStatus; readonly leaderChanges: number };
}

type CommitOrigin = "push" | "restore";

/** Request and response body bytes, noted where bodies are read and written (http-body.ts). */
const bodyBytes = new WeakMap<Request, { received: number; sent: number }>();

/** Notes body bytes of a request (read) or its answer (written), for dsync_http_*_bytes_total. */
export function countBodyBytes(c: Context, direction: "received" | "sent", bytes: number): void {
  const counts = bodyBytes.get(c.req.raw) ?? { received: 0, sent: 0 };
  counts[direction] += bytes;
  bodyBytes.set(c.req.raw, counts);
}

/** The route pattern that answered (never the path itself), or "unmatched". */
function routeOf(c: Context): string {
  // Handlers are registered per method; middleware (app.use) as "ALL". The last handler matched
  // names the route even when a middleware (auth, a bad parameter) answered before it ran.
  const handlers = matchedRoutes(c).filter((route) => route.method !== "ALL");
  return handlers.at(-1)?.path ?? "unmatched";
}

/** Which side of the API a route serves: objects for clients, the peer routes, or the rest. */
function kindOf(route: string): "objects" | "peer" | "api" {
  if (route.startsWith("/v1/peer/")) return "peer";
  if (route.startsWith("/v1/objects")) return "objects";
  return "api";
}

/** The methods the API answers; any other (the server takes some thirty) is counted as "other". */
const METHOD_LABELS = new Set(["GET", "HEAD", "POST", "PUT", "DELETE"]);

function methodOf(c: Context): string {
  return METHOD_LABELS.has(c.req.method) ? c.req.method : "other";
}

function failureResult(status: number): "rejected" | "failed" {
  return status >= 500 ? "failed" : "rejected";
}

/** A folder's standing is left out (an empty list) when the metadata went away mid-scrape. */
function skipWhenUnavailable(error: unknown): [] {
  if (error instanceof MetadataUnavailableError) return [];
  throw error;
}

export class NodeMetrics {
  readonly registry = new Registry();
  private readonly sources: MetricsSources;
  private refreshing: Promise<void> = Promise.resolve();
  // From the last scrape that could read the metadata, for the series that need it.
  private logicalBytes = 0;
  private folderNames: string[] = [];

  private readonly requestDuration: Histogram<"route" | "method" | "status">;
  private readonly receivedBytes: Counter<"kind">;
  private readonly sentBytes: Counter<"kind">;
  private readonly pushes: Counter<"result">;
  private readonly commits: Counter<"origin" | "outcome">;
  private readonly conflicts: Counter<"origin">;
  private readonly gcRuns: Counter<"result">;
  private readonly gcFreedBytes: Counter;
  private readonly gcDeletedObjects: Counter;
  private readonly gcPrunedVersions: Counter;
  private readonly verifyRuns: Counter;
  private readonly verified: Counter<"by">;
  private readonly corruptFound: Counter<"by">;
  // Read at scrape time.
  private readonly pulls: Counter<"result">;
  private readonly replicationVersions: Counter;
  private readonly notices: Counter<"direction">;
  private readonly storedNotices: Counter<"direction">;
  private readonly fetchedAhead: Counter<"unit">;
  private readonly gauges: Record<string, Gauge<string>>;
  private readonly mirrored: Record<string, Counter<string>>;

  constructor(sources: MetricsSources) {
    this.sources = sources;
    const registers = [this.registry];
    const counter = <L extends string>(name: string, help: string, labelNames: L[] = []) => new Counter<L>({ name, help, labelNames, registers });
    const gauge = (name: string, help: string, labelNames: string[] = []) => new Gauge({ name, help, labelNames, registers });

    new Gauge({ name: "dsync_build_info", help: "Always 1; the labels say which dsync runs: version, BLAKE3 backend, runtime.", labelNames: ["version", "blake3", "runtime"], registers }).set(
      { version: sources.version, blake3: blake3BackendName, runtime: `bun ${Bun.version}` },
      1,
    );
    this.requestDuration = new Histogram({
      name: "dsync_http_request_duration_seconds",
      help: "Time to answer an API request, by route pattern, method and status code.",
      labelNames: ["route", "method", "status"],
      buckets: DURATION_BUCKETS_SECONDS,
      registers,
    });
    this.receivedBytes = counter("dsync_http_received_bytes_total", "Request body bytes read, as sent (before decompression), by kind of route.", ["kind"]);
    this.sentBytes = counter("dsync_http_sent_bytes_total", "Object and history bodies sent (msgpack batches and raw objects, after compression), by kind of route.", ["kind"]);
    this.pushes = counter("dsync_pushes_total", "Commits of pushed trees (POST /v1/folders/:folder/commit) by result.", ["result"]);
    this.commits = counter("dsync_commits_total", "Head changes made on this node, by origin and outcome.", ["origin", "outcome"]);
    this.conflicts = counter("dsync_conflicts_total", "Paths where a merge kept both sides (a conflict copy was made), by origin.", ["origin"]);
    this.gcRuns = counter("dsync_gc_runs_total", "Garbage collections by result.", ["result"]);
    this.gcFreedBytes = counter("dsync_gc_freed_bytes_total", "Bytes the data folder shrank by on the file system through gc.");
    this.gcDeletedObjects = counter("dsync_gc_deleted_objects_total", "Objects deleted by gc.");
    this.gcPrunedVersions = counter("dsync_gc_pruned_versions_total", "Versions removed by retention during gc.");
    this.verifyRuns = counter("dsync_verify_runs_total", "Full verifications (POST /v1/verify) completed.");
    this.verified = counter("dsync_objects_verified_total", "Stored objects re-read and re-hashed, by what checked them.", ["by"]);
    this.corruptFound = counter("dsync_objects_corrupt_found_total", "Objects found corrupt (and quarantined), by what found them.", ["by"]);
    this.pulls = counter("dsync_replication_pulls_total", "Replication pulls from peers: ok (the peer's head integrated) or failed.", ["result"]);
    this.replicationVersions = counter("dsync_replication_versions_received_total", "Versions received from peers and recorded.");
    this.notices = counter("dsync_replication_notices_total", "Head-change notices sent to and received from peers.", ["direction"]);
    this.storedNotices = counter("dsync_replication_stored_notices_total", "Stored-objects notices (a push's upload groups, for fetching ahead) sent to and received from peers.", ["direction"]);
    this.fetchedAhead = counter("dsync_replication_fetched_ahead_total", "Objects and their bytes fetched from peers ahead of a head, on their stored-objects notices.", ["unit"]);
    this.mirrored = {
      scrubBytes: counter("dsync_scrub_verified_bytes_total", "Bytes re-read by the background scrub."),
      scrubPasses: counter("dsync_scrub_passes_total", "Complete passes of the background scrub over the store."),
      repaired: counter("dsync_objects_repaired_total", "Quarantined objects stored again from a good copy (a peer's or a push's)."),
      rejectedCopies: counter("dsync_repair_rejected_copies_total", "Copies a peer sent for repair that did not hash to their id."),
      peerBytes: counter("dsync_peer_fetched_bytes_total", "Object bytes pulls brought from each peer.", ["peer"]),
      peerObjects: counter("dsync_peer_fetched_objects_total", "Objects pulls brought from each peer.", ["peer"]),
      raftLeaderChanges: counter("dsync_raft_leader_changes_total", "Times this node saw the strong mode's Raft group get a new leader (itself included)."),
    };
    this.gauges = {
      folders: gauge("dsync_folders", "Folders on this node."),
      heads: gauge("dsync_heads", "Folders that have a head (at least one version)."),
      versions: gauge("dsync_versions", "Versions kept, all folders."),
      omitted: gauge("dsync_metrics_folders_omitted", `Folders left out of the per-folder series (only the ${FOLDER_SERIES_MAX} most recently changed are exported).`),
      lastChange: gauge("dsync_folder_last_change_timestamp_seconds", "Time of the write that made the folder's head (its clock at the writer, the same on every node).", ["folder"]),
      folderVersions: gauge("dsync_folder_versions", "Versions kept of the folder.", ["folder"]),
      folderFiles: gauge("dsync_folder_files", "Files in the folder's head.", ["folder"]),
      folderBytes: gauge("dsync_folder_bytes", "Bytes of the files in the folder's head.", ["folder"]),
      objects: gauge("dsync_store_objects", "Objects stored (chunks, file and tree nodes, versions)."),
      objectBytes: gauge("dsync_store_object_bytes", "Bytes of the stored objects, uncompressed."),
      packBytes: gauge("dsync_store_pack_bytes", "Bytes the stored objects take in pack files (compressed where it paid)."),
      metadataBytes: gauge("dsync_metadata_bytes", "Bytes the metadata store takes where that is known (metadata.sqlite and its log); the label says which store.", ["backend"]),
      metadataUp: gauge("dsync_metadata_up", "1 when the metadata store answered a one-row read within 3 s at this scrape, else 0 (its database server is away)."),
      metadataChecked: gauge("dsync_metadata_checked_nodes", "Objects the metadata marks complete (checked with everything below them), which later commits do not read again."),
      logicalBytes: gauge("dsync_versions_logical_bytes", "Bytes of the files of every kept version, summed: what storing each version in full would take."),
      dedupRatio: gauge("dsync_dedup_ratio", "dsync_versions_logical_bytes / dsync_store_object_bytes (0 while nothing is stored)."),
      quarantined: gauge("dsync_objects_quarantined", "Objects found corrupt and not yet stored again from a good copy."),
      unrepairable: gauge("dsync_objects_unrepairable", "Quarantined objects for which no peer had a good copy at the last attempt."),
      repairPending: gauge("dsync_repair_pending", "Quarantined objects waiting for a repair attempt."),
      raftTerm: gauge("dsync_raft_term", "The latest Raft term this node has seen (strong mode)."),
      raftCommit: gauge("dsync_raft_commit_index", "The highest log index this node knows committed on a majority."),
      raftApplied: gauge("dsync_raft_applied_index", "The highest log index this node has applied to its metadata."),
      raftIsLeader: gauge("dsync_raft_is_leader", "1 while this node leads the Raft group, else 0."),
      scrubRate: gauge("dsync_scrub_rate_bytes_per_second", "Rate of the background scrub; 0 when it is off."),
      peers: gauge("dsync_peers", "Peers configured (--peers)."),
      peerUp: gauge("dsync_peer_up", "1 when the last exchange with the peer succeeded, else 0.", ["peer"]),
      peerContact: gauge("dsync_peer_last_contact_timestamp_seconds", "Time of the last successful exchange with the peer (absent before the first).", ["peer"]),
      peerLag: gauge("dsync_peer_replication_lag_seconds", "How long this node has lacked writes the peer has (longest over folders); 0 when it lacks none.", ["peer"]),
      peerMissing: gauge("dsync_peer_missing_writes", "Writes the peer has that this node lacks, summed over folders (from the peer's last listing or notice).", ["peer"]),
      peerLacking: gauge("dsync_peer_lacking_writes", "Writes this node has that the peer lacks, summed over folders.", ["peer"]),
      peerFolders: gauge("dsync_peer_folders", "Folders by how they stand against the peer: in_sync, behind, ahead, diverged, unknown.", ["peer", "state"]),
    };
    // Every series of a bounded label set exists from the start at 0, so a rate or an alert on
    // one is defined before the first event rather than absent.
    for (const kind of ["objects", "peer", "api"]) {
      this.receivedBytes.inc({ kind }, 0);
      this.sentBytes.inc({ kind }, 0);
    }
    for (const result of ["ok", "merged", "rejected", "failed"]) this.pushes.inc({ result }, 0);
    for (const origin of ["push", "restore"]) {
      for (const outcome of ["fast_forward", "merged"]) this.commits.inc({ origin, outcome }, 0);
      this.conflicts.inc({ origin }, 0);
    }
    for (const result of ["ok", "dry_run", "failed"]) this.gcRuns.inc({ result }, 0);
    this.verified.inc({ by: "verify" }, 0);
    this.corruptFound.inc({ by: "verify" }, 0);
    addRuntimeMetrics(this.registry);
  }

  /** Times every request and counts its body bytes; the outermost middleware, so 401s and 404s count too. */
  readonly middleware: MiddlewareHandler = async (c, next) => {
    const startedMs = performance.now();
    try {
      await next();
    } finally {
      const route = routeOf(c);
      const status = c.res.status;
      this.requestDuration.observe({ route, method: methodOf(c), status: String(status) }, (performance.now() - startedMs) / 1000);
      const counts = bodyBytes.get(c.req.raw);
      if (counts) {
        const kind = kindOf(route);
        if (counts.received > 0) this.receivedBytes.inc({ kind }, counts.received);
        if (counts.sent > 0) this.sentBytes.inc({ kind }, counts.sent);
      }
      if (status >= 400) {
        // Successes are counted with their outcome by the handlers (observeCommit, observeGc).
        if (route === "/v1/folders/:folder/commit") this.pushes.inc({ result: failureResult(status) });
        if (route === "/v1/gc") this.gcRuns.inc({ result: "failed" });
      }
    }
  };

  /** A commit made by the API: a push (its result counted too) or a restore. */
  observeCommit(origin: CommitOrigin, result: CommitResult): void {
    const outcome = result.mergedWith ? "merged" : "fast_forward";
    if (origin === "push") this.pushes.inc({ result: outcome === "merged" ? "merged" : "ok" });
    this.commits.inc({ origin, outcome });
    this.conflicts.inc({ origin }, result.conflicts.length);
  }

  observeGc(report: GcReport): void {
    this.gcRuns.inc({ result: report.dryRun ? "dry_run" : "ok" });
    if (report.dryRun) return;
    this.gcFreedBytes.inc(report.bytesReclaimed);
    this.gcDeletedObjects.inc(report.objectsDeleted);
    this.gcPrunedVersions.inc(report.versionsPruned);
  }

  observeVerify(report: VerifyReport): void {
    this.verifyRuns.inc();
    this.verified.inc({ by: "verify" }, report.objectsChecked);
    this.corruptFound.inc({ by: "verify" }, report.corrupt.length);
  }

  /** The exposition in the Prometheus text format, with every read-at-scrape value fresh. */
  async exposition(): Promise<{ contentType: string; text: string }> {
    // One scrape at a time, refresh and rendering together: another scrape's refresh resets
    // series before it sets them again, and must not run while this one renders.
    const rendered = this.refreshing.then(async () => {
      await this.refresh();
      return this.registry.metrics();
    });
    this.refreshing = rendered.then(
      () => {},
      () => {},
    );
    return { contentType: this.registry.contentType, text: await rendered };
  }

  private async refresh(): Promise<void> {
    const { node, replicator, repairer, scrubber } = this.sources;
    const g = this.gauges;
    const m = this.mirrored;

    // While the metadata is away the scrape still answers, with dsync_metadata_up 0: the series
    // read from the metadata keep the values of the last scrape that could read them, and the
    // rest (objects, scrub, repair, peers, process) are as fresh as ever.
    let metadataUp = (await node.metadataAvailability()).available;
    if (metadataUp) {
      try {
        await this.refreshFromMetadata();
      } catch (error) {
        if (!(error instanceof MetadataUnavailableError)) throw error;
        metadataUp = false;
      }
    }
    g.metadataUp!.set(metadataUp ? 1 : 0);

    const stored = await node.objectStats();
    g.objects!.set(stored.objects);
    g.objectBytes!.set(stored.rawBytes);
    g.packBytes!.set(stored.storedBytes);
    g.dedupRatio!.set(stored.rawBytes > 0 ? this.logicalBytes / stored.rawBytes : 0);

    const corruption = await node.corruptionStatus();
    g.quarantined!.set(corruption.quarantined);
    g.unrepairable!.set(corruption.unrepairable);
    setCounter(m.repaired!, {}, corruption.repaired);
    const repair = repairer?.stats;
    g.repairPending!.set(repair?.pending ?? 0);
    setCounter(m.rejectedCopies!, {}, repair?.rejectedCopies ?? 0);
    const scrub = scrubber?.stats;
    g.scrubRate!.set(scrubber?.enabled ? scrub!.bytesPerSecond : 0);
    setCounter(m.scrubBytes!, {}, scrub?.checkedBytes ?? 0);
    setCounter(m.scrubPasses!, {}, scrub?.passes ?? 0);
    setCounter(this.verified, { by: "scrub" }, scrub?.checkedObjects ?? 0);
    setCounter(this.corruptFound, { by: "scrub" }, scrub?.corruptFound ?? 0);

    const raft = this.sources.consensus;
    const consensus = raft?.status();
    g.raftTerm!.set(consensus?.term ?? 0);
    g.raftCommit!.set(consensus?.commit ?? 0);
    g.raftApplied!.set(consensus?.applied ?? 0);
    g.raftIsLeader!.set(consensus?.role === "leader" && consensus.leader?.id === consensus.nodeId ? 1 : 0);
    setCounter(m.raftLeaderChanges!, {}, raft?.leaderChanges ?? 0);

    const stats = replicator?.stats;
    setCounter(this.pulls, { result: "ok" }, stats?.pullsCompleted ?? 0);
    setCounter(this.pulls, { result: "failed" }, stats?.pullFailures ?? 0);
    setCounter(this.replicationVersions, {}, stats?.versionsReceived ?? 0);
    setCounter(this.notices, { direction: "sent" }, stats?.noticesSent ?? 0);
    setCounter(this.notices, { direction: "received" }, stats?.noticesReceived ?? 0);
    setCounter(this.storedNotices, { direction: "sent" }, stats?.storedNoticesSent ?? 0);
    setCounter(this.storedNotices, { direction: "received" }, stats?.storedNoticesReceived ?? 0);
    setCounter(this.fetchedAhead, { unit: "objects" }, stats?.objectsFetchedAhead ?? 0);
    setCounter(this.fetchedAhead, { unit: "bytes" }, stats?.bytesFetchedAhead ?? 0);
    // Replication's head changes join those the API made in one counter.
    setCounter(this.commits, { origin: "replication", outcome: "fast_forward" }, stats?.fastForwards ?? 0);
    setCounter(this.commits, { origin: "replication", outcome: "merged" }, stats?.merges ?? 0);
    setCounter(this.conflicts, { origin: "replication" }, stats?.conflicts ?? 0);

    for (const name of ["peerUp", "peerContact", "peerLag", "peerMissing", "peerLacking", "peerFolders"]) g[name]!.reset();
    m.peerBytes!.reset();
    m.peerObjects!.reset();
    const peers = replicator?.peerStates() ?? [];
    g.peers!.set(peers.length);
    if (!replicator || peers.length === 0) return;
    const standing = new Map(peers.map((peer) => [peer.address, { lagMs: 0, missing: 0, lacking: 0, states: new Map<string, number>() }]));
    // Folders a peer has and this node does not yet are where it lags most.
    const names = new Set(this.folderNames);
    for (const peer of peers) for (const name of peer.folders.keys()) names.add(name);
    for (const name of names) {
      // A folder's standing needs its local head: while the metadata is away, it is left out.
      const statuses = metadataUp ? await replicator.folderStatus(name).catch(skipWhenUnavailable) : [];
      for (const status of statuses) {
        const sum = standing.get(status.peer);
        if (!sum) continue;
        sum.lagMs = Math.max(sum.lagMs, status.lagMs);
        sum.missing += status.behindWrites;
        sum.lacking += status.aheadWrites;
        const state = status.state.replace("-", "_");
        sum.states.set(state, (sum.states.get(state) ?? 0) + 1);
      }
    }
    for (const peer of peers) {
      const labels = { peer: peer.address };
      const sum = standing.get(peer.address)!;
      g.peerUp!.set(labels, peer.reachable === true ? 1 : 0);
      if (peer.lastContactMs !== null) g.peerContact!.set(labels, peer.lastContactMs / 1000);
      g.peerLag!.set(labels, sum.lagMs / 1000);
      g.peerMissing!.set(labels, sum.missing);
      g.peerLacking!.set(labels, sum.lacking);
      for (const state of ["in_sync", "behind", "ahead", "diverged", "unknown"]) g.peerFolders!.set({ ...labels, state }, sum.states.get(state) ?? 0);
      m.peerBytes!.inc(labels, peer.bytesFetched);
      m.peerObjects!.inc(labels, peer.objectsFetched);
    }
  }

  /** The series read from the metadata store: folders, heads, versions, the store's own size. */
  private async refreshFromMetadata(): Promise<void> {
    const { node } = this.sources;
    const g = this.gauges;
    const folders = await node.listFolders();
    const totals = new Map((await node.versionTotals()).map((row) => [row.folder, row]));
    g.folders!.set(folders.length);
    g.heads!.set(folders.filter((folder) => folder.head !== null).length);
    let versions = 0;
    let logicalBytes = 0;
    for (const row of totals.values()) {
      versions += row.versions;
      logicalBytes += row.totalBytes;
    }
    g.versions!.set(versions);
    for (const name of ["lastChange", "folderVersions", "folderFiles", "folderBytes"]) g[name]!.reset();
    const heads = [];
    for (const folder of folders) {
      const head = folder.head ? await node.getVersion(folder.name, folder.head) : undefined;
      if (head) heads.push({ folder, head });
    }
    heads.sort((a, b) => b.head.hlcWallMs - a.head.hlcWallMs || (a.folder.name < b.folder.name ? -1 : 1));
    const exported = heads.slice(0, FOLDER_SERIES_MAX);
    g.omitted!.set(heads.length - exported.length);
    for (const { folder, head } of exported) {
      const labels = { folder: folder.name };
      g.lastChange!.set(labels, head.hlcWallMs / 1000);
      g.folderVersions!.set(labels, totals.get(folder.name)?.versions ?? 0);
      g.folderFiles!.set(labels, head.files);
      g.folderBytes!.set(labels, head.totalBytes);
    }
    g.logicalBytes!.set(logicalBytes);
    this.logicalBytes = logicalBytes;
    this.folderNames = folders.map((folder) => folder.name);
    const metadata = await node.metadataStat();
    g.metadataBytes!.reset();
    if (metadata.sizeBytes !== null) g.metadataBytes!.set({ backend: metadata.backend }, metadata.sizeBytes);
    g.metadataChecked!.set(metadata.checkedNodes);
  }
}

/** Sets one series of a counter read from elsewhere (a running total kept by its owner) to its current value. */
function setCounter<L extends string>(counter: Counter<L>, labels: Partial<Record<L, string>>, value: number): void {
  if (Object.keys(labels).length === 0) counter.reset();
  else counter.remove(labels);
  counter.inc(labels, value);
}

/** prom-client's default metrics, registered in a scratch registry, and only RUNTIME_METRICS moved over. */
function addRuntimeMetrics(registry: Registry): void {
  const scratch = new Registry();
  collectDefaultMetrics({ register: scratch });
  for (const name of RUNTIME_METRICS) {
    const metric = scratch.getSingleMetric(name);
    if (metric) registry.registerMetric(metric);
  }
}

/**
 * GET /metrics. With neither a client token nor a metrics token configured it is open, like the
 * rest of the API on such a node; otherwise either token is accepted, and the metrics token
 * opens nothing else.
 */
export function registerMetricsRoute(
  app: Hono,
  metrics: NodeMetrics,
  credentials: { token?: string; metricsToken?: string; /** Stored tokens: an admin one is accepted too. */ tokens?: TokenStore },
): void {
  const accepted = [credentials.token, credentials.metricsToken].filter((token): token is string => token !== undefined);
  app.get("/metrics", async (c) => {
    if (accepted.length > 0) {
      const given = bearerToken(c.req.header("authorization"));
      // Every accepted token is compared, so the time taken does not say which one matched.
      const matches = given === undefined ? [] : accepted.map((token) => tokensEqual(given, token));
      if (!matches.includes(true) && given !== undefined && credentials.tokens) matches.push((await credentials.tokens.authenticate(given, Date.now()))?.role === "admin");
      if (!matches.includes(true)) return c.json({ error: "missing or wrong token (send Authorization: Bearer <metrics or client token>)" }, 401);
    }
    const { contentType, text } = await metrics.exposition();
    return c.body(text, 200, { "content-type": contentType });
  });
}

/**
 * The app of a metrics-only address (`serve --metrics-listen`): GET /metrics without a token,
 * nothing else. Only loopback (or an address the operator declared trusted with --insecure)
 * may serve it; serve.ts's caller checks that.
 */
export function createMetricsOnlyApp(metrics: NodeMetrics): Hono {
  const app = new HonoApp();
  app.use("*", metrics.middleware);
  registerMetricsRoute(app, metrics, {});
  app.notFound((c) => c.json({ error: "this address serves GET /metrics only" }, 404));
  return app;
}
