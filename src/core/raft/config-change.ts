// Single-server membership changes (Raft thesis §4.1) as config entries. An entry carries the
// change and the whole voter list it results in, so a member learns the membership from the
// entry alone: a member added later, replaying the log from index 1, never has to know the
// bootstrap config (which is in no entry), and undoing a truncated change is looking back to the
// previous config entry. Canonical msgpack (encoding.ts): [version, type, node, address, voters].
import { DecodeError, decodeMsgpack, encodeCanonical } from "../encoding.ts";
import type { ClusterConfig, ConfigChange, RaftNodeId } from "./types.ts";

const FORMAT_VERSION = 1;

/** The most voters a cluster may have; each is sent every heartbeat, so it stays small. */
export const RAFT_VOTERS_MAX = 64;
/** The longest address (a base URL) a config entry may carry. */
export const RAFT_ADDRESS_BYTES_MAX = 2048;

const NODE_ID = /^[A-Za-z0-9][A-Za-z0-9._-]{0,63}$/;

export interface ConfigEntry {
  change: ConfigChange;
  /** The voters once the change is made, sorted, without duplicates. */
  voters: RaftNodeId[];
}

/** Why `change` cannot be made to `config`, or undefined. */
export function configChangeProblem(config: ClusterConfig, change: ConfigChange): string | undefined {
  if (!NODE_ID.test(change.node)) return `not a member id: ${JSON.stringify(change.node)}`;
  const present = config.voters.includes(change.node);
  if (change.type === "add") {
    if (present) return `${change.node} is already a voter`;
    if (config.voters.length >= RAFT_VOTERS_MAX) return `a cluster has at most ${RAFT_VOTERS_MAX} voters`;
    if (change.address === "" || new TextEncoder().encode(change.address).length > RAFT_ADDRESS_BYTES_MAX) return "an added member needs an address of at most 2048 bytes";
    return undefined;
  }
  if (change.type === "remove") {
    if (!present) return `${change.node} is not a voter`;
    if (config.voters.length === 1) return "the last voter cannot be removed";
    if (change.address !== "") return "a removal carries no address";
    return undefined;
  }
  return `unknown change type ${JSON.stringify((change as { type: unknown }).type)}`;
}

/** The config after `change` (which configChangeProblem accepts). */
export function applyConfigChange(config: ClusterConfig, change: ConfigChange): ClusterConfig {
  const others = config.voters.filter((id) => id !== change.node);
  const voters = change.type === "add" ? [...others, change.node] : others;
  return { voters: voters.sort(compareIds) };
}

export function encodeConfigEntry(entry: ConfigEntry): Uint8Array {
  return encodeCanonical([FORMAT_VERSION, entry.change.type, entry.change.node, entry.change.address, entry.voters]);
}

/** Decodes and validates a config entry's data; throws DecodeError on anything else. */
export function decodeConfigEntry(bytes: Uint8Array): ConfigEntry {
  const value = decodeMsgpack(bytes);
  if (!Array.isArray(value) || value.length !== 5) throw new DecodeError("config entry: not a 5-item array");
  const [version, type, node, address, voters] = value as unknown[];
  if (version !== FORMAT_VERSION) throw new DecodeError(`config entry: unknown version ${String(version)}`);
  if (type !== "add" && type !== "remove") throw new DecodeError("config entry: type is neither add nor remove");
  if (typeof node !== "string" || !NODE_ID.test(node)) throw new DecodeError("config entry: bad node id");
  if (typeof address !== "string" || new TextEncoder().encode(address).length > RAFT_ADDRESS_BYTES_MAX) throw new DecodeError("config entry: bad address");
  if (type === "add" ? address === "" : address !== "") throw new DecodeError("config entry: an add needs an address, a removal has none");
  if (!Array.isArray(voters) || voters.length === 0 || voters.length > RAFT_VOTERS_MAX) throw new DecodeError("config entry: bad voter list");
  for (let i = 0; i < voters.length; i++) {
    const id = voters[i];
    if (typeof id !== "string" || !NODE_ID.test(id)) throw new DecodeError("config entry: bad voter id");
    if (i > 0 && compareIds(voters[i - 1] as string, id) >= 0) throw new DecodeError("config entry: voters not sorted and unique");
  }
  const list = voters as string[];
  if ((type === "add") !== list.includes(node)) throw new DecodeError("config entry: voters do not follow from the change");
  return { change: { type, node, address }, voters: list };
}

/** The change a config entry's data holds (for a driver that needs the added member's address). */
export function decodeConfigChange(bytes: Uint8Array): ConfigChange {
  return decodeConfigEntry(bytes).change;
}

function compareIds(a: string, b: string): number {
  return a < b ? -1 : a > b ? 1 : 0;
}
