// The words of a node's summary (GET /v1/status), shared by `dsync status` and the web
// dashboard's front page so both say the same thing: each peer's state, lag and last contact,
// each folder's content, last change and standing against each peer. Pure: the caller gives
// the time, and escapes for its medium (terminal text, or DOM textContent).
import type { NodeStatus } from "./remote.ts";
import { counted } from "../core/plural.ts";
import { formatBytes } from "./progress.ts";

export { formatBytes };

type PeerSummary = NodeStatus["peers"][number];
type FolderSummary = NodeStatus["folders"][number];
type FolderPeer = FolderSummary["peers"][number];

/** "just now", "42 s ago", "5 min ago", "3 h ago", "2 d ago"; "never" for null. */
export function formatAgo(thenMs: number | null | undefined, nowMs: number): string {
  if (thenMs === null || thenMs === undefined) return "never";
  const seconds = Math.max(0, Math.round((nowMs - thenMs) / 1000));
  if (seconds < 2) return "just now";
  if (seconds < 120) return `${seconds} s ago`;
  if (seconds < 7200) return `${Math.round(seconds / 60)} min ago`;
  if (seconds < 172_800) return `${Math.round(seconds / 3600)} h ago`;
  return `${Math.round(seconds / 86_400)} d ago`;
}

export function formatDuration(ms: number): string {
  if (ms < 1000) return `${Math.round(ms)} ms`;
  if (ms < 120_000) return `${(ms / 1000).toFixed(1)} s`;
  return `${Math.round(ms / 60_000)} min`;
}

export function peerStateText(peer: PeerSummary): string {
  if (peer.reachable === null) return "not contacted yet";
  return peer.reachable ? "reachable" : `unreachable: ${peer.lastError ?? "unknown error"}`;
}

/** A peer's lag over all folders: the writes this node lacks that the peer has, and for how long. */
export function peerLag(status: NodeStatus, address: string): { writes: number; lagMs: number } {
  let writes = 0;
  let lagMs = 0;
  for (const folder of status.folders) {
    for (const peer of folder.peers) {
      if (peer.peer !== address) continue;
      writes += peer.behindWrites;
      lagMs = Math.max(lagMs, peer.lagMs ?? 0);
    }
  }
  return { writes, lagMs };
}

export function lagText(lag: { writes: number; lagMs: number }): string {
  if (lag.writes === 0) return "no lag";
  return `lags ${counted(lag.writes, "write")}${lag.lagMs > 0 ? ` for ${formatDuration(lag.lagMs)}` : ""}`;
}

/** One line per peer: address, node id, state, lag, last contact. */
export function peerLine(status: NodeStatus, peer: PeerSummary, nowMs: number): string {
  const node = peer.node ? ` (node ${peer.node})` : "";
  const contact = peer.lastContactMs !== null ? `, last contact ${formatAgo(peer.lastContactMs, nowMs)}` : "";
  return `${peer.address}${node}: ${peerStateText(peer)}, ${lagText(peerLag(status, peer.address))}${contact}`;
}

/** What a folder holds and who changed it last: "3 files, 1.2 MiB, changed 5 min ago by n2 (push)". */
export function folderContentText(folder: FolderSummary, nowMs: number): string {
  if (folder.head === null) return "empty";
  const parts = [`${counted(folder.files ?? 0, "file")}, ${formatBytes(folder.bytes ?? 0)}`];
  if (folder.lastChangeMs !== undefined && folder.lastChangeMs !== null) {
    const origin = folder.changeOrigin ? ` (${folder.changeOrigin})` : "";
    parts.push(`changed ${formatAgo(folder.lastChangeMs, nowMs)}${folder.changedBy ? ` by ${folder.changedBy}` : ""}${origin}`);
  }
  return parts.join(", ");
}

/** How a folder stands against one peer. `corrupt`: objects quarantined on this node. */
export function folderPeerText(peer: FolderPeer, corrupt: number): string {
  let detail: string;
  // The same head, but objects of this node's copy are quarantined until a peer's copy replaces them.
  if (peer.state === "in-sync") detail = corrupt > 0 ? `in sync, but corrupt: ${counted(corrupt, "object")} quarantined here await repair` : "in sync";
  else if (peer.state === "unknown") detail = "unknown (the peer has not listed this folder)";
  else if (peer.state === "behind") detail = `behind: this node lacks ${counted(peer.behindWrites, "write")} the peer has`;
  else if (peer.state === "ahead") detail = `ahead: the peer lacks ${counted(peer.aheadWrites, "write")}`;
  else detail = `diverged: this node lacks ${counted(peer.behindWrites, "write")}, the peer lacks ${counted(peer.aheadWrites, "write")}`;
  if (peer.lagMs !== undefined && peer.lagMs > 0) detail += ` for ${formatDuration(peer.lagMs)}`;
  return `${detail}${peer.head && peer.state !== "in-sync" ? ` (peer head ${peer.head.slice(0, 12)})` : ""}`;
}

type ConsensusSummary = NonNullable<NodeStatus["consensus"]>;

/**
 * The cluster's log as one node sees it: its role and term, the leader, how far the log is
 * committed and applied here, then one line per member: the index known replicated there (the
 * leader knows it) and when this node last heard from it.
 */
export function consensusLines(consensus: ConsensusSummary, nowMs: number): string[] {
  const leader = consensus.leader
    ? `leader ${consensus.leader.id}${consensus.leader.address ? ` at ${consensus.leader.address}` : ""}${consensus.leader.id === consensus.nodeId ? " (this node)" : ""}`
    : "no leader known";
  const lines = [`consensus: ${consensus.role}, term ${consensus.term}, ${leader}; commit ${consensus.commit}, applied ${consensus.applied}, last index ${consensus.lastIndex}`];
  for (const member of consensus.members) {
    const where = member.address ? ` (${member.address})` : "";
    if (member.self) {
      lines.push(`  member ${member.id}${where}: this node`);
      continue;
    }
    const match = member.match === null ? "" : `match ${member.match}, `;
    lines.push(`  member ${member.id}${where}: ${match}last contact ${formatAgo(member.lastContactMs, nowMs)}`);
  }
  return lines;
}

/** How many of the node's folders the status leaves out (it holds at most a page); 0 from older nodes. */
export function folderCountNotShown(status: NodeStatus): number {
  return Math.max(0, (status.foldersTotal ?? status.folders.length) - status.folders.length);
}

/** The summary as lines of plain text (not yet escaped for a terminal). */
export function summaryLines(status: NodeStatus, baseUrl: string, nowMs: number): string[] {
  const lines: string[] = [`node ${status.node} at ${baseUrl}${status.version ? ` (dsync ${status.version})` : ""}`];
  // Which metadata store the node runs on (absent from older nodes), and its size where it knows it.
  if (status.metadata) lines.push(`metadata: ${status.metadata.backend}${status.metadata.sizeBytes === null ? "" : `, ${formatBytes(status.metadata.sizeBytes)}`}`);
  if (status.peers.length === 0) lines.push("peers: none (not replicating)");
  for (const peer of status.peers) lines.push(`peer ${peerLine(status, peer, nowMs)}`);
  const corrupt = status.objects?.quarantined ?? 0;
  if (status.objects && (corrupt > 0 || status.objects.repaired > 0)) {
    const { repaired, unrepairable } = status.objects;
    lines.push(`objects: ${corrupt} corrupt (quarantined, awaiting a good copy), ${repaired} repaired, ${unrepairable} unrepairable`);
  }
  if (status.folders.length === 0) lines.push("no folders yet");
  for (const folder of status.folders) {
    lines.push(`folder ${folder.name} (${folder.mode}) head ${folder.head ? folder.head.slice(0, 12) : "(empty)"}: ${folderContentText(folder, nowMs)}`);
    for (const peer of folder.peers) lines.push(`  ${peer.peer}: ${folderPeerText(peer, corrupt)}`);
  }
  if (status.consensus) lines.push(...consensusLines(status.consensus, nowMs));
  // The status holds at most a page of folders; said last, where a long list ends on a terminal.
  const unlisted = folderCountNotShown(status);
  if (unlisted > 0) lines.push(`showing ${status.folders.length} of ${status.foldersTotal} folders (the first by name; dsync ls lists every one)`);
  return lines;
}
