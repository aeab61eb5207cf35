// dsync status: how a node's folders stand against each of its peers. "behind" and "ahead" are
// this node's position: behind means the peer has writes this node lacks.
import { terminalLines } from "../src/core/terminal-text.ts";
import { printJson } from "./errors.ts";
import { remoteFor } from "./remote-target.ts";

export async function statusCommand(flags: { remote?: string; json?: boolean }): Promise<number> {
  const remote = remoteFor(flags);
  const status = await remote.status();
  if (flags.json) {
    printJson(status);
    return 0;
  }
  const lines: string[] = [`node ${status.node} at ${remote.baseUrl}`];
  if (status.peers.length === 0) lines.push("peers: none (not replicating)");
  for (const peer of status.peers) {
    const state = peer.reachable === null ? "not contacted yet" : peer.reachable ? "reachable" : `unreachable: ${peer.lastError ?? "unknown error"}`;
    lines.push(`peer ${peer.address}${peer.node ? ` (node ${peer.node})` : ""}: ${state}`);
  }
  const corrupt = status.objects?.quarantined ?? 0;
  if (status.objects && (corrupt > 0 || status.objects.repaired > 0)) {
    const { repaired, unrepairable } = status.objects;
    lines.push(`objects: ${corrupt} corrupt (quarantined, awaiting a good copy), ${repaired} repaired, ${unrepairable} unrepairable`);
  }
  if (status.folders.length === 0) lines.push("no folders yet");
  for (const folder of status.folders) {
    lines.push(`folder ${folder.name} (${folder.mode}) head ${folder.head ? folder.head.slice(0, 12) : "(empty)"}`);
    for (const peer of folder.peers) {
      let detail: string;
      // The same head, but objects of this node's copy are quarantined until a peer's copy replaces them.
      if (peer.state === "in-sync") detail = corrupt > 0 ? `in sync, but corrupt: ${corrupt} object(s) quarantined here await repair` : "in sync";
      else if (peer.state === "unknown") detail = "unknown (the peer has not listed this folder)";
      else if (peer.state === "behind") detail = `behind: this node lacks ${peer.behindWrites} write(s) the peer has`;
      else if (peer.state === "ahead") detail = `ahead: the peer lacks ${peer.aheadWrites} write(s)`;
      else detail = `diverged: this node lacks ${peer.behindWrites} write(s), the peer lacks ${peer.aheadWrites}`;
      lines.push(`  ${peer.peer}: ${detail}${peer.head && peer.state !== "in-sync" ? ` (peer head ${peer.head.slice(0, 12)})` : ""}`);
    }
  }
  process.stdout.write(terminalLines(lines)); // paths and names escaped (core/terminal-text.ts)
  return 0;
}
