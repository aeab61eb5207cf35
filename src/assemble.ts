// The one place that picks a node's concrete parts: the object store (packs in the data folder),
// the metadata store (SQLite beside it, or PostgreSQL), the real file system, clock and
// randomness, and, for a node that serves, the replication with its peers, the repair from them
// and the background scrub. Everything below is given its collaborators and opens nothing of
// its own: a DsyncNode runs over whatever store and metadata it is handed (the simulation hands
// it memory ones), the server over whatever services it is handed.
//
// The top layer: it may import every folder of src/ but the client (test/layers.test.ts).
import { existsSync } from "node:fs";
import { join } from "node:path";
import { idToHex } from "./core/id.ts";
import { systemClock, systemRandom, type Clock, type RandomSource, type Timers } from "./node/clock.ts";
import { METADATA_FILE_NAME } from "./node/metadata-damage.ts";
import { NODE_ID_FILE_NAME } from "./node/metadata-claim.ts";
import { metadataPlaceProblem, openPostgresNodeMetadata, parseMetadataLocation } from "./node/metadata-location.ts";
import type { MetadataStore } from "./node/metadata-store.ts";
import { DsyncNode, type NodeOptions, type NodeStore } from "./node/node.ts";
import { Repairer } from "./node/repair.ts";
import { Scrubber, SCRUB_BYTES_PER_SECOND_WITH_PEERS } from "./node/scrub.ts";
import { SpaceReserve } from "./node/space-reserve.ts";
import { SqliteMetadataStore } from "./node/sqlite-metadata-store.ts";
import { RaftDriver } from "./consensus/raft-driver.ts";
import { PeerObjectSource } from "./replication/peer-object-source.ts";
import { PeerService } from "./replication/peer-service.ts";
import { Replicator } from "./replication/replicator.ts";
import { systemTimers, type PeerTransport } from "./replication/transport.ts";
import { HttpPeerTransport } from "./replication/http-transport.ts";
import type { TlsIdentity } from "./server/node-certificate.ts";
import { serverLog, type NodeServices } from "./server/serve.ts";
import { strongHeadsOver } from "./server/consensus-heads.ts";
import { PeerProofSigner } from "./wire/peer-proof.ts";
import type { TlsTrust } from "./wire/tls-trust.ts";
import { nodeFileSystem, type FileSystem } from "./store/file-system.ts";
import { PackObjectStore, type RecoveryReport } from "./store/pack-store.ts";

/** The object store's directory inside a data folder. */
export const OBJECTS_DIR_NAME = "objects";

/** The metadata key under which the scrub keeps its position across restarts. */
const SCRUB_POSITION_KEY = "scrub_position";

/**
 * Where the metadata lives: "sqlite" (metadata.sqlite in the data folder, the default) or a
 * postgres:// URL (node/metadata-location.ts says what is accepted).
 */
export type MetadataChoice = string;

export interface OpenedMetadata {
  metadata: MetadataStore;
  /** The node id the store was claimed for, when opening it decided one (PostgreSQL); else the node decides from the store. */
  nodeId: string | undefined;
  /** Where it is, for messages: the file, or the URL without its password. */
  location: string;
  /** Made by this open (a new metadata.sqlite): nothing of the folders was known here before. */
  isNew: boolean;
}

/**
 * Opens the metadata store `choice` names for the data folder `dataDir`; the one function that
 * knows every backend. A folder keeps its metadata in one place: one that holds metadata.sqlite
 * is not started on PostgreSQL, nor one that ran on PostgreSQL on a new SQLite file.
 */
export async function openMetadataStore(
  choice: MetadataChoice | undefined,
  dataDir: string,
  identity: { nodeId?: string; random?: RandomSource } = {},
): Promise<OpenedMetadata> {
  const location = parseMetadataLocation(choice);
  if (location.backend === "postgres") {
    const random = identity.random ?? systemRandom;
    const { store, nodeId } = await openPostgresNodeMetadata(location.url, dataDir, identity.nodeId, () => newNodeId(random));
    return { metadata: store, nodeId, location: (await store.stat()).location, isNew: false };
  }
  const problem = metadataPlaceProblem(dataDir, location);
  if (problem) throw new Error(problem);
  const path = join(dataDir, METADATA_FILE_NAME);
  const isNew = !existsSync(path);
  return { metadata: SqliteMetadataStore.open(path), nodeId: undefined, location: path, isNew };
}

/** A node id for a node starting for the first time: 8 random bytes in hex. */
function newNodeId(random: RandomSource): string {
  return Buffer.from(random.bytes(8)).toString("hex");
}

/** Whether `dataDir` holds a node's data (its metadata.sqlite, or the node-id a node on PostgreSQL leaves). */
export function isDataFolder(dataDir: string): boolean {
  return existsSync(join(dataDir, METADATA_FILE_NAME)) || existsSync(join(dataDir, NODE_ID_FILE_NAME));
}

export interface NodeAssembly extends Omit<NodeOptions, "metadataLocation"> {
  /** "sqlite" (the default) or a postgres:// URL. */
  metadata?: MetadataChoice;
  /** Where the node's files (the object store's packs) are written; tests pass one that injects faults. Default node:fs. */
  fileSystem?: FileSystem;
}

/**
 * A node on a data folder: the pack store under DATA/objects and the metadata `metadata`
 * names, opened and handed to a DsyncNode, with the space reserve that lets gc run on a full
 * disk. What the open had to repair is in `startupNotes`. Also the convenience every test that
 * needs a node on disk uses.
 */
export async function openNode(options: NodeAssembly): Promise<DsyncNode> {
  const clock = options.clock ?? systemClock;
  // The one place the real file system is chosen; SQLite (metadata, store index) does its own I/O.
  const files = options.fileSystem ?? nodeFileSystem;
  files.mkdirs(options.dataDir);
  const store = await PackObjectStore.open(join(options.dataDir, OBJECTS_DIR_NAME), { nowMs: () => clock.nowMs(), fileSystem: files });
  let opened: OpenedMetadata | undefined;
  try {
    opened = await openMetadataStore(options.metadata, options.dataDir, { nodeId: options.nodeId, random: options.random });
    const node = await DsyncNode.over(store, opened.metadata, { ...options, clock, nodeId: opened.nodeId ?? options.nodeId, metadataLocation: opened.location });
    node.startupNotes = recoveryNotes(store.recovery);
    // Never silently empty: objects without the metadata that names their folders is a lost
    // (or moved aside) metadata.sqlite, and the folders come back only from peers.
    const { objects } = opened.isNew ? await store.stats() : { objects: 0 };
    if (objects > 0) {
      node.startupNotes.push(
        `dsync: ${opened.location} was missing, but the object store holds ${objects} object(s): this node starts with no folders; ` +
          "its peers bring back the folders they hold (docs/reliability.md, \"A damaged metadata database\")",
      );
    }
    node.spaceReserve = new SpaceReserve(files, options.dataDir);
    node.spaceReserve.refill();
    return node;
  } catch (error) {
    // A damaged metadata database: let go of both files, so a check of them can open them.
    await opened?.metadata.close();
    await store.close();
    throw error;
  }
}

/** The object store's recovery at open, in words; nothing after a clean shutdown. */
function recoveryNotes(recovery: RecoveryReport): string[] {
  const notes: string[] = [];
  const damaged = recovery.damagedIndex;
  if (damaged !== null) {
    notes.push(
      `dsync: the object index was damaged (${damaged.problem}); it was moved aside to ${damaged.movedTo} (kept, not deleted) ` +
        `and rebuilt from the packs: ${recovery.recordsIndexed} records indexed`,
    );
  } else if (recovery.rebuiltIndex && recovery.recordsIndexed > 0) {
    notes.push(`dsync: the object index was missing or incomplete; rebuilt from the packs: ${recovery.recordsIndexed} records indexed`);
  }
  if (recovery.recordsQuarantined > 0) {
    notes.push(
      `dsync: ${recovery.recordsQuarantined} damaged record(s) found by the rebuild are quarantined (their bytes are kept); ` +
        "they are fetched again from peers, or stored again by the next push that holds them",
    );
  }
  return notes;
}

export interface ServiceAssembly {
  /** The cluster's shared credential: with it the node replicates and answers its peers; without it, it runs alone. */
  clusterToken?: string;
  /** Peer base URLs to replicate with. */
  peers?: string[];
  syncIntervalMs?: number;
  /** Whether pushes stream to the peers as they arrive (stored-objects notices, fetching ahead); default true. */
  replicationStreaming?: boolean;
  /**
   * Rate of the background scrub (node/scrub.ts); 0 turns it off. Default: off on a node without
   * peers (nothing could repair what it finds but a push), 8 MiB/s with peers.
   */
  scrubBytesPerSecond?: number;
  /** How each https:// peer's certificate is verified (pin or --ca), by peer address. */
  peerTrust?: ReadonlyMap<string, TlsTrust>;
  /** This node's certificate and key: peer requests are signed with the key. */
  tls?: TlsIdentity;
  /** How this node calls its peers; default HTTP(S) with the cluster token (the simulation and tests give their own). */
  transport?: PeerTransport;
  /** Whose schedule the replication, the repair and the scrub wait on; default the real timers (the simulation gives its own). */
  timers?: Timers;
  /** The strong mode's election timeouts are drawn from it; default the system's (the simulation gives a seeded one). */
  random?: RandomSource;
  /** Applied entries between two compactions of the Raft log into a snapshot; default the driver's (the simulation compacts often, to install snapshots). */
  raftCompactEvery?: number;
  log?: (line: string) => void;
}

/**
 * The services of a serving node over `node` (server/serve.ts starts them with the server):
 * with a cluster token, the transport to the peers, the replicator and the peer service (what
 * this node answers them), and with peers the repairer that fetches quarantined objects from
 * them; always the scrub, at its rate, from where it stopped last. Nothing is started here.
 */
export async function assembleServices(node: DsyncNode, options: ServiceAssembly = {}): Promise<NodeServices> {
  const log = options.log ?? serverLog;
  const timers = options.timers ?? systemTimers;
  let replicator: Replicator | undefined;
  let peerService: PeerService | undefined;
  let repairer: Repairer | undefined;
  const transport: PeerTransport | undefined =
    options.transport ??
    (options.clusterToken === undefined
      ? undefined
      : new HttpPeerTransport({
          clusterToken: options.clusterToken,
          trustFor: (peer) => options.peerTrust?.get(peer),
          signer: options.tls ? new PeerProofSigner(new Uint8Array(options.tls.certificate.raw), options.tls.privateKey) : undefined,
        }));
  if (transport) {
    replicator = new Replicator({
      node,
      peers: options.peers ?? [],
      transport,
      timers,
      intervalMs: options.syncIntervalMs ?? 2000,
      streaming: options.replicationStreaming,
      log,
      // What no peer had a moment ago may be on the one that just came back.
      onPeerBack: () => repairer?.retryNow(),
    });
    const running = replicator;
    peerService = new PeerService(
      node,
      (notice) => running.onNotice(notice),
      (notice) => running.onStoredNotice(notice),
    );
    peerService.recentUploads = running.recentUploads;
    if ((options.peers ?? []).length > 0) {
      // Peers that answered last are asked first for copies of what this node found corrupt.
      const peersInOrder = () => running.peerStates().sort((a, b) => Number(b.reachable === true) - Number(a.reachable === true)).map((peer) => peer.address);
      repairer = new Repairer({
        store: node.store,
        source: new PeerObjectSource(transport, peersInOrder, log),
        clock: node.clock,
        timers,
        log,
        onRepaired: (ids) => node.events.emit("verify", null, { finding: "repaired", count: ids.length, objects: ids.slice(0, 100).map(idToHex) }),
      });
      node.setRepairer(repairer);
    }
  }
  // Read before the scrub is made, so it starts where the last run stopped.
  const savedPosition = await node.metadata.getMeta(SCRUB_POSITION_KEY);
  const scrubber = new Scrubber({
    store: node.store,
    bytesPerSecond: options.scrubBytesPerSecond ?? (repairer ? SCRUB_BYTES_PER_SECOND_WITH_PEERS : 0),
    clock: node.clock,
    timers,
    position: { load: () => savedPosition, save: (value) => node.metadata.setMeta(SCRUB_POSITION_KEY, value) },
    log,
  });
  // The strong mode's Raft group, always: without a cluster token (or peers) it is this node
  // alone, and a strong folder commits once its log entry is durable here.
  const consensus = new RaftDriver({
    node,
    transport: options.clusterToken !== undefined || options.transport !== undefined ? transport : undefined,
    peers: options.peers ?? [],
    timers,
    clock: node.clock,
    random: options.random ?? systemRandom,
    log,
    compactEvery: options.raftCompactEvery,
    peerFingerprint: async (address) => (address.startsWith("https:") ? options.peerTrust?.get(address)?.receiverFingerprint() : undefined),
  });
  if (peerService) peerService.raftReceiver = consensus;
  // A strong folder's commits and creation go through the group (server/consensus-heads.ts).
  node.setStrongHeads(strongHeadsOver(consensus, node.clock, timers, node.metadata));
  return { node, replicator, peerService, repairer, scrubber, consensus, transport };
}

/** A serving node on a data folder: openNode, then its services (assembleServices). */
export async function assembleNode(options: NodeAssembly & ServiceAssembly): Promise<NodeServices> {
  const node = await openNode(options);
  try {
    return await assembleServices(node, options);
  } catch (error) {
    await node.close();
    throw error;
  }
}

/**
 * A serving node over a store and metadata already open, with the clock, random source, timers
 * and peer transport `options` give: the deterministic simulation's node (memory store, its
 * simulated clock and network), assembled the same way as one on a data folder.
 */
export async function assembleNodeOver(store: NodeStore, metadata: MetadataStore, options: NodeOptions & ServiceAssembly): Promise<NodeServices> {
  const node = await DsyncNode.over(store, metadata, options);
  try {
    return await assembleServices(node, options);
  } catch (error) {
    await node.close();
    throw error;
  }
}
