// Real `dsync serve` processes forming one Raft group on 127.0.0.1, and clients of a strong
// folder whose every operation goes into a linearizability history: the harness of
// test/e2e/strong-*.test.ts.
//
// Each node listens on a fixed port (so a node killed with -9 comes back where its peers look for
// it) and has the full --peers list, optionally through a mesh of cuttable proxies (one per
// directed link) so a test can partition it. Clients talk to the nodes directly.
import { join } from "node:path";
import { chunkingDescriptor, DEFAULT_CHUNKER_PARAMS } from "../../src/core/fastcdc.ts";
import { startProxyMesh, type ProxyMesh } from "./cuttable-proxy.ts";
import { freePort, runCli, startNode, tempDir, type NodeProcess } from "./processes.ts";
import { writeTree } from "./trees.ts";
import { describeResult, checkLinearizable } from "./linearizability/checker.ts";
import { HistoryRecorder } from "./linearizability/history.ts";
import {
  headRegisterModel,
  lostAcknowledgedPushes,
  PUSH,
  pushOutputOfCommit,
  pushOutputsFromVersions,
  READ,
  resolveIndeterminatePushes,
  type HeadInput,
  type HeadOperation,
  type PushOutput,
  type VersionSummary,
} from "./linearizability/head-register.ts";

export const CLUSTER_TOKEN = "strong-cluster-test-token";

/** The consensus part of GET /v1/status (src/consensus/strong-consensus.ts, ConsensusStatus). */
export interface ConsensusStatusJson {
  nodeId: string;
  role: "follower" | "preCandidate" | "candidate" | "leader";
  term: number;
  leader: { id: string; address: string | null } | null;
  commit: number;
  applied: number;
  lastIndex: number;
  members: { id: string; address: string | null; match: number | null; lastContactMs: number | null; self: boolean }[];
  lastLeaderContactMs: number | null;
}

export interface StrongCluster {
  readonly size: number;
  /** Where clients reach node i (directly, never through the proxies). */
  readonly urls: string[];
  readonly nodeIds: string[];
  /** Where node i keeps its data. */
  readonly dataDirs: string[];
  readonly mesh: ProxyMesh | null;
  isRunning(i: number): boolean;
  /** Starts node i on its data folder; `peers` in place of the other nodes' addresses as its --peers. */
  start(i: number, peers?: readonly string[]): Promise<void>;
  kill9(i: number): Promise<void>;
  /** Stops node i's process where it stands (SIGSTOP) or lets it go on (SIGCONT): its sockets stay open, its timers late. */
  pause(i: number): void;
  resume(i: number): void;
  /** Node i's consensus status, or null when it does not answer within the wait. */
  consensus(i: number, timeoutMs?: number): Promise<ConsensusStatusJson | null>;
  /** The index of the node that is leader by its own account and whose leadership a majority of running nodes reports; null when there is none now. */
  leader(): Promise<number | null>;
  /** Polls until there is such a leader (bounded). */
  waitForLeader(what?: string, capMs?: number): Promise<number>;
  /** What node i printed (for failure messages). */
  output(i: number): string;
  stopAll(): Promise<void>;
}

export async function startStrongCluster(options: { size?: number; proxies?: boolean; extraArgs?: string[]; argsOf?: (i: number) => string[]; dataDirOf?: (i: number) => string | undefined } = {}): Promise<StrongCluster> {
  const size = options.size ?? 3;
  const ports: number[] = [];
  for (let i = 0; i < size; i++) ports.push(await freePort());
  const urls = ports.map((port) => `http://127.0.0.1:${port}`);
  const nodeIds = ports.map((_, i) => `node-${String.fromCharCode(97 + i)}`);
  const root = tempDir("linearizability-cluster-");
  const dataDirs = nodeIds.map((id, i) => options.dataDirOf?.(i) ?? join(root, id));
  const mesh = options.proxies ? await startProxyMesh(ports) : null;
  const processes: (NodeProcess | null)[] = nodeIds.map(() => null);
  const outputs: string[] = nodeIds.map(() => "");

  const start = async (i: number, peersGiven?: readonly string[]) => {
    if (processes[i]) throw new Error(`${nodeIds[i]} is running already`);
    const peers = peersGiven ?? (mesh ? mesh.peersOf(i) : urls.filter((_, j) => j !== i));
    processes[i] = await startNode({
      dataDir: dataDirs[i],
      listen: `127.0.0.1:${ports[i]}`,
      args: ["--node-id", nodeIds[i], "--peers", peers.join(","), "--cluster-token", CLUSTER_TOKEN, ...(options.extraArgs ?? []), ...(options.argsOf?.(i) ?? [])],
    });
  };
  const kill9 = async (i: number) => {
    const node = processes[i];
    if (!node) return;
    outputs[i] += node.output();
    processes[i] = null;
    await node.kill9();
  };
  const consensus = async (i: number, timeoutMs = 2_000): Promise<ConsensusStatusJson | null> => {
    if (!processes[i]) return null;
    try {
      const response = await fetch(`${urls[i]}/v1/status`, { signal: AbortSignal.timeout(timeoutMs) });
      if (response.status !== 200) return null;
      return ((await response.json()) as { consensus: ConsensusStatusJson | null }).consensus;
    } catch {
      return null;
    }
  };
  const leader = async (): Promise<number | null> => {
    const statuses = await Promise.all(nodeIds.map((_, i) => consensus(i)));
    for (let i = 0; i < size; i++) {
      const status = statuses[i];
      if (!status || status.role !== "leader") continue;
      const backing = statuses.filter((other) => other && other.leader?.id === status.nodeId && other.term === status.term).length;
      if (backing > size / 2) return i;
    }
    return null;
  };

  await Promise.all(nodeIds.map((_, i) => start(i)));
  return {
    size,
    urls,
    nodeIds,
    dataDirs,
    mesh,
    isRunning: (i) => processes[i] !== null,
    start,
    kill9,
    pause(i) {
      processes[i]?.process.kill("SIGSTOP");
    },
    resume(i) {
      processes[i]?.process.kill("SIGCONT");
    },
    consensus,
    leader,
    async waitForLeader(what = "a leader backed by a majority", capMs = 20_000) {
      const deadline = Date.now() + capMs;
      for (;;) {
        const index = await leader();
        if (index !== null) return index;
        if (Date.now() > deadline) {
          const statuses = await Promise.all(nodeIds.map((_, i) => consensus(i)));
          throw new Error(`timed out waiting for ${what}: ${JSON.stringify(statuses.map((s) => s && { node: s.nodeId, role: s.role, term: s.term, leader: s.leader?.id }))}`);
        }
        await Bun.sleep(50);
      }
    },
    output: (i) => outputs[i] + (processes[i]?.output() ?? ""),
    async stopAll() {
      await Promise.all(
        processes.map(async (node, i) => {
          if (!node) return;
          outputs[i] += node.output();
          processes[i] = null;
          // A paused process takes no SIGTERM until it runs again.
          node.process.kill("SIGCONT");
          await node.stop().catch(() => undefined);
        }),
      );
      await mesh?.stop();
    },
  };
}

async function post(url: string, body: unknown, timeoutMs: number): Promise<{ status: number; body: any; headers: Headers }> {
  const response = await fetch(url, {
    method: "POST",
    headers: { "content-type": "application/json" },
    body: JSON.stringify(body),
    signal: AbortSignal.timeout(timeoutMs),
  });
  const text = await response.text();
  let parsed: unknown = text;
  try {
    parsed = JSON.parse(text);
  } catch {}
  return { status: response.status, body: parsed, headers: response.headers };
}

/** Creates a strong folder through node `url` (any member: it is forwarded to the leader), retrying through elections (bounded). */
export async function createStrongFolder(url: string, name: string, capMs = 20_000): Promise<void> {
  const deadline = Date.now() + capMs;
  for (;;) {
    const reply = await post(`${url}/v1/folders`, { name, consistency: "strong" }, 10_000).catch((error: Error) => ({ status: 0, body: error.message, headers: new Headers() }));
    if (reply.status === 200 || reply.status === 201) return;
    if (reply.status !== 503 && reply.status !== 0) throw new Error(`creating strong folder ${name} on ${url}: ${reply.status} ${JSON.stringify(reply.body)}`);
    if (Date.now() > deadline) throw new Error(`timed out creating strong folder ${name} on ${url}: ${reply.status} ${JSON.stringify(reply.body)}`);
    await Bun.sleep(100);
  }
}

/** What a writer commits: the root of a tree every member holds (pushed once), and how it was cut. */
export interface CommitContent {
  root: string;
  chunking: string;
  files: number;
  bytes: number;
}

/** How client operations ended, beyond what the history keeps: every answer that was neither a success nor a 503, by status. */
export interface ClientTally {
  acknowledgedPushes: number;
  reads: number;
  unavailable: number;
  indeterminate: number;
  refusedConnections: number;
  unexpected: string[];
}

/**
 * Clients of one strong folder: pushes (commits of a known tree with a fresh message and the
 * head the client last saw as parent) and linearizable reads, each recorded in the history.
 * A push answered 200 is acknowledged; a 503, a timeout or a dropped connection leaves it
 * indeterminate (it may have been proposed and commit later); a refused connection never
 * reached a node. Any other answer is unexpected and kept in the tally.
 */
export class StrongClients {
  readonly recorder = new HistoryRecorder();
  readonly tally: ClientTally = { acknowledgedPushes: 0, reads: 0, unavailable: 0, indeterminate: 0, refusedConnections: 0, unexpected: [] };
  /** When each push was acknowledged (performance.now()), to see writes resume after a fault. */
  readonly acknowledgedAtMs: number[] = [];
  private nextMessage = 1;
  private readonly lastSeen = new Map<string, string | null>();

  constructor(
    readonly folder: string,
    private readonly content: CommitContent,
    private readonly requestTimeoutMs = 5_000,
  ) {}

  /** One push through the node at `url`; the output when acknowledged, else null. */
  async push(clientId: string, url: string, timeoutMs = this.requestTimeoutMs): Promise<PushOutput | null> {
    const message = `op-${this.nextMessage++}`;
    const parent = this.lastSeen.get(clientId) ?? null;
    const handle = this.recorder.invoke<HeadInput, PushOutput>(clientId, PUSH, { folder: this.folder, message });
    try {
      const reply = await post(
        `${url}/v1/folders/${this.folder}/commit`,
        { root: this.content.root, parent, message, chunking: this.content.chunking, files: this.content.files, bytes: this.content.bytes },
        timeoutMs,
      );
      if (reply.status === 200) {
        const output = pushOutputOfCommit(reply.body);
        handle.ok(output);
        this.lastSeen.set(clientId, output.after);
        this.tally.acknowledgedPushes++;
        this.acknowledgedAtMs.push(performance.now());
        return output;
      }
      handle.unknown();
      if (reply.status === 503) this.tally.unavailable++;
      else this.tally.unexpected.push(`push ${message} via ${url}: ${reply.status} ${JSON.stringify(reply.body)}`);
      return null;
    } catch (error) {
      if ((error as { code?: string }).code === "ECONNREFUSED") {
        // Nothing listened there: the request never reached a node.
        handle.fail();
        this.tally.refusedConnections++;
      } else {
        handle.unknown();
        this.tally.indeterminate++;
      }
      return null;
    }
  }

  /** A linearizable read of the head through the node at `url`; the head when answered, else undefined. */
  async read(clientId: string, url: string, timeoutMs = this.requestTimeoutMs): Promise<string | null | undefined> {
    const handle = this.recorder.invoke<HeadInput, string | null>(clientId, READ, { folder: this.folder });
    try {
      const response = await fetch(`${url}/v1/folders/${this.folder}`, { signal: AbortSignal.timeout(timeoutMs) });
      const body = (await response.json().catch(() => null)) as { head: string | null } | null;
      if (response.status === 200 && body) {
        handle.ok(body.head);
        this.lastSeen.set(clientId, body.head);
        this.tally.reads++;
        return body.head;
      }
      // A read that was not answered took no effect either way.
      handle.fail();
      if (response.status === 503) this.tally.unavailable++;
      else this.tally.unexpected.push(`read via ${url}: ${response.status} ${JSON.stringify(body)}`);
      return undefined;
    } catch (error) {
      handle.fail();
      if ((error as { code?: string }).code === "ECONNREFUSED") this.tally.refusedConnections++;
      else this.tally.indeterminate++;
      return undefined;
    }
  }

  history(): HeadOperation[] {
    return this.recorder.history() as HeadOperation[];
  }
}

/** Every version of `folder` on the node at `url`, as that node holds it (`stale`: no read barrier, so a node answers from its own copy). */
export async function allVersions(url: string, folder: string, stale = true): Promise<VersionSummary[]> {
  const versions: VersionSummary[] = [];
  let cursor: string | null = null;
  for (let page = 0; page < 1_000; page++) {
    const query = new URLSearchParams({ limit: "1000" });
    if (cursor) query.set("cursor", cursor);
    if (stale) query.set("stale", "1");
    const response = await fetch(`${url}/v1/folders/${folder}/versions?${query}`, { signal: AbortSignal.timeout(10_000) });
    if (response.status !== 200) throw new Error(`versions of ${folder} on ${url}: ${response.status} ${await response.text()}`);
    const body = (await response.json()) as { versions: VersionSummary[]; next: string | null };
    versions.push(...body.versions.map((v) => ({ id: v.id, parents: v.parents, message: v.message })));
    if (body.next === null) return versions;
    cursor = body.next;
  }
  throw new Error(`versions of ${folder} on ${url}: more than 1000 pages`);
}

/** The head of `folder` on the node at `url`; `stale` reads the node's own copy. Undefined when it does not answer 200. */
export async function headAt(url: string, folder: string, stale: boolean): Promise<string | null | undefined> {
  try {
    const response = await fetch(`${url}/v1/folders/${folder}${stale ? "?stale=1" : ""}`, { signal: AbortSignal.timeout(5_000) });
    if (response.status !== 200) return undefined;
    return ((await response.json()) as { head: string | null }).head;
  } catch {
    return undefined;
  }
}

/** Polls until every given node holds the same head of `folder` by its own copy (bounded); returns it. */
export async function waitForAgreement(urls: string[], folder: string, capMs = 20_000): Promise<string | null> {
  const deadline = Date.now() + capMs;
  for (;;) {
    const heads = await Promise.all(urls.map((url) => headAt(url, folder, true)));
    if (heads[0] !== undefined && heads.every((head) => head === heads[0])) return heads[0];
    if (Date.now() > deadline) throw new Error(`nodes did not agree on ${folder}: ${JSON.stringify(heads)}`);
    await Bun.sleep(100);
  }
}

/**
 * Makes the strong folder `folder` and pushes a small tree to it through the CLI via node
 * `viaNode` (any member: a follower hands it to the leader), so every member holds a tree the
 * clients can commit again and again; the clients' history starts with that push.
 */
export async function strongFolderWithClients(cluster: StrongCluster, folder: string, viaNode: number): Promise<{ clients: StrongClients; content: CommitContent }> {
  await cluster.waitForLeader(`a leader to make ${folder}`);
  await createStrongFolder(cluster.urls[viaNode], folder);
  const dir = join(tempDir("linearizability-client-"), folder);
  writeTree(dir, { "balance.txt": "0\n", notes: { "a.txt": "a\n" } });
  const first = await runCli(["push", dir, "--remote", cluster.urls[viaNode], "--folder", folder]);
  if (first.code !== 0) throw new Error(`the first push to ${folder} failed (${first.code}): ${first.stderr}`);
  const head = await waitForAgreement(cluster.urls, folder);
  if (head === null) throw new Error(`${folder} has no head after its first push`);
  const response = await fetch(`${cluster.urls[viaNode]}/v1/folders/${folder}/versions/${head}?stale=1`, { signal: AbortSignal.timeout(10_000) });
  const version = (await response.json()) as { root: string; files: number; bytes: number; message: string };
  const content = { root: version.root, chunking: chunkingDescriptor(DEFAULT_CHUNKER_PARAMS), files: version.files, bytes: version.bytes };
  const clients = new StrongClients(folder, content);
  clients.recorder.invoke<HeadInput, PushOutput>("setup", PUSH, { folder, message: version.message }).ok({ before: null, after: head });
  return { clients, content };
}

/**
 * What a strong folder promises, checked after a run once every node runs and links are whole:
 * every node holds the same head and the same versions by its own copy; a linearizable read
 * through each node sees that head; every acknowledged push is in every node's history as it was
 * acknowledged; no answer other than a success or a 503 came; and the clients' history, its
 * unanswered pushes resolved by what the history holds, is linearizable. Returns a summary line.
 */
export async function checkStrongRun(cluster: StrongCluster, clients: StrongClients): Promise<string> {
  const folder = clients.folder;
  await cluster.waitForLeader(`a leader at the end of the run on ${folder}`);
  await waitForAgreement(cluster.urls, folder, 30_000);
  for (let i = 0; i < cluster.size; i++) {
    if ((await clients.read(`final-${i}`, cluster.urls[i])) === undefined) throw new Error(`a linearizable read of ${folder} through ${cluster.nodeIds[i]} was not answered after the run`);
  }
  const histories = await Promise.all(cluster.urls.map((url) => allVersions(url, folder)));
  const idLists = histories.map((versions) => versions.map((v) => v.id).sort().join(","));
  for (let i = 1; i < cluster.size; i++) {
    if (idLists[i] !== idLists[0]) throw new Error(`${cluster.nodeIds[i]} holds other versions of ${folder} than ${cluster.nodeIds[0]} (${histories[i].length} against ${histories[0].length})`);
  }
  const lookups = histories.map((versions) => pushOutputsFromVersions(versions));
  const history = clients.history();
  for (let i = 0; i < cluster.size; i++) {
    const lost = lostAcknowledgedPushes(history, (_folder, message) => lookups[i](message));
    if (lost.length > 0) throw new Error(`${cluster.nodeIds[i]} lost acknowledged pushes of ${folder}: ${JSON.stringify(lost)}`);
  }
  if (clients.tally.unexpected.length > 0) throw new Error(`unexpected answers: ${clients.tally.unexpected.join("; ")}`);
  const resolved = resolveIndeterminatePushes(history, (_folder, message) => lookups[0](message));
  const verdict = checkLinearizable(headRegisterModel, resolved);
  if (verdict.result !== "ok") throw new Error(describeResult(headRegisterModel, verdict, resolved.length));
  const unanswered = history.filter((o) => o.kind === PUSH && o.returnMs === Infinity).length;
  const landed = resolved.filter((o) => o.kind === PUSH && o.returnMs === Infinity).length;
  return `${folder}: ${resolved.length} operations linearizable, ${histories[0].length} versions on every node; ${unanswered} pushes unanswered, ${landed} of them landed; ${JSON.stringify(clients.tally)}`;
}

/**
 * Two writers pushing to `cluster`'s strong folder, each through the nodes of `nodes` in turn
 * (a list, or a function read at every turn for a set that changes), until stopped.
 */
export function startWriters(cluster: StrongCluster, clients: StrongClients, nodes: number[] | (() => number[])): { stop(): Promise<void> } {
  let running = true;
  const choices = typeof nodes === "function" ? nodes : () => nodes;
  const loop = async (clientId: string, offset: number) => {
    for (let turn = offset; running; turn++) {
      const now = choices();
      if (!(await clients.push(clientId, cluster.urls[now[turn % now.length]!]!))) await Bun.sleep(20);
    }
  };
  const loops = [loop("writer-1", 0), loop("writer-2", 1)];
  return {
    async stop() {
      running = false;
      await Promise.all(loops);
    },
  };
}

/** Waits (at most `capMs`) for `count` more acknowledged pushes; returns how many came. */
export async function acknowledgedMore(clients: StrongClients, count: number, capMs: number): Promise<number> {
  const before = clients.tally.acknowledgedPushes;
  const deadline = Date.now() + capMs;
  while (clients.tally.acknowledgedPushes < before + count && Date.now() < deadline) await Bun.sleep(20);
  return clients.tally.acknowledgedPushes - before;
}
