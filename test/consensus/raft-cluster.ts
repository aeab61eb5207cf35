// Raft drivers over an in-memory network, for the consensus unit tests: each node is a real
// DsyncNode (memory objects, in-memory SQLite metadata) with its real RaftDriver; messages go
// through the wire codec (src/wire/raft-message.ts) both ways, as over HTTP, and downloads and
// histories through each node's PeerService. A node can be cut off (its calls and calls to it
// fail, as a dead peer's would) or stopped (they are never answered, as a SIGSTOPped peer's),
// and messages can be watched on their way out.
import { sealObject, type Version } from "../../src/core/objects.ts";
import type { ObjectId } from "../../src/core/id.ts";
import type { Message } from "../../src/core/raft/types.ts";
import { RaftDriver } from "../../src/consensus/raft-driver.ts";
import type { StrongCommand } from "../../src/consensus/strong-consensus.ts";
import { systemClock, systemRandom, systemTimers } from "../../src/node/clock.ts";
import type { NewVersionRecord } from "../../src/node/metadata-records.ts";
import { DsyncNode } from "../../src/node/node.ts";
import { SqliteMetadataStore } from "../../src/node/sqlite-metadata-store.ts";
import { PeerService } from "../../src/replication/peer-service.ts";
import type { PeerTransport } from "../../src/replication/transport.ts";
import { MemoryObjectStore } from "../../src/store/memory-store.ts";
import { decodeRaftMessages, encodeRaftMessages, type RaftReply } from "../../src/wire/raft-message.ts";
import { MemoryObjects } from "../helpers/memory-objects.ts";

export interface TestMember {
  id: string;
  node: DsyncNode;
  driver: RaftDriver;
  service: PeerService;
  log: string[];
}

export interface MemberOptions {
  compactEvery?: number;
  /** The certificate fingerprint each peer address presents (as a TLS peer's pin says). */
  peerFingerprint?: (address: string) => Promise<string | undefined>;
}

export const FAST = { tickMs: 20, electionTicks: 6, heartbeatTicks: 1 };

export class MemoryRaftNetwork {
  readonly members = new Map<string, TestMember>();
  /** Nodes cut off from everyone (calls to and from them fail). */
  readonly cut = new Set<string>();
  /** Nodes stopped as by SIGSTOP: calls to and from them are taken and never answered. */
  readonly stopped = new Set<string>();
  /** Sees every batch of Raft messages before it is delivered (the test's eyes on the wire). */
  onSend: (from: string, to: string, messages: readonly Message[]) => void = () => {};
  /** Objects downloads served, per serving node. */
  readonly downloads = new Map<string, number>();

  private async reach(from: string, to: string): Promise<TestMember> {
    // A stopped process's sockets take the call; no answer ever comes.
    if (this.stopped.has(from) || this.stopped.has(to)) await new Promise<never>(() => {});
    const target = this.members.get(to);
    if (!target || this.cut.has(from) || this.cut.has(to)) throw new Error(`cannot reach peer ${to}`);
    return target;
  }

  transportFor(from: string): PeerTransport {
    return {
      listFolders: async (peer, page) => (await this.reach(from, peer)).service.listFolders(page),
      history: async (peer, request) => (await this.reach(from, peer)).service.history(request),
      download: async (peer, ids) => {
        const target = await this.reach(from, peer);
        this.downloads.set(peer, (this.downloads.get(peer) ?? 0) + 1);
        const reply = await target.service.download(ids);
        return { objects: reply.objects.map((o) => ({ id: o.id, bytes: new Uint8Array(o.bytes) })), missing: reply.missing };
      },
      notify: async () => {},
      raft: async (peer, messages): Promise<RaftReply> => {
        const target = await this.reach(from, peer);
        this.onSend(from, peer, messages);
        // Through the wire format both ways, as the HTTP route would.
        const delivered = decodeRaftMessages(encodeRaftMessages(messages));
        await Promise.resolve();
        return target.service.raft(delivered);
      },
    };
  }

  async add(id: string, peers: string[], options: MemberOptions = {}): Promise<TestMember> {
    const node = await DsyncNode.over(new MemoryObjectStore(), SqliteMetadataStore.open(":memory:"), { dataDir: "", nodeId: id });
    return this.attach(node, peers, options);
  }

  /** A member over an existing node (a restart: same stores, a new driver). */
  attach(node: DsyncNode, peers: string[], options: MemberOptions = {}): TestMember {
    const log: string[] = [];
    const driver = new RaftDriver({
      node,
      transport: this.transportFor(node.nodeId),
      peers,
      timers: systemTimers,
      clock: systemClock,
      random: systemRandom,
      log: (line) => log.push(line),
      ...FAST,
      compactEvery: options.compactEvery,
      peerFingerprint: options.peerFingerprint,
    });
    const service = new PeerService(node);
    service.raftReceiver = driver;
    const member = { id: node.nodeId, node, driver, service, log };
    this.members.set(node.nodeId, member);
    return member;
  }

  /**
   * A group of `ids`, each member listing the others as its peers, every driver started. The
   * members go into `running` before they start, so a test's cleanup stops them even when a
   * start fails.
   */
  async startGroup(ids: string[], running: TestMember[], options: MemberOptions = {}): Promise<TestMember[]> {
    const members: TestMember[] = [];
    for (const id of ids) members.push(await this.add(id, ids.filter((other) => other !== id), options));
    running.push(...members);
    await Promise.all(members.map((m) => m.driver.start()));
    return members;
  }

  leader(): TestMember | undefined {
    const leaders = [...this.members.values()].filter((m) => !this.cut.has(m.id) && m.driver.isLeader());
    return leaders.length === 1 ? leaders[0] : undefined;
  }

  async waitForLeader(timeoutMs = 5000, except?: string): Promise<TestMember> {
    return waitFor(() => {
      const leader = this.leader();
      return leader && leader.id !== except ? leader : undefined;
    }, timeoutMs, "a leader");
  }
}

export async function waitFor<T>(probe: () => T | undefined | false | Promise<T | undefined | false>, timeoutMs: number, what: string): Promise<T> {
  const deadline = Date.now() + timeoutMs;
  for (;;) {
    const value = await probe();
    if (value) return value;
    if (Date.now() > deadline) throw new Error(`timed out after ${timeoutMs} ms waiting for ${what}`);
    await new Promise((resolve) => setTimeout(resolve, 10));
  }
}

/** A version of one file, its objects, and its record as a moveHead carries it. */
export function makeVersion(author: string, text: string, parents: ObjectId[] = [], counter = 1): { objects: { id: ObjectId; bytes: Uint8Array }[]; id: ObjectId; record: NewVersionRecord } {
  const tree = new MemoryObjects();
  const root = tree.tree({ "file.txt": text });
  const version: Version = {
    kind: "version",
    root,
    parents,
    author,
    hlcWallMs: 1_700_000_000_000 + counter,
    hlcCounter: 0,
    message: `write ${counter}`,
    versionVector: [{ node: author, counter }],
    chunking: "test",
  };
  const sealed = sealObject(version);
  return {
    objects: [...tree.all(), { id: sealed.id, bytes: sealed.bytes }],
    id: sealed.id,
    record: { id: sealed.id, root, parents, author, hlcWallMs: version.hlcWallMs, hlcCounter: 0, message: version.message, origin: "push", files: 1, totalBytes: text.length, createdMs: 1_700_000_000_000 },
  };
}

export function createFolder(folder: string): Extract<StrongCommand, { op: "createFolder" }> {
  return { op: "createFolder", folder, keepVersions: null, keepDays: null, atMs: 1_700_000_000_000 };
}

export function moveHead(folder: string, expected: ObjectId | null, version: ReturnType<typeof makeVersion>): StrongCommand {
  return { op: "moveHead", folder, expected, head: version.id, versions: [version.record], atMs: 1_700_000_000_000 };
}
